# SPDX-License-Identifier: GPL-2.0-or-later
"""Real kernel: ib40's writes go through pyroute2 imported lean (its
IPRoute module only, pyroute2_lean.py) and, when that is refused or fails,
through the plain `import pyroute2`, with the same result in a network
namespace either way."""

import json
import sys
import textwrap

import pytest

from helpers import REPO, run_ib40d, run_ib40d_private_run

pytestmark = pytest.mark.netns

# Each write Netlink offers that a veth takes, then what the process loaded.
WRITES = textwrap.dedent("""
    import importlib.abc, json, os, sys
    if os.environ.get("LAYOUT") == "other":
        class NoSuchModule(importlib.abc.MetaPathFinder):
            # pyroute2 laid out otherwise: its IPRoute module is not where
            # the lean import looks, the first time it is asked for.
            refused = False
            def find_spec(self, name, path, target=None):
                if name == "pyroute2.iproute.linux" and not self.refused:
                    self.refused = True
                    raise ModuleNotFoundError("No module named 'pyroute2.iproute.linux'")
        sys.meta_path.insert(0, NoSuchModule())
    import logging
    logging.basicConfig(level=logging.DEBUG, format="%(name)s: %(message)s")
    from ib40d.core.netlink_errors import NetlinkRefused
    from ib40d.system.netlink import Netlink
    nl = Netlink()
    index = {l.name: l.index for l in nl.dump_links()}["v1"]
    nl.set_mtu(index, "v1", 9000)
    nl.set_txqueuelen(index, "v1", 4242)
    nl.set_state(index, "v1", True)
    nl.add_address(index, "v1", "10.98.0.1/24", "10.98.0.255")
    nl.add_address(index, "v1", "10.98.1.1/24", None)
    nl.del_address(index, "v1", "10.98.1.1/24")
    try:
        nl.set_mtu(index, "v1", 10)   # below the minimum: the kernel refuses
        refused = None
    except NetlinkRefused as e:
        refused = str(e)
    from ib40d.system import pyroute2_lean
    print(json.dumps({"how": pyroute2_lean.how, "writes": nl.writes, "refused": refused,
                      "whole_package": "pyroute2.ndb" in sys.modules,
                      "mock": "unittest.mock" in sys.modules,
                      "tc": "pyroute2.netlink.rtnl.tcmsg" in sys.modules}))
""")


@pytest.mark.parametrize("way", ["lean", "forced full", "other layout"])
def test_writes_reach_the_kernel_lean_or_through_the_whole_package(netns, way):
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    env = {"PYTHONPATH": str(REPO)}
    if way == "forced full":
        env["IB40_PYROUTE2"] = "full"
    if way == "other layout":
        env["LAYOUT"] = "other"
    proc = netns.exec(sys.executable, "-c", WRITES, env=env)
    assert proc.returncode == 0, proc.stderr
    loaded = json.loads(proc.stdout)
    assert loaded["writes"] == 7
    assert loaded["refused"].startswith("set mtu 10 on v1"), loaded["refused"]
    link = json.loads(netns.ip("-j", "address", "show", "v1"))[0]
    assert (link["mtu"], link["txqlen"], "UP" in link["flags"]) == (9000, 4242, True)
    assert [(a["local"], a["prefixlen"], a["broadcast"]) for a in link["addr_info"] if a["family"] == "inet"] == \
        [("10.98.0.1", 24, "10.98.0.255")]
    if way == "lean":
        assert loaded["how"] == "lean", proc.stderr
        # not the package's entry points, nor pyroute2.lab's unittest.mock,
        # nor traffic control until it is used
        assert not loaded["whole_package"] and not loaded["mock"] and not loaded["tc"]
        assert "ib40d.system.pyroute2_lean: pyroute2 imported lean" in proc.stderr
    elif way == "forced full":
        assert loaded["how"] == "full (IB40_PYROUTE2=full)" and loaded["whole_package"]
    else:
        assert loaded["how"].startswith("full (ModuleNotFoundError"), loaded["how"]
        assert loaded["whole_package"]
        assert "importing only pyroute2.iproute.linux failed (ModuleNotFoundError: " \
               "No module named 'pyroute2.iproute.linux'); importing the whole package" in proc.stderr


@pytest.mark.parametrize("pyroute2", ["lean", "full"])
def test_apply_converges_and_a_second_apply_writes_nothing_either_way(netns, tmp_path, pyroute2):
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    conf = tmp_path / "ib40.conf"
    conf.write_text("[link v1]\nmtu = 9000\ntxqueuelen = 10000\naddress = 10.98.0.1/24\n")
    import os
    os.environ["IB40_PYROUTE2"] = pyroute2
    try:
        first = json.loads(run_ib40d_private_run("apply", "-c", str(conf), "--json", netns=netns.name,
                                                 check_rc=0).stdout)
        second = json.loads(run_ib40d_private_run("apply", "-c", str(conf), "--json", netns=netns.name,
                                                  check_rc=0).stdout)
    finally:
        del os.environ["IB40_PYROUTE2"]
    assert first["writes"] > 0 and first["not_converged"] == []
    assert second["writes"] == 0
    assert run_ib40d("plan", "-c", str(conf), netns=netns.name).returncode == 0


# Traffic control through the lean IPRoute: a qdisc added (a tcmsg made,
# the plugin for its kind found), then the dump parsed (the marshal's tcmsg).
TC_AFTER_LEAN = textwrap.dedent("""
    import json, sys
    from ib40d.system import pyroute2_lean
    before = "pyroute2.netlink.rtnl.tcmsg" in sys.modules
    with pyroute2_lean.IPRoute() as ipr:
        index = ipr.link_lookup(ifname="v1")[0]
        ipr.tc("add", "pfifo", index, 0x10000, limit=77)
        qdiscs = [(type(m).__module__, m.get_attr("TCA_KIND"), m["handle"]) for m in ipr.get_qdiscs(index=index)]
    tc_plugins = sys.modules["pyroute2.iproute.linux"].tc_plugins
    print(json.dumps({"how": pyroute2_lean.how, "before": before, "qdiscs": qdiscs,
                      "plugins": ["sfq" in tc_plugins, tc_plugins.get("htb") is not None, len(tc_plugins) > 10]}))
""")


@pytest.mark.parametrize("pyroute2", ["lean", "full"])
def test_traffic_control_still_works_through_a_lean_iproute(netns, pyroute2):
    """The lean import leaves tc out until it is used; whoever uses it then
    gets pyroute2's own tcmsg and plugins, as the plain import gives them."""
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    netns.ip("link", "set", "v1", "up")
    env = {"PYTHONPATH": str(REPO)}
    if pyroute2 == "full":
        env["IB40_PYROUTE2"] = "full"
    proc = netns.exec(sys.executable, "-c", TC_AFTER_LEAN, env=env)
    assert proc.returncode == 0, proc.stderr
    seen = json.loads(proc.stdout)
    assert seen["how"] == ("lean" if pyroute2 == "lean" else "full (IB40_PYROUTE2=full)")
    assert seen["before"] is (pyroute2 == "full")
    assert seen["qdiscs"] == [["pyroute2.netlink.rtnl.tcmsg", "pfifo", 0x10000]], seen
    assert seen["plugins"] == [True, True, True], seen
    shown = netns.exec("tc", "qdisc", "show", "dev", "v1").stdout
    assert "qdisc pfifo 1: root" in shown and "limit 77p" in shown, shown


def test_the_whole_package_is_still_there_for_whoever_asks_after_a_lean_import():
    # The lean import leaves `pyroute2` unexecuted in sys.modules; a caller
    # that then asks the package for something else gets its __init__ run.
    script = textwrap.dedent("""
        import sys
        from ib40d.system import pyroute2_lean
        assert pyroute2_lean.how == "lean", pyroute2_lean.how
        assert "pyroute2.ndb" not in sys.modules
        import pyroute2
        from pyroute2 import NDB, IPRoute
        import pyroute2.lab
        print(IPRoute is pyroute2_lean.IPRoute, NDB.__module__, hasattr(pyroute2.lab, "use_mock"))
    """)
    import subprocess
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["True", "pyroute2.ndb.main", "True"]


# Stand-ins for `uname` and `file`, first on PATH: each leaves a mark when run.
MARKING_PROGRAM = '#!/bin/sh\necho "$0 $*" >> "$MARKS"\n[ "$1" = -p ] && echo unknown || echo "ELF 64-bit LSB pie executable"\n'
IMPORT_THEN_PLATFORM = textwrap.dedent("""
    import json, os, struct, sys
    path = os.environ["PATH"]
    from ib40d.system import pyroute2_lean
    from pyroute2 import config
    print(json.dumps([pyroute2_lean.how, config.arch == f"{struct.calcsize('P') * 8}bit",
                      config.kernel == [int(x) for x in os.uname().release.split("-")[0].split(".") if x.isdigit()],
                      os.environ["PATH"] == path]))
""")


@pytest.mark.parametrize("pyroute2", ["lean", "full"])
def test_the_lean_import_runs_no_program(tmp_path, pyroute2):
    """pyroute2.config asks platform for the processor (`uname -p`) and the
    interpreter's architecture (`file -b`); the lean import lets neither
    program run, and what ib40 may read from it (the pointer size, the
    kernel's version) is the same. The plain import still runs them."""
    import os
    import subprocess

    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name in ("uname", "file"):
        (bindir / name).write_text(MARKING_PROGRAM)
        (bindir / name).chmod(0o755)
    marks = tmp_path / "marks"
    env = {"PYTHONPATH": str(REPO), "PATH": f"{bindir}:{os.environ['PATH']}", "MARKS": str(marks)}
    if pyroute2 == "full":
        env["IB40_PYROUTE2"] = "full"
    proc = subprocess.run([sys.executable, "-c", IMPORT_THEN_PLATFORM], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    how, same_arch, same_kernel, path_back = json.loads(proc.stdout)
    assert same_arch and same_kernel and path_back, proc.stdout
    ran = sorted(os.path.basename(line.split()[0]) for line in marks.read_text().splitlines()) \
        if marks.exists() else []
    if pyroute2 == "lean":
        assert how == "lean" and ran == [], (how, ran)
    else:
        assert how == "full (IB40_PYROUTE2=full)" and ran == ["file", "uname"], (how, ran)
