# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d try` for real in a network namespace (veth: this kernel has no
bonding; bonds are tried in the lab): a confirmed trial stays, one that is
not confirmed or is interrupted is rolled back exactly (`ip -j addr` and
`ip -j -d link` as before), an invalid file touches nothing, and the daemon
running alongside undoes neither outcome. Files under a --root of the test's
own, as the daemon's tests do."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from helpers import REPO, run_ib40d, run_ib40d_private_run, start_daemon, wait_for

pytestmark = pytest.mark.netns

RUNNING = "[link v1]\naddress = 10.97.0.1/24\n[link v2]\naddress = 10.97.0.2/24\n"
NEW = "[link v1]\nmtu = 9000\ntxqueuelen = 4000\naddress = 10.96.0.1/24\n[link v2]\naddress = 10.96.0.2/24 10.96.1.2/24\n"


def kernel_state(ns) -> tuple:
    return json.loads(ns.ip("-j", "addr")), json.loads(ns.ip("-j", "-d", "link"))


def make_pair(ns, tmp_path, running=RUNNING):
    """v1/v2 up with the running config's addresses, other0 not in any config."""
    ns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    ns.ip("link", "add", "other0", "type", "veth", "peer", "name", "other1")
    ns.ip("link", "set", "other0", "mtu", "1400")
    ns.ip("addr", "add", "10.97.0.1/24", "dev", "v1")
    ns.ip("addr", "add", "10.97.0.2/24", "dev", "v2")
    for name in ("v1", "v2", "other0", "other1"):
        ns.ip("link", "set", name, "up")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/ib40.conf").write_text(running)
    new = tmp_path / "new.conf"
    new.write_text(NEW)
    # IPv6 link-local addresses settle (DAD) before the picture is taken
    assert wait_for(lambda: "tentative" not in ns.ip("addr"))
    return root, new


def settled_to(ns, state) -> bool:
    return wait_for(lambda: kernel_state(ns) == state, timeout=10)


class Try:
    """`ib40d try` running in the namespace; its output read as it comes."""

    def __init__(self, ns, *args):
        self.proc = subprocess.Popen(["ip", "netns", "exec", ns.name, sys.executable, "-m", "ib40d", "try", *args],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                     text=True, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))
        self.lines: list[str] = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def waiting(self) -> bool:
        return wait_for(lambda: any(l.startswith("keep this configuration?") for l in self.lines))

    def finish(self) -> tuple[int, str]:
        rc = self.proc.wait(timeout=60)
        self.reader.join(timeout=5)
        return rc, "".join(self.lines)


def test_unconfirmed_trial_is_rolled_back_exactly(netns, tmp_path):
    root, new = make_pair(netns, tmp_path)
    before = kernel_state(netns)
    rc, out = Try(netns, "-c", str(new), "--root", str(root), "--timeout", "1").finish()
    assert rc == 1, out
    assert "done: link.mtu v1: mtu 1500 -> 9000" in out  # it was applied...
    assert "not confirmed within 1 s; rolling back" in out  # ...then rolled back, saying what
    assert "restored: link.mtu v1: mtu 9000 -> 1500" in out
    assert "restored: addr.add v1: address (none) -> 10.97.0.1/24" in out
    assert settled_to(netns, before), (before, kernel_state(netns))
    assert (root / "etc/ib40.conf").read_text() == RUNNING
    assert not (root / "run/ib40/trial").exists() and not (root / "run/ib40/trial.sock").exists()


def test_confirmed_trial_stays_and_becomes_the_config(netns, tmp_path):
    root, new = make_pair(netns, tmp_path)
    trial = Try(netns, "-c", str(new), "--root", str(root), "--timeout", "60")
    assert trial.waiting(), trial.lines
    confirm = run_ib40d("try", "--confirm", "--root", str(root), netns=netns.name)
    assert confirm.returncode == 0, confirm.stdout + confirm.stderr
    assert confirm.stdout.splitlines()[0] == "confirmed"
    rc, out = trial.finish()
    assert rc == 0, out
    assert (root / "etc/ib40.conf").read_text() == NEW
    # the machine is what the new file says: nothing left to plan
    plan = run_ib40d("plan", "--root", str(root), netns=netns.name)
    assert plan.returncode == 0, plan.stdout + plan.stderr
    again = run_ib40d("try", "--confirm", "--root", str(root), netns=netns.name)
    assert again.returncode == 1 and "no trial is running" in again.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_trial_is_rolled_back(netns, tmp_path, signum):
    root, new = make_pair(netns, tmp_path)
    before = kernel_state(netns)
    trial = Try(netns, "-c", str(new), "--root", str(root), "--timeout", "60")
    assert trial.waiting(), trial.lines
    assert kernel_state(netns) != before
    # the Popen is `ip netns exec`, which execs python: its pid is ib40d's
    trial.proc.send_signal(signum)
    rc, out = trial.finish()
    assert rc == 1, out
    assert f"interrupted by {signal.Signals(signum).name}; rolling back" in out
    assert settled_to(netns, before), (before, kernel_state(netns))
    assert (root / "etc/ib40.conf").read_text() == RUNNING


def test_invalid_file_touches_nothing(netns, tmp_path):
    root, new = make_pair(netns, tmp_path)
    new.write_text(NEW + "[link v3]\nmtu = 1\n")
    before = kernel_state(netns)
    proc = run_ib40d("try", "-c", str(new), "--root", str(root), "--timeout", "1", netns=netns.name)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert f"{new}:8: [link v3] mtu:" in proc.stderr and "nothing was changed" in proc.stderr
    assert kernel_state(netns) == before
    assert not (root / "run").exists()  # not even the lock or a marker
    assert (root / "etc/ib40.conf").read_text() == RUNNING


def addresses(ns, name) -> list[str]:
    return [f"{a['local']}/{a['prefixlen']}" for l in json.loads(ns.ip("-j", "addr", "show", name))
            for a in l["addr_info"] if a["family"] == "inet"]


class Daemon:
    """ib40d daemon in the namespace on ROOT's /etc/ib40.conf; its log read as it comes."""

    def __init__(self, ns, root):
        self.proc = start_daemon(ns.name, root / "etc/ib40.conf", root)
        self.log: list[str] = []
        threading.Thread(target=lambda: self.log.extend(self.proc.stdout), daemon=True).start()

    def logged(self, text: str, since: int = 0) -> bool:
        return wait_for(lambda: any(text in line for line in self.log[since:]), timeout=15)

    def stop(self) -> None:
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()


def test_the_daemon_undoes_neither_outcome(netns, tmp_path):
    root, new = make_pair(netns, tmp_path)
    daemon = Daemon(netns, root)
    log, logged = daemon.log, daemon.logged

    def daemon_converged() -> bool:
        """An event the daemon answers (v1 set down): it sets v1 up again."""
        netns.ip("link", "set", "v1", "down")
        return wait_for(lambda: "UP" in json.loads(netns.ip("-j", "link", "show", "v1"))[0]["flags"])

    try:
        assert wait_for(lambda: any("ready" in line for line in log), timeout=30), log
        before = kernel_state(netns)

        # rolled back: while it runs the daemon holds off; afterwards it keeps the old file
        trial = Try(netns, "-c", str(new), "--root", str(root), "--timeout", "4")
        assert trial.waiting(), trial.lines
        netns.ip("link", "set", "v2", "txqueuelen", "900")  # an event the daemon would answer
        assert logged("`ib40d try` (pid"), log
        assert addresses(netns, "v1") == ["10.96.0.1/24"]  # the trial's, not put back by the daemon
        rc, out = trial.finish()
        assert rc == 1, out
        netns.ip("link", "set", "v2", "txqueuelen", "1000")  # as recorded, so `before` holds
        assert settled_to(netns, before), (before, kernel_state(netns))

        # confirmed: the daemon reloads and keeps the new file, also after an event
        trial = Try(netns, "-c", str(new), "--root", str(root), "--timeout", "60")
        assert trial.waiting(), trial.lines
        assert run_ib40d("try", "--confirm", "--root", str(root), netns=netns.name).returncode == 0
        assert trial.finish()[0] == 0
        assert wait_for(lambda: any("configuration reloaded" in line for line in log)), log
        assert daemon_converged()
        assert addresses(netns, "v1") == ["10.96.0.1/24"] and addresses(netns, "v2") == ["10.96.0.2/24", "10.96.1.2/24"]

        # /etc/ib40.conf itself tried and rolled back: it stays edited, and
        # the daemon does not read it behind the user's back
        # (edited while the daemon is idle: at its next link event it reads
        # an edited file, trial or not, as it always has; README says so)
        time.sleep(1)  # its follow-up to its own link.up above (0.2 s debounce)
        mark = len(log)
        (root / "etc/ib40.conf").write_text(RUNNING)
        rc, out = Try(netns, "--root", str(root), "--timeout", "1").finish()
        assert rc == 1 and "rolled back" in out, out
        assert (root / "etc/ib40.conf").read_text() == RUNNING
        assert daemon_converged()
        assert logged("`ib40d try` rolled it back and it has not changed since", mark), log
        assert addresses(netns, "v1") == ["10.96.0.1/24"]
    finally:
        daemon.stop()


def test_a_hangup_does_not_end_the_trial(netns, tmp_path):
    # The SSH session the change cut off sends SIGHUP: the trial waits on
    # for --confirm (from a new session) or its deadline.
    root, new = make_pair(netns, tmp_path)
    trial = Try(netns, "-c", str(new), "--root", str(root), "--timeout", "60")
    assert trial.waiting(), trial.lines
    trial.proc.send_signal(signal.SIGHUP)
    confirm = run_ib40d("try", "--confirm", "--root", str(root), netns=netns.name)
    assert confirm.returncode == 0, confirm.stdout + confirm.stderr
    rc, out = trial.finish()
    assert rc == 0 and (root / "etc/ib40.conf").read_text() == NEW, out


def test_routes_are_rolled_back_too(netns, tmp_path):
    """The running config's route is replaced by the trial's; unconfirmed,
    the trial's goes and the old one is back, `ip -j route` as before."""
    running = RUNNING.replace("address = 10.97.0.1/24\n", "address = 10.97.0.1/24\nroutes = 10.50.0.0/24 via 10.97.0.2\n")
    root, new = make_pair(netns, tmp_path, running)
    netns.ip("route", "add", "10.50.0.0/24", "via", "10.97.0.2", "dev", "v1", "proto", "static")
    new.write_text(running.replace("10.50.0.0/24 via 10.97.0.2", "10.60.0.0/24 via 10.97.0.2 metric 5"))
    before = kernel_state(netns), json.loads(netns.ip("-j", "route"))
    rc, out = Try(netns, "-c", str(new), "--root", str(root), "--timeout", "1").finish()
    assert rc == 1, out
    assert "done: route.add v1" in out and "restored: route.del v1" in out and "restored: route.add v1" in out
    assert wait_for(lambda: (kernel_state(netns), json.loads(netns.ip("-j", "route"))) == before, timeout=10)


def test_apply_by_hand_during_a_trial_is_refused(netns, tmp_path):
    root, new = make_pair(netns, tmp_path)
    trial = Try(netns, "-c", str(new), "--root", str(root), "--timeout", "60")
    assert trial.waiting(), trial.lines
    during = kernel_state(netns)
    # apply runs only on / : the trial's /run is bound over /run for it
    proc = run_ib40d_private_run("apply", "-c", str(root / "etc/ib40.conf"), netns=netns.name,
                                 mount=f"mount --bind {root / 'run'} /run")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "is trying" in proc.stderr and "nothing was changed" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1
    assert kernel_state(netns) == during
    trial.proc.send_signal(signal.SIGTERM)
    assert trial.finish()[0] == 1


@pytest.mark.parametrize("timeout", ["1e7", "inf", "0"])
def test_a_timeout_the_wait_cannot_take_is_refused_before_anything(netns, tmp_path, timeout):
    root, new = make_pair(netns, tmp_path)
    before = kernel_state(netns)
    proc = run_ib40d("try", "-c", str(new), "--root", str(root), "--timeout", timeout, netns=netns.name)
    assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stdout + proc.stderr
    assert "--timeout must be more than 0 and at most 86400 seconds" in proc.stderr
    assert kernel_state(netns) == before and not (root / "run").exists()


def test_a_link_that_appears_during_a_trial_is_applied_after_it(netns, tmp_path):
    """The trial changes addresses only, so its rollback makes no link event
    of the kind the daemon answers: the daemon still applies v3, which
    appeared while the trial held it off, once the trial is over."""
    root, new = make_pair(netns, tmp_path, RUNNING + "[link v3]\naddress = 10.97.3.1/24\n")
    new.write_text(RUNNING.replace("10.97.0.1/24", "10.96.0.1/24"))
    daemon = Daemon(netns, root)
    try:
        assert daemon.logged("ready"), daemon.log
        trial = Try(netns, "-c", str(new), "--root", str(root), "--timeout", "3")
        assert trial.waiting(), trial.lines
        netns.ip("link", "add", "v3", "type", "veth", "peer", "name", "v4")
        assert daemon.logged("`ib40d try` (pid"), daemon.log
        assert addresses(netns, "v3") == []
        rc, out = trial.finish()
        assert rc == 1 and "rolled back" in out, out
        assert wait_for(lambda: addresses(netns, "v3") == ["10.97.3.1/24"], timeout=15), daemon.log
        assert addresses(netns, "v1") == ["10.97.0.1/24"]
    finally:
        daemon.stop()


def test_a_rolled_back_file_is_not_applied_by_a_restarted_daemon_and_said_once(netns, tmp_path):
    """/etc/ib40.conf edited, tried, rolled back: the running daemon says so
    once (not at every link event), and a daemon started afterwards (a
    restart) applies nothing until the file changes again."""
    root, _ = make_pair(netns, tmp_path)
    daemon = Daemon(netns, root)
    try:
        assert daemon.logged("ready"), daemon.log
        (root / "etc/ib40.conf").write_text(RUNNING.replace("10.97.0.1/24", "10.96.0.1/24"))
        rc, out = Try(netns, "--root", str(root), "--timeout", "1").finish()
        assert rc == 1 and "rolled back" in out, out
        for mtu in ("1400", "1300", "1500"):  # link events the daemon reads the config at
            netns.ip("link", "set", "v2", "mtu", mtu)
            time.sleep(0.5)
        assert daemon.logged("rolled it back and it has not changed since"), daemon.log
        assert sum("rolled it back" in line for line in daemon.log) == 1, daemon.log
    finally:
        daemon.stop()
    daemon = Daemon(netns, root)
    try:
        assert daemon.logged("ready"), daemon.log
        assert any("not applying" in line and "rolled it back" in line for line in daemon.log), daemon.log
        netns.ip("link", "set", "v1", "down")  # an event: still nothing applied
        time.sleep(1)
        assert addresses(netns, "v1") == ["10.97.0.1/24"]
        mark = len(daemon.log)
        (root / "etc/ib40.conf").write_text(RUNNING.replace("10.97.0.1/24", "10.95.0.1/24"))
        netns.ip("link", "set", "v1", "up")
        assert daemon.logged("configuration reloaded", mark), daemon.log
        assert wait_for(lambda: addresses(netns, "v1") == ["10.95.0.1/24"], timeout=15), daemon.log
    finally:
        daemon.stop()
