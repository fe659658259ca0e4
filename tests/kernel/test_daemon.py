# SPDX-License-Identifier: GPL-2.0-or-later
"""The daemon (ib40d.service) for real in a network namespace: first apply,
READY=1 over a real NOTIFY_SOCKET, hotplug, link-ready, reload, stop."""

import os
import signal
import socket
import time

import pytest

from helpers import run_ib40d, run_ib40d_private_run, start_daemon, wait_for

pytestmark = pytest.mark.netns

CONF = """
[link v1]
mtu = 9000
address = 10.98.0.1/24
[link v2]
address = 10.98.0.2/24
[link w1]
txqueuelen = 5000
[bond bond7]
slaves = w1
miimon = 100
"""


@pytest.fixture
def notify_socket(tmp_path):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    messages = []

    def read():
        try:
            while True:
                messages.append(sock.recv(4096).decode())
        except (socket.timeout, BlockingIOError):
            pass
        return messages

    yield path, read
    sock.close()


def test_daemon_applies_notifies_handles_hotplug_and_requests(netns, tmp_path, notify_socket):
    notify_path, read_notify = notify_socket
    conf = tmp_path / "ib40.conf"
    # bond7 can't exist on this kernel (no bonding module): the daemon must
    # say what it waits for, and turn READY after its timeout, not hang.
    conf.write_text(CONF)
    root = tmp_path / "root"
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    daemon = start_daemon(netns.name, conf, root, "--ready-timeout", "3", env={"NOTIFY_SOCKET": notify_path})
    try:
        assert wait_for(lambda: "mtu 9000" in netns.ip("link", "show", "v1"))
        assert wait_for(lambda: any("READY=1" in m for m in read_notify()), timeout=15), read_notify()
        msgs = read_notify()
        assert any(m.startswith("STATUS=") and "bond7" in m for m in msgs), msgs

        # hotplug: the link goes away and comes back; the daemon re-applies it
        netns.ip("link", "del", "v1")
        netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
        assert wait_for(lambda: "mtu 9000" in netns.ip("link", "show", "v1")), netns.ip("link")
        assert wait_for(lambda: "10.98.0.2/24" in netns.ip("addr", "show", "v2"))

        # what ib40-link@v1.service runs: answered by the daemon, converged
        ready = run_ib40d("link-ready", "v1", "-c", str(conf), "--root", str(root), netns=netns.name)
        assert ready.returncode == 0, ready.stdout + ready.stderr
        assert "nothing to do" in ready.stdout
        unknown = run_ib40d("link-ready", "zz", "-c", str(conf), "--root", str(root), netns=netns.name)
        assert unknown.returncode == 2 and "zz is not configured" in unknown.stderr

        # reload with an invalid config keeps the running one
        conf.write_text(CONF + "[link v9]\nmtu = 1\n")
        os.kill(daemon.pid, signal.SIGHUP)
        time.sleep(1)
        conf.write_text(CONF.replace("mtu = 9000", "mtu = 8000"))
        os.kill(daemon.pid, signal.SIGHUP)
        assert wait_for(lambda: "mtu 8000" in netns.ip("link", "show", "v1"))

        os.kill(daemon.pid, signal.SIGTERM)
        out, _ = daemon.communicate(timeout=10)
        assert daemon.returncode == 0, out
        assert "reload refused" in out and ":13: [link v9] mtu" in out
        # a lasting refusal (no bonding module here) is logged once, not at every event
        assert out.count("error: bond7: create bond bond7: refused by the kernel: EOPNOTSUPP") == 1
        assert "ready after" in out and "bond7" in out
        assert "mtu 8000" in netns.ip("link", "show", "v1")  # stopping leaves links as they are
        assert not (root / "run/ib40/control.sock").exists()
        # once ready, each reload is RELOADING=1 ... READY=1 (refused or not), and the stop STOPPING=1
        msgs = read_notify()
        after_ready = [m for m in msgs[next(i for i, m in enumerate(msgs) if "READY=1" in m) + 1:]
                       if not m.startswith("STATUS=")]
        assert [m.splitlines()[0] for m in after_ready] == [
            "RELOADING=1", "READY=1", "RELOADING=1", "READY=1", "STOPPING=1"], msgs
        assert all(m.splitlines()[1].startswith("MONOTONIC_USEC=") for m in after_ready[::2][:2]), msgs
        assert after_ready[3] == "READY=1\nSTATUS=configuration reloaded", msgs
    finally:
        if daemon.poll() is None:
            daemon.kill()
            daemon.wait()


def test_a_reload_before_ready_leaves_the_start_to_end_with_its_own_ready(tmp_path, monkeypatch):
    # RELOADING=1 then READY=1 while bonds still miss slaves would tell
    # systemd the start is over: before the first READY=1 a reload says nothing.
    from ib40d.system import notify
    from ib40d.commands.daemon import Daemon

    sent = []
    monkeypatch.setattr(notify, "_send", sent.append)
    daemon = Daemon.__new__(Daemon)
    daemon.ready_sent = False
    monkeypatch.setattr(daemon, "load_new_config", lambda: True, raising=False)
    monkeypatch.setattr(daemon, "converge", lambda: None, raising=False)
    monkeypatch.setattr(daemon, "check_ready", lambda: None, raising=False)
    daemon.reload()
    assert sent == []
    daemon.ready_sent = True
    daemon.reload()
    assert [m.splitlines()[0] for m in sent] == ["RELOADING=1", "READY=1"]


def test_link_ready_without_daemon_applies_in_process(netns, tmp_path):
    conf = tmp_path / "ib40.conf"
    conf.write_text("[link v1]\nmtu = 7000\n")
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    proc = run_ib40d("link-ready", "v1", "--wait", "0.2", "-c", str(conf), "--root", str(tmp_path), netns=netns.name)
    assert proc.returncode == 0, proc.stderr
    assert "not answering" in proc.stderr and "mtu 1500 -> 7000" in proc.stdout
    assert "mtu 7000" in netns.ip("link", "show", "v1")


def test_only_changes_ib40_makes_call_for_an_apply(tmp_path):
    # What wakes the daemon: a configured link appearing or changing what
    # ib40 sets; not carrier flaps, nor links outside the config.
    from ib40d.commands.daemon import Daemon

    class Monitor:
        def __init__(self, events):
            self.queue = events

        def events(self):
            events, self.queue = self.queue, []
            return events

    def link(name, index=5, flags=0x1003, mtu=9000, master=None):
        return {"name": name, "index": index, "flags": flags, "master": master, "mtu": mtu,
                "txqueuelen": 1000, "kind": None}

    daemon = Daemon.__new__(Daemon)
    daemon.cfg = type("Cfg", (), {"names": lambda self: ["v1"]})()
    daemon.pending, daemon.pending_since, daemon.seen = set(), None, {}
    daemon.on_link_event(Monitor([(False, link("v1"))]))
    assert daemon.pending == {"v1"}
    daemon.pending.clear()
    daemon.on_link_event(Monitor([(False, link("v1", flags=0x11003)), (False, link("other0"))]))  # carrier only
    assert daemon.pending == set()
    daemon.on_link_event(Monitor([(True, link("v1")), (False, link("v1", index=9))]))  # unplugged, back
    assert daemon.pending == {"v1"}
    daemon.pending.clear()
    daemon.on_link_event(Monitor(None))  # events dropped: look at everything
    assert daemon.pending == {"v1"}


def test_apply_after_an_edit_is_not_undone_by_the_daemon(netns, tmp_path):
    conf = tmp_path / "ib40.conf"
    conf.write_text("[link v1]\nmtu = 9000\n")
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    daemon = start_daemon(netns.name, conf, tmp_path / "root")
    try:
        assert wait_for(lambda: "mtu 9000" in netns.ip("link", "show", "v1"))
        conf.write_text("[link v1]\nmtu = 7000\n")
        run_ib40d_private_run("apply", "-c", str(conf), netns=netns.name, check_rc=0)
        time.sleep(2)  # the daemon has seen the MTU event by now
        assert "mtu 7000" in netns.ip("link", "show", "v1")
    finally:
        daemon.terminate()
        out, _ = daemon.communicate(timeout=10)
    assert "configuration reloaded" in out, out
    assert "mtu 7000 -> 9000" not in out
