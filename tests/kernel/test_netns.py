# SPDX-License-Identifier: GPL-2.0-or-later
"""Real kernel: `ib40d apply/plan/status` over rtnetlink inside network
namespaces made by the test (this machine's kernel has veth, not bonding;
bonds are proven in the QEMU lab)."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from helpers import REPO, private_run, run_ib40d, run_ib40d_private_run

pytestmark = pytest.mark.netns

CONF = """
[link v1]
mtu = 9000
txqueuelen = 10000
address = 10.99.0.1/24 fd00:99::1/64
[link v2]
address = 10.99.0.2
netmask = 255.255.255.0
broadcast = 10.99.0.255
"""


def links(ns):
    return {l["ifname"]: l for l in json.loads(ns.ip("-j", "address", "show"))}


def setup_pair(ns, tmp_path, conf=CONF):
    ns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    ns.ip("link", "add", "other0", "type", "veth", "peer", "name", "other1")
    ns.ip("link", "set", "other0", "mtu", "1400")
    path = tmp_path / "ib40.conf"
    path.write_text(conf)
    return str(path)


class Monitor:
    """`ip monitor link address` in the namespace: every change the kernel
    announces while it runs (a flap or address churn would show here)."""

    def __init__(self, ns):
        self.proc = subprocess.Popen(["ip", "-n", ns.name, "monitor", "link", "address"],
                                     stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # let it subscribe

    def stop(self) -> list[str]:
        time.sleep(0.3)
        self.proc.send_signal(signal.SIGTERM)
        out, _ = self.proc.communicate(timeout=5)
        return [l for l in out.splitlines() if l.strip()]


def test_apply_sets_mtu_qlen_addresses_broadcast_up_and_leaves_others(netns, tmp_path):
    conf = setup_pair(netns, tmp_path)
    before_other = links(netns)["other0"]
    assert run_ib40d("plan", "-c", conf, netns=netns.name).returncode == 1
    proc = run_ib40d_private_run("apply", "-c", conf, netns=netns.name)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    now = links(netns)
    v1, v2 = now["v1"], now["v2"]
    assert v1["mtu"] == 9000 and v1["txqlen"] == 10000 and "UP" in v1["flags"]
    v1_addrs = {(a["local"], a["prefixlen"], a.get("broadcast")) for a in v1["addr_info"] if a["scope"] == "global"}
    assert v1_addrs == {("10.99.0.1", 24, "10.99.0.255"), ("fd00:99::1", 64, None)}
    assert [(a["local"], a["prefixlen"], a["broadcast"]) for a in v2["addr_info"] if a["family"] == "inet"] == \
        [("10.99.0.2", 24, "10.99.0.255")]
    other = now["other0"]
    assert (other["mtu"], other["flags"], other["addr_info"]) == (before_other["mtu"], before_other["flags"], before_other["addr_info"])
    assert run_ib40d("plan", "-c", conf, netns=netns.name).returncode == 0


def test_second_apply_sends_zero_writes_and_the_kernel_announces_nothing(netns, tmp_path):
    conf = setup_pair(netns, tmp_path)
    first = json.loads(run_ib40d_private_run("apply", "-c", conf, "--json", netns=netns.name, check_rc=0).stdout)
    assert first["writes"] > 0
    time.sleep(2.5)  # IPv6 DAD and operstate settle, so their events don't count as ours
    monitor = Monitor(netns)
    second = json.loads(run_ib40d_private_run("apply", "-c", conf, "--json", netns=netns.name, check_rc=0).stdout)
    events = monitor.stop()
    assert second["writes"] == 0 and second["done"] == []
    assert events == [], events


def test_invalid_config_touches_nothing(netns, tmp_path):
    conf = setup_pair(netns, tmp_path, CONF + "[link v3]\nmtu = 12\n")
    monitor = Monitor(netns)
    proc = run_ib40d_private_run("apply", "-c", conf, netns=netns.name)
    events = monitor.stop()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ":11: [link v3] mtu: 12 is out of range" in proc.stderr
    assert events == []
    assert links(netns)["v1"]["mtu"] == 1500


def test_link_vanishing_mid_apply_is_one_clear_line(netns, tmp_path):
    # Plan against v1, delete it (an unplug), then execute: the kernel
    # answers ENODEV and the result says what was and wasn't done.
    conf = setup_pair(netns, tmp_path)
    script = textwrap.dedent(f"""
        import json, subprocess
        from ib40d.system.config_reader import load
        from ib40d.system.netlink import Netlink
        from ib40d.system.observe import observe
        from ib40d.core.plan import make_plan
        from ib40d.system.apply_engine import execute
        from ib40d.system.sysroot import SysRoot
        cfg = load({conf!r}); nl = Netlink(); root = SysRoot("/")
        plan = make_plan(cfg, observe(nl, root))
        subprocess.run(["ip", "link", "del", "v1"], check=True)   # the link goes away mid-apply
        result = execute(plan, nl, root)
        print(json.dumps(result.to_json()))
    """)
    proc = netns.exec(sys.executable, "-c", script, env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    # deleting v1 takes its veth peer v2 with it: both groups fail, each once
    assert sorted(e.split(":")[0] for e in result["errors"]) == ["v1", "v2"]
    assert all("ENODEV" in e for e in result["errors"])
    assert result["done"] == [] and result["not_done"][0]["target"] == "v1"


def test_carrier_flapping_mid_apply_still_converges(netns, tmp_path):
    conf = setup_pair(netns, tmp_path, "[link v1]\nmtu = 9000\naddress = 10.99.0.1/24\n")
    netns.ip("link", "set", "v2", "up")
    flapper = subprocess.Popen(["ip", "netns", "exec", netns.name, "sh", "-c",
                                "for i in $(seq 200); do ip link set v2 down; ip link set v2 up; done"])
    try:
        proc = run_ib40d_private_run("apply", "-c", conf, "--json", netns=netns.name)
    finally:
        flapper.wait(timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["not_converged"] == []
    assert run_ib40d("plan", "-c", conf, netns=netns.name).returncode == 0
    assert "v2" not in {a["target"] for a in json.loads(proc.stdout)["done"]}


def test_apply_link_filter_and_unknown_link(netns, tmp_path):
    conf = setup_pair(netns, tmp_path)
    proc = run_ib40d_private_run("apply", "-c", conf, "--link", "v2", netns=netns.name, check_rc=0)
    assert "v1" not in proc.stdout
    assert links(netns)["v1"]["mtu"] == 1500
    bad = run_ib40d_private_run("apply", "-c", conf, "--link", "nope", netns=netns.name)
    assert bad.returncode == 2 and "nope is not configured" in bad.stderr


def test_status_in_netns_agrees_with_the_kernel(netns, tmp_path):
    conf = setup_pair(netns, tmp_path)
    run_ib40d_private_run("apply", "-c", conf, netns=netns.name, check_rc=0)
    status = json.loads(run_ib40d("status", "-c", conf, "--json", netns=netns.name, check_rc=0).stdout)
    kernel = links(netns)
    for link in status["links"]:
        k = kernel[link["name"]]
        assert (link["mtu"], link["txqueuelen"], link["mac"]) == (k["mtu"], k["txqlen"], k["address"])
        assert {a["cidr"] for a in link["addresses"]} == {f"{a['local']}/{a['prefixlen']}" for a in k["addr_info"]}
        assert link["mismatches"] == []


BOND_ON_VETHS = """
[link v1]
[link v2]
[bond bond0]
slaves = v1 v2
mode = balance-rr
miimon = 100
address = 10.99.0.1/24
"""


@pytest.mark.parametrize("kind", ["bridge", "veth"])
def test_bond0_that_is_a_bridge_or_veth_is_refused_and_its_group_untouched(netns, tmp_path, kind):
    conf = setup_pair(netns, tmp_path, BOND_ON_VETHS)
    netns.ip("link", "add", "bond0", "type", kind, *(["peer", "name", "bond0p"] if kind == "veth" else []))
    before = links(netns)
    refusal = f"bond0: is of kind {kind}, but the config says bond ([bond bond0]); refused: nothing is done to " \
              "bond0, v1, v2"
    plan = run_ib40d("plan", "-c", conf, netns=netns.name)
    assert plan.returncode == 1 and f"refused: {refusal}" in plan.stdout.splitlines(), plan.stdout
    monitor = Monitor(netns)
    proc = run_ib40d_private_run("apply", "-c", conf, netns=netns.name)
    events = monitor.stop()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"error: {refusal}" in proc.stdout.splitlines() and "Traceback" not in proc.stderr
    assert events == [] and links(netns) == before


def test_ipoib_section_on_a_veth_is_refused_before_any_write(netns, tmp_path):
    conf = setup_pair(netns, tmp_path, "[ipoib ib0]\nmode = connected\nmtu = 65520\naddress = 10.99.0.1/24\n")
    netns.ip("link", "add", "ib0", "type", "veth", "peer", "name", "ib0p")
    netns.ip("link", "set", "ib0", "up")
    before = links(netns)
    monitor = Monitor(netns)
    proc = run_ib40d_private_run("apply", "-c", conf, netns=netns.name)
    events = monitor.stop()
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == "error: ib0: is of kind veth, but the config says ipoib ([ipoib ib0]); " \
                                          "refused: nothing is done to ib0"
    assert events == [] and links(netns) == before  # no flap, no EACCES from a mode file


def test_link_renamed_mid_apply_gets_no_more_writes(netns, tmp_path):
    # v1 is renamed to v1x (by udev, by hand) right after ib40's first write
    # to it: nothing more may land on that ifindex; v2's group goes on.
    conf = setup_pair(netns, tmp_path)
    script = textwrap.dedent(f"""
        import json, subprocess
        from ib40d.system.config_reader import load
        from ib40d.system.netlink import Netlink
        from ib40d.system.apply_engine import converge
        from ib40d.system.sysroot import SysRoot

        class RenamedAfterFirstWrite(Netlink):
            def set_txqueuelen(self, index, name, qlen):
                super().set_txqueuelen(index, name, qlen)
                subprocess.run(["ip", "link", "set", "v1", "name", "v1x"], check=True)

        result = converge(load({conf!r}), RenamedAfterFirstWrite(), SysRoot("/"))
        print(json.dumps(result.to_json()))
    """)
    proc = netns.exec(sys.executable, "-c", script, env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert not result["ok"]
    assert result["errors"] == ["v1: v1 was renamed to v1x during the apply (ifindex "
                                f"{links(netns)['v1x']['ifindex']}); refused: nothing more is written to it or its group"]
    assert [a["kind"] for a in result["done"] if a["target"] == "v1"] == ["link.txqueuelen"]
    v1x = links(netns)["v1x"]
    assert v1x["mtu"] == 1500 and "UP" not in v1x["flags"]
    assert [a for a in v1x["addr_info"] if a["scope"] == "global"] == []
    assert [a["local"] for a in links(netns)["v2"]["addr_info"] if a["family"] == "inet"] == ["10.99.0.2"]


def test_apply_waits_for_the_lock_a_bounded_time_naming_the_holder(netns, tmp_path):
    conf = setup_pair(netns, tmp_path)
    holder = ("import fcntl, sys, time; f = open('/run/ib40/apply.lock', 'a'); fcntl.flock(f, fcntl.LOCK_EX); "
              "open('/run/held', 'w').close(); time.sleep(float(sys.argv[1]))")
    apply = f"{sys.executable} -m ib40d apply -c {conf} --lock-wait"
    script = textwrap.dedent(f"""
        mkdir /run/ib40
        hold() {{ rm -f /run/held; {sys.executable} -c "{holder}" "$1" & pid=$!
                  while [ ! -e /run/held ]; do sleep 0.05; done; echo "holder $pid"; }}
        hold 600; {apply} 1; echo "rc $?"; kill $pid; wait
        hold 2; {apply} 120; echo "rc $?"; wait
    """)
    proc = subprocess.run(private_run(["sh", "-c", script], netns.name), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=str(REPO)), timeout=300)
    out = proc.stdout.splitlines()
    first, second = [int(l.split()[1]) for l in out if l.startswith("holder")]
    assert [l for l in out if l.startswith("rc")] == ["rc 1", "rc 0"], proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    held_by = f"held by pid {first} ({sys.executable} -c import fcntl"
    gave_up, waited_again = proc.stderr.splitlines()[1:]
    assert proc.stderr.splitlines()[0].startswith(f"ib40d apply: waiting for the apply lock /run/ib40/apply.lock, {held_by}")
    assert gave_up.startswith("ib40d apply: gave up after 1 s waiting for the apply lock /run/ib40/apply.lock, "
                              f"{held_by}") and gave_up.endswith("; nothing was changed")
    assert waited_again.startswith(f"ib40d apply: waiting for the apply lock /run/ib40/apply.lock, held by pid {second} ")
    assert links(netns)["v1"]["mtu"] == 9000  # the second apply, once the holder let go


def test_read_only_run_is_one_line_and_touches_nothing(netns, tmp_path):
    conf = setup_pair(netns, tmp_path)
    monitor = Monitor(netns)
    proc = run_ib40d_private_run("apply", "-c", conf, netns=netns.name, mount="mount -t tmpfs -o ro tmpfs /run")
    events = monitor.stop()
    assert proc.returncode == 1 and proc.stdout == ""
    assert proc.stderr.splitlines() == ["ib40d apply: cannot open the apply lock /run/ib40/apply.lock: "
                                        "Read-only file system; nothing was changed"]
    assert events == []


def test_apply_refuses_a_root_other_than_slash(netns, tmp_path):
    # --root reads a support bundle; its config must not reach this kernel
    conf = setup_pair(netns, tmp_path)
    monitor = Monitor(netns)
    proc = run_ib40d_private_run("apply", "-c", conf, "--root", str(tmp_path), netns=netns.name)
    events = monitor.stop()
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.splitlines() == [f"ib40d apply: --root {tmp_path}: apply changes this machine's links "
                                        "and runs only with --root /"]
    assert events == [] and links(netns)["v1"]["mtu"] == 1500
    run_ib40d_private_run("apply", "-c", conf, "--root", "/", netns=netns.name, check_rc=0)
