# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d bundle` on a machine with the real bond (the build host's kernel
has no bonding module): the tarball, read on the host with --root, gives
the status, doctor and plan the guest gave itself."""
import json
import subprocess
import sys

import pytest

from helpers import REPO

pytestmark = [pytest.mark.lab, pytest.mark.both_releases]

VIEWS = (("status",), ("status", "--json"), ("plan",), ("plan", "--json"), ("doctor", "--json"))


def _host(args, root):
    proc = subprocess.run([sys.executable, "-m", "ib40d", *args, "--root", root], capture_output=True, text=True,
                          cwd=REPO, env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}, timeout=120)
    return proc.returncode, proc.stdout


def _config_paths(text, bundle):
    """The config's path: /etc/ib40.conf in the guest, BUNDLE:/etc/ib40.conf
    on the host (never the temporary tree it is read from)."""
    assert "/tmp/ib40-bundle." not in text, text
    return text.replace(f"{bundle}:/etc/ib40.conf", "/etc/ib40.conf")


def test_a_bundle_of_the_bond_reads_on_the_host_as_on_the_guest(ib40_lab, figures, tmp_path):
    vm = ib40_lab.vms["a"]
    # One difference for plan to find, taken away by apply at the end (an
    # address: the daemon re-applies a link on link events, not on these).
    vm.run("ip address add 10.30.9.9/16 dev bond0")
    try:
        guest = {args: (r.rc, r.out) for args in VIEWS
                 for r in [vm.run(["ib40d", *args], check=False, timeout=120)]}
        made = vm.run("ib40d bundle -o /root/b.tar.gz", timeout=120)
    finally:
        vm.run("ib40d apply", timeout=120)
    bundle = tmp_path / "b.tar.gz"
    bundle.write_bytes(vm.get("/root/b.tar.gz"))
    plan = json.loads(guest[("plan", "--json")][1])
    assert [(a["kind"], a["target"]) for a in plan["actions"]] == [("addr.del", "bond0")]
    host = {args: (rc, _config_paths(out, bundle)) for args in VIEWS for rc, out in [_host(args, str(bundle))]}
    assert host == guest
    status = json.loads(host[("status", "--json")][1])
    assert [b["slaves"] for b in status["bonds"]] and all(b["exists"] for b in status["bonds"])
    figures("bundle", "%s: bundle of %d bytes (%s); status, plan, doctor on the host match the guest's"
            % (vm.hostname, bundle.stat().st_size, made.out.strip().split(":")[0]))
