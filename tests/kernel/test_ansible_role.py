# SPDX-License-Identifier: GPL-2.0-or-later
"""The Ansible role's tasks run by Debian's ansible-playbook (local
connection) against a fake ib40d (tests/bin/ib40d-for-ansible-role): the real one
would change this host's links, and no machine here has the ConnectX cards
`ib40d porttype` sets. In a private mount namespace: the test's own /run, the
fake ib40d and systemctl over /usr/bin, and /etc as an overlay whose writes
land in the test's directory. What is checked is the role's own logic: which
ib40d commands it runs when, what it reports changed, when it fails, and the
facts. The role against the real ib40d: tests/lab/test_56_ansible.py."""

import json
import os
import re
import shutil
import subprocess

import pytest

from helpers import REPO, private_run

ROLES = REPO / "contrib/ansible/roles"
RECAP = re.compile(r"^localhost\s*:\s*ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+failed=(\d+)", re.M)
# What `ansible.builtin.systemd` reads of a started, enabled unit.
FAKE_SYSTEMCTL = """#!/bin/sh
case "$1" in
  show) printf 'Id=ib40d.service\\nLoadState=loaded\\nActiveState=active\\nSubState=running\\nUnitFileState=enabled\\n' ;;
  is-enabled|is-active) echo enabled ;;
esac
"""
PLAYBOOK = """- hosts: localhost
  connection: local
  gather_facts: false
  roles: [ib40]
  post_tasks:
    - name: The facts, for the test
      ansible.builtin.copy:
        content: "{{ {'reboot_pending': ib40_reboot_pending} | to_json }}"
        dest: %s
      check_mode: false
"""
CARDS = {"ib40_cards": [{"name": "0000:05:00.0", "port1": "ib", "port2": "ib"},
                        {"name": "0000:81:00.0", "port1": "ib", "port2": "eth"}]}
BOND = {"ib40_links": [{"name": "eth40a", "mac": "00:02:c9:3e:ca:b1"}, {"name": "eth40b", "mac": "00:02:c9:3e:ca:b0"}],
        "ib40_bonds": [{"name": "bond0", "slaves": ["eth40a", "eth40b"], "mode": "balance-rr",
                        "address": ["10.30.0.7/16"]}]}
FIRMWARE_ACTION = {"kind": "porttype.firmware", "target": "0000:81:00.0",
                   "changes": [{"attr": "port1 next boot", "old": "eth", "new": "ib"}], "reason": ""}
MTU_ACTION = {"kind": "link.set", "target": "bond0", "changes": [{"attr": "mtu", "old": 1500, "new": 9000}],
              "reason": ""}


class Host:
    """This machine as the role's one host, ib40d faked; STATE the fake's."""

    def __init__(self, tmp_path):
        self.dir = tmp_path
        self.state = tmp_path / "state"
        for d in ("state", "bin", "etc-upper", "etc-work", "home", "run"):
            (tmp_path / d).mkdir()
        (tmp_path / "bin/ib40d").write_text('#!/bin/sh\nIB40_FAKE_STATE=%s exec %s "$@"\n' % (
            self.state, REPO / "tests/bin/ib40d-for-ansible-role"))
        (tmp_path / "bin/systemctl").write_text(FAKE_SYSTEMCTL)
        for f in ("ib40d", "systemctl"):
            (tmp_path / "bin" / f).chmod(0o755)
        (tmp_path / "site.yml").write_text(PLAYBOOK % (self.state / "facts.json"))

    def scenario(self, **scenario):
        (self.state / "scenario.json").write_text(json.dumps(scenario))

    def play(self, host_vars, *args):
        (self.dir / "vars.json").write_text(json.dumps(dict(host_vars, ib40_try_timeout=20)))
        (self.state / "calls.log").write_text("")
        mounts = " && ".join([
            "mount --bind %s /run" % (self.dir / "run"),  # kept from one run to the next, as on a host
            "mount -t overlay overlay -o lowerdir=%s:/usr/bin /usr/bin" % (self.dir / "bin"),
            "mount -t overlay overlay -o lowerdir=/etc,upperdir=%s,workdir=%s /etc" % (
                self.dir / "etc-upper", self.dir / "etc-work")])
        env = dict(os.environ, HOME=str(self.dir / "home"), ANSIBLE_ROLES_PATH=str(ROLES),
                   ANSIBLE_LOCAL_TEMP=str(self.dir / "home/tmp"), ANSIBLE_REMOTE_TEMP=str(self.dir / "home/rtmp"),
                   ANSIBLE_ASYNC_DIR=str(self.dir / "home/async"), ANSIBLE_NOCOLOR="1",
                   ANSIBLE_RETRY_FILES_ENABLED="False", PYTHONPATH="")
        cmd = ["ansible-playbook", "-i", "localhost,", "-e", "ansible_python_interpreter=/usr/bin/python3",
               "-e", "@%s" % (self.dir / "vars.json"), str(self.dir / "site.yml"), *args]
        res = subprocess.run(private_run(cmd, mount=mounts), capture_output=True, text=True, env=env,
                             timeout=300)
        out = res.stdout + res.stderr
        recap = RECAP.search(res.stdout)
        assert recap, out
        calls = (self.state / "calls.log").read_text().splitlines()
        return res.returncode, out, dict(zip(("ok", "changed", "unreachable", "failed"), map(int, recap.groups()))), \
            calls

    def facts(self):
        return json.loads((self.state / "facts.json").read_text())

    def etc_conf(self):
        path = self.dir / "etc-upper/ib40.conf"
        return path.read_text() if path.exists() else None


@pytest.fixture
def host(tmp_path):
    if os.geteuid() != 0 or shutil.which("ansible-playbook") is None:
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with ansible-core (make deps): the role's test must run there")
        pytest.skip("needs root (a mount namespace) and ansible-playbook (apt install ansible-core)")
    return Host(tmp_path)


def _commands(calls):
    return [" ".join(c.split()[:2]) for c in calls]


def test_port_types_of_several_card_sections_are_set_once_and_a_pending_reboot_is_a_fact(host):
    host.scenario(card_actions=[FIRMWARE_ACTION],
                  port_types_after=[{"pci": "0000:05:00.0", "reboot_pending": []},
                                    {"pci": "0000:81:00.0", "reboot_pending": ["port1 eth->ib"]}])
    rc, out, recap, calls = host.play(CARDS)
    assert rc == 0 and recap["failed"] == 0, out
    assert "porttype -c /run/ib40-ansible/ib40.conf" in calls, calls
    assert host.facts() == {"reboot_pending": ["0000:81:00.0 port1 eth->ib"]}
    assert "reboot needed: 0000:81:00.0 port1 eth->ib" in out
    assert "[card 0000:81:00.0]" in host.etc_conf()  # the new file went through a confirmed trial

    rc, out, recap, calls = host.play(CARDS)
    assert rc == 0 and recap["changed"] == 0, out
    assert not {"porttype -c", "try -c", "try --confirm"} & set(_commands(calls)), calls


def test_only_port_types_to_set_runs_no_trial(host):
    host.scenario()
    rc, out, recap, calls = host.play(CARDS)
    assert rc == 0, out
    host.scenario(card_actions=[FIRMWARE_ACTION])  # e.g. a card replaced: the file is the same
    rc, out, recap, calls = host.play(CARDS)
    assert rc == 0 and recap["changed"] == 1, out
    assert "porttype -c" in _commands(calls) and "try -c" not in _commands(calls), calls


def test_check_mode_shows_the_plan_and_runs_only_what_reads(host):
    host.scenario(link_actions=[MTU_ACTION], card_actions=[FIRMWARE_ACTION])
    rc, out, recap, calls = host.play(dict(BOND, **CARDS), "--check", "--diff")
    assert rc == 0 and recap["changed"] > 0, out
    assert "link.set bond0: mtu 1500 -> 9000" in out and "porttype.firmware 0000:81:00.0" in out, out
    assert "+[bond bond0]" in out, out
    assert set(_commands(calls)) <= {"check -c", "plan -c", "status --json", "doctor --json"}, calls
    assert host.etc_conf() is None


def test_a_failed_apply_fails_the_host_at_once_with_its_error(host):
    error = "error: bond0: is of kind bridge, but the config says bond ([bond bond0]); refused: nothing is done"
    host.scenario(link_actions=[MTU_ACTION], apply_error=error)
    rc, out, recap, calls = host.play(BOND)
    assert rc != 0 and recap["failed"] == 1, out
    assert "`ib40d try` exited 1: %s | ib40d try: the apply failed; rolling back" % error in out, out
    assert _commands(calls).count("try --confirm") == 1 and "RETRYING: [localhost]: Confirm" not in out, out
    assert host.etc_conf() is None


def test_a_trial_still_starting_is_asked_again_and_confirmed(host):
    host.scenario(link_actions=[MTU_ACTION], start_delay_s=3)
    rc, out, recap, calls = host.play(BOND)
    assert rc == 0, out
    assert _commands(calls).count("try --confirm") > 1 and "RETRYING: [localhost]: Confirm" in out, out
    assert "[bond bond0]" in host.etc_conf()


def test_a_second_run_leaves_a_config_of_mode_0600_alone(host):
    host.scenario(link_actions=[MTU_ACTION])
    rc, out, recap, calls = host.play(BOND)
    assert rc == 0, out
    (host.dir / "etc-upper/ib40.conf").chmod(0o600)  # `ib40d try` keeps the mode it finds
    rc, out, recap, calls = host.play(BOND)
    assert rc == 0 and recap["changed"] == 0, out
    assert "try -c" not in _commands(calls), calls


def test_an_apply_counts_the_file_the_trial_and_its_confirmation_as_changes_and_nothing_else(host):
    host.scenario(link_actions=[MTU_ACTION])
    assert host.play(BOND)[0] == 0
    bond = dict(BOND["ib40_bonds"][0], mtu=9000)
    rc, out, recap, calls = host.play(dict(BOND, ib40_bonds=[bond]))  # a trial.pid from the first is there
    assert rc == 0 and recap["changed"] == 3, out
    assert "mtu = 9000" in host.etc_conf()
