# SPDX-License-Identifier: GPL-2.0-or-later
"""The Ansible role (contrib/ansible) for real: Debian's ansible-playbook on
the host, over SSH (the guests' user-mode NIC, forwarded from 127.0.0.1,
with a key made for this run) to both lab machines. The first run changes
them (bond0's MTU to 9000, applied with `ib40d try` and confirmed), the
second reports changed=0, `--check --diff` shows `ib40d plan`'s actions
and changes nothing, a host-variable file `ib40d check` refuses stops at
`validate` with nothing changed on the host, and one whose apply fails (an
[ipoib] section over a dummy link) fails the host at once with the apply's
error, without asking `ib40d try --confirm` again. One release: the role is
the same Python-free YAML on both."""
import json
import os
import re
import shutil
import subprocess

import pytest

from lab import scenario

pytestmark = pytest.mark.lab

REPO = scenario.REPO
PLAYBOOK = os.path.join(REPO, "contrib", "ansible", "site.yml")
RECAP = re.compile(r"^(\S+)\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)


def _host_vars(vm, deb, bond_mtu, ipoibs=()):
    return {
        "ib40_deb": deb,
        "ib40_links": [{"name": "eth40a", "mac": vm.macs[0], "txqueuelen": 10000},
                       {"name": "eth40b", "mac": vm.macs[1], "txqueuelen": 10000}],
        "ib40_bonds": [{"name": "bond0", "slaves": ["eth40a", "eth40b"], "mode": "balance-rr", "miimon": 100,
                        "updelay": 200, "downdelay": 200, "mtu": bond_mtu,
                        "address": ["%s/16" % vm.address], "broadcast": "10.30.255.255"}],
        "ib40_ipoibs": list(ipoibs),
        "ib40_try_timeout": 90,
    }


class Fleet:
    """An inventory of the two lab machines, and ansible-playbook runs against it."""

    def __init__(self, lab, tmp_path, deb):
        self.lab, self.dir, self.deb = lab, tmp_path, deb
        key = tmp_path / "id_ed25519"
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(key)], check=True)
        lab.parallel(lambda vm: vm.ssh_up((tmp_path / "id_ed25519.pub").read_text()))
        hosts = "".join("%s ansible_host=127.0.0.1 ansible_port=%d\n" % (vm.hostname, vm.ssh_port) for vm in lab)
        (tmp_path / "hosts.ini").write_text(
            "[ib40]\n" + hosts + "[ib40:vars]\nansible_user=root\nansible_python_interpreter=/usr/bin/python3\n"
            "ansible_ssh_private_key_file=%s\n" % key
            + "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'\n")
        (tmp_path / "host_vars").mkdir()
        for vm in lab:
            self.set_vars(vm)

    def set_vars(self, vm, bond_mtu=9000, ipoibs=()):
        (self.dir / "host_vars" / ("%s.yml" % vm.hostname)).write_text(
            json.dumps(_host_vars(vm, self.deb, bond_mtu, ipoibs), indent=1))  # JSON is YAML

    def play(self, *args):
        env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0", ANSIBLE_HOST_KEY_CHECKING="False",
                   ANSIBLE_RETRY_FILES_ENABLED="False", ANSIBLE_LOCAL_TEMP=str(self.dir / "ansible-tmp"))
        res = subprocess.run(["ansible-playbook", "-i", str(self.dir / "hosts.ini"), PLAYBOOK, *args],
                             capture_output=True, text=True, env=env, timeout=1200)
        recap = {m[0]: dict(zip(("ok", "changed", "unreachable", "failed"), map(int, m[1:])))
                 for m in RECAP.findall(res.stdout)}
        return res.returncode, res.stdout + res.stderr, recap


def _host_state(vm):
    return vm.get("/etc/ib40.conf"), json.loads(vm.run("ip -j link show bond0").out)[0]["mtu"]


def test_the_role_configures_reports_honestly_and_refuses_a_bad_file(ib40_lab, figures, tmp_path):
    if shutil.which("ansible-playbook") is None:
        if os.environ.get("CI"):
            pytest.fail("CI installs ansible-core (make deps): the role's test must run there")
        pytest.skip("needs ansible-playbook (apt install ansible-core)")
    lab = ib40_lab
    fleet = Fleet(lab, tmp_path, scenario.ensure_deb())
    try:
        rc, out, recap = fleet.play()
        assert rc == 0, out
        assert all(recap[vm.hostname]["changed"] > 0 for vm in lab), recap
        for vm in lab:
            conf, mtu = _host_state(vm)
            assert mtu == 9000 and b"mtu = 9000" in conf, (mtu, conf)
            assert vm.run("ib40d plan", check=False).rc == 0
        first = {h: r["changed"] for h, r in recap.items()}

        rc, out, recap = fleet.play()
        assert rc == 0, out
        assert all(recap[vm.hostname]["changed"] == 0 for vm in lab), out

        # --check --diff: the plan and the file's diff, nothing done
        a = lab.a
        before = _host_state(a)
        fleet.set_vars(a, bond_mtu=8000)
        rc, out, recap = fleet.play("--check", "--diff", "--limit", a.hostname)
        assert rc == 0, out
        assert "link.mtu bond0: mtu 9000 -> 8000" in out, out
        assert "-mtu = 9000" in out and "+mtu = 8000" in out, out
        assert recap[a.hostname]["changed"] > 0
        assert _host_state(a) == before

        # a host-variable file ib40d check refuses: stopped at validate, nothing changed
        fleet.set_vars(a, bond_mtu=1)
        rc, out, recap = fleet.play("--limit", a.hostname)
        assert rc != 0 and recap[a.hostname]["failed"] == 1, out
        assert "[bond bond0] mtu: 1 is out of range" in out, out
        assert _host_state(a) == before

        # valid, but its apply fails: the trial rolls back at once, and the
        # host fails with the apply's error, not after asking for a confirmation again
        a.run("ip link add ib9 type dummy")
        fleet.set_vars(a, ipoibs=[{"name": "ib9", "mode": "datagram", "mtu": 2044}])
        rc, out, recap = fleet.play("--limit", a.hostname)
        assert rc != 0 and recap[a.hostname]["failed"] == 1, out
        assert "ib9: is of kind dummy, but the config says ipoib" in out, out
        assert "`ib40d try` exited 1" in out and "RETRYING: [%s]: Confirm" % a.hostname not in out, out
        assert _host_state(a) == before
        figures("ansible", "role run 1: changed %s; run 2: changed=0 on both; --check --diff showed the plan; "
                "a bad host-variable file was refused by validate; a failed apply failed the host at once" % first)
    finally:
        # the rest of the lab expects the bond as ib40_lab configured it
        lab.a.run("ip link del ib9", check=False)
        for vm in lab:
            vm.put("/etc/ib40.conf", scenario.bond_conf(vm))
            vm.run("ib40d apply", timeout=120, check=False)
            vm.run("systemctl stop ssh", check=False)
