# SPDX-License-Identifier: GPL-2.0-or-later
"""The daemon against bad clients and bad starts, for real: `ib40d daemon` in
its own network namespace and private mount namespace (helpers.start_daemon)
gets clients that hang up, stall, trickle, send garbage or megabytes, or come
by the hundred; after each wave a real `ib40d link-ready` must be answered by
it and a hotplugged veth configured. Then: a second daemon, a read-only /etc,
the socket's mode at bind, and errors in one client's request."""

import collections
import os
import random
import socket
import subprocess
import sys
import threading
import time

import pytest

from helpers import REPO, connect_unix as connect, run_ib40d, start_daemon, wait_for

CONF = """
[link v1]
mtu = 9000
[link v2]
txqueuelen = 4321
"""
DEADLINE_S = 60  # liveness only: the machine is slow and shared


class Running:
    """A daemon on CONF in NETNS with ROOT (default TMP/root); its output is
    collected by a thread (a daemon blocked on a full pipe would look hung).
    On the live root (ROOT "/"), its /run/ib40 is only in its own mount
    namespace: link-ready runs there too (nsenter)."""

    def __init__(self, netns, tmp, *args, root=None, **start):
        self.netns = netns
        self.conf = tmp / "ib40.conf"
        self.conf.write_text(CONF)
        self.root = root or tmp / "root"
        self.sock = os.path.join(self.root, "run/ib40/control.sock")
        netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
        self.proc = start_daemon(netns.name, self.conf, self.root, *args, **start)
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    @property
    def output(self) -> str:
        return "".join(self.lines)

    def configured(self) -> bool:
        return "mtu 9000" in self.netns.ip("link", "show", "v1")

    def started(self) -> bool:
        return wait_for(lambda: (str(self.root) == "/" or os.path.exists(self.sock)) and self.configured(),
                        DEADLINE_S)

    def link_ready(self):
        """`ib40d link-ready v1`, as ib40-link@v1.service runs it."""
        args = ("link-ready", "v1", "--wait", "10", "--timeout", str(DEADLINE_S), "-c", str(self.conf),
                "--root", str(self.root))
        if str(self.root) != "/":
            return run_ib40d(*args, netns=self.netns.name)
        return subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m", "-n", sys.executable, "-m", "ib40d",
                               *args], capture_output=True, text=True, timeout=DEADLINE_S * 2,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))

    def assert_serving(self, what: str) -> None:
        """The daemon lives, answers link-ready itself, and configures a hotplugged link."""
        ready = self.link_ready()
        assert self.proc.poll() is None, f"after {what}: the daemon exited {self.proc.returncode}: {self.output}"
        assert ready.returncode == 0 and "not answering" not in ready.stderr, \
            f"after {what}: link-ready {ready.returncode}: {ready.stdout}{ready.stderr}\n{self.output}"
        self.netns.ip("link", "del", "v1")
        self.netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
        assert wait_for(self.configured, DEADLINE_S), f"after {what}: hotplugged v1 not configured\n{self.output}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.reader.join(timeout=10)


@pytest.fixture
def daemon(netns, tmp_path):
    d = Running(netns, tmp_path)
    try:
        assert d.started(), d.output
        yield d
    finally:
        d.stop()
    assert "Traceback" not in d.output, d.output


def exchange(path: str, payload: bytes, half_close=False) -> bytes:
    """Send PAYLOAD, read until the daemon closes -> what it answered. A
    daemon that hangs up on a client still writing is an answer too."""
    with connect(path) as s:
        data = b""
        try:
            s.sendall(payload)
            if half_close:
                s.shutdown(socket.SHUT_WR)
        except (BrokenPipeError, ConnectionResetError):
            pass  # what it said before it hung up is still to be read
        try:
            while chunk := s.recv(4096):
                data += chunk
        except ConnectionResetError:
            pass
        return data


class Trickler(threading.Thread):
    """A client that sends one byte of a request every `every` seconds and
    never ends the line; records whether the daemon cut it off."""

    def __init__(self, path, every=1.0, limit=90):
        super().__init__(daemon=True)
        self.sock = connect(path)
        self.every, self.limit = every, limit
        self.cut_off = threading.Event()
        self.stop = threading.Event()

    def run(self):
        with self.sock:
            for byte in (b"apply v1" + b"x" * self.limit)[:self.limit]:
                try:
                    self.sock.send(bytes([byte]))
                except OSError:
                    self.cut_off.set()
                    return
                if self.stop.wait(self.every):
                    return


@pytest.mark.netns
def test_a_client_that_hangs_up_does_not_kill_the_daemon(daemon):
    # A liveness probe, or a link unit killed at the wrong moment.
    for _ in range(3):
        connect(daemon.sock).close()
    daemon.assert_serving("3 clients that connected and hung up")


@pytest.mark.netns
def test_a_slow_client_holds_neither_the_others_nor_hotplug(daemon):
    trickler = Trickler(daemon.sock)
    stalled = connect(daemon.sock)  # connected, never sends a byte
    trickler.start()
    try:
        time.sleep(1.5)  # the daemon has accepted both by now
        daemon.assert_serving("a client sending a byte a second and a silent one")
        # and the slow client itself is dropped at its deadline, not served for minutes
        assert trickler.cut_off.wait(DEADLINE_S), "the trickling client was never cut off"
    finally:
        trickler.stop.set()
        stalled.close()
        trickler.join(timeout=10)


def garbage(rng: random.Random) -> bytes:
    """One bad request: random bytes, a line-less request, a bad verb or too
    many words, a name too long, control bytes, bad UTF-8."""
    kind = rng.randrange(8)
    if kind == 0:
        return rng.randbytes(rng.randrange(1, 600))
    if kind == 1:
        return rng.randbytes(rng.randrange(1, 200)) + b"\n"
    if kind == 2:
        return b"apply v1 v2\n"
    if kind == 3:
        return b"APPLY v1\n"
    if kind == 4:
        return b"apply " + b"v" * rng.randrange(16, 400) + b"\n"
    if kind == 5:
        return b"apply \x00\xff\xfe\n"
    if kind == 6:
        return b"\n" * rng.randrange(1, 50)
    return b"apply zz\n"


def run_concurrently(jobs):
    """Run each job in its own thread, all released at once -> their results
    (or the exception each raised)."""
    gate = threading.Barrier(len(jobs))
    results = [None] * len(jobs)

    def run(i, job):
        try:
            gate.wait(DEADLINE_S)
            results[i] = job()
        except Exception as e:  # recorded: the assertion says which kind failed
            results[i] = e

    threads = [threading.Thread(target=run, args=(i, job), daemon=True) for i, job in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(DEADLINE_S * 2)
    return results


@pytest.mark.netns
def test_waves_of_bad_clients_leave_the_daemon_serving(daemon):
    rng = random.Random(40)
    thrown = collections.Counter()
    start = time.monotonic()

    def wave(kind, n, job):
        results = run_concurrently([job] * n)
        thrown[kind] += n
        return results

    # 1. connect and hang up, 100 at once
    wave("hang-up", 100, lambda: connect(daemon.sock).close())
    daemon.assert_serving(f"{thrown}")

    # 2. stalled mid-line (held open while link-ready and hotplug run), and half-closed
    stalled = []
    for _ in range(50):
        s = connect(daemon.sock)
        s.sendall(b"apply v")
        stalled.append(s)
    thrown["stalled mid-line"] += len(stalled)
    full = wave("half-closed after a request", 20, lambda: exchange(daemon.sock, b"apply v1\n", half_close=True))
    partial = wave("half-closed mid-line", 20, lambda: exchange(daemon.sock, b"apply v", half_close=True))
    silent = wave("half-closed without a word", 20, lambda: exchange(daemon.sock, b"", half_close=True))
    daemon.assert_serving(f"{thrown}")
    for s in stalled:
        s.close()
    assert all(isinstance(r, bytes) and r.endswith(b"\nEND 0\n") for r in full), full
    # what came before the half-close is the request
    assert all(isinstance(r, bytes) and r.startswith(b"error: v is not configured") for r in partial), partial
    assert silent == [b""] * 20, silent

    # 3. garbage: every answer is an error, never a dead daemon
    payloads = [garbage(rng) for _ in range(200)]
    answers = run_concurrently([lambda p=p: exchange(daemon.sock, p) for p in payloads])
    thrown["garbage"] += len(payloads)
    # an error, or nothing for a line never ended (dropped at the deadline)
    bad = [(p[:80], a) for p, a in zip(payloads, answers)
           if not isinstance(a, bytes) or (a and not a.endswith(b"END 2\n")) or (not a and b"\n" in p)]
    assert not bad, bad[:5]
    daemon.assert_serving(f"{thrown}")

    # 4. huge lines: 4 MB with and without a newline
    huge = wave("4 MB line", 4, lambda: exchange(daemon.sock, b"apply " + b"v" * (4 << 20)))
    huge += wave("4 MB line, newline-terminated", 4,
                 lambda: exchange(daemon.sock, b"apply " + b"v" * (4 << 20) + b"\n"))
    assert huge == [b"error: request too long\nEND 2\n"] * 8, huge
    daemon.assert_serving(f"{thrown}")

    # 5. 200 at once, of every kind, real requests among them
    kinds = [("request", lambda: exchange(daemon.sock, b"apply v1\n")),
             ("hang-up", lambda: connect(daemon.sock).close()),
             ("half-closed mid-line", lambda: exchange(daemon.sock, b"apply v", half_close=True))]
    mix = [kinds[i % len(kinds)] for i in range(150)]
    mix += [("garbage", lambda p=garbage(rng): exchange(daemon.sock, p)) for _ in range(50)]
    results = run_concurrently([job for _, job in mix])
    thrown.update(kind + " (200 at once)" for kind, _ in mix)
    failed = [(kind, r) for (kind, _), r in zip(mix, results) if isinstance(r, Exception)]
    assert not failed, failed[:5]
    answered = [r for (kind, _), r in zip(mix, results) if kind == "request"]
    assert all(r.endswith(b"END 0\n") for r in answered), answered[:5]
    daemon.assert_serving(f"{thrown}")

    total = sum(thrown.values())
    print(f"\nthrew {total} clients at the daemon in {time.monotonic() - start:.1f} s: {dict(thrown)}")


@pytest.mark.netns
def test_a_second_daemon_refuses_to_start_and_a_stale_socket_is_replaced(netns, tmp_path):
    path = tmp_path / "root/run/ib40/control.sock"
    path.parent.mkdir(parents=True)
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(path))
    stale.close()  # the file stays, nobody answers: a daemon that was killed
    first = Running(netns, tmp_path)
    try:
        assert first.started(), first.output
        second = start_daemon(netns.name, first.conf, first.root)
        out, _ = second.communicate(timeout=DEADLINE_S)
        assert second.returncode != 0, out
        assert out.splitlines() == [f"ib40d daemon: another ib40d daemon is answering on {path}; not starting"]
        assert path.exists()
        first.assert_serving("a second daemon")
    finally:
        first.stop()
    assert first.proc.returncode == 0, first.output
    assert not path.exists()


@pytest.mark.netns
def test_a_read_only_etc_is_a_warning_and_the_links_are_applied(netns, tmp_path):
    # A rescue boot or an immutable image, with rules that no longer match
    # the config: the daemon on the live root cannot write /etc/udev/rules.d.
    mounts = " && ".join([
        "mount --bind /etc /etc", "mount -o remount,bind,ro /etc",
        "mount -t tmpfs tmpfs /etc/udev/rules.d",
        "echo '# stale' > /etc/udev/rules.d/70-ib40-names.rules",
        "mount -o remount,ro /etc/udev/rules.d",
        "mount -t tmpfs tmpfs /var/lib",  # where sync keeps its manifest
    ])
    d = Running(netns, tmp_path, root="/", mounts=mounts)
    try:
        assert d.started(), d.output
        d.assert_serving("a start with a read-only /etc")
    finally:
        d.stop()
    warnings = [l for l in d.lines if l.startswith("warning:")]
    assert len(warnings) == 1 and "Read-only file system" in warnings[0], d.output
    assert "Traceback" not in d.output, d.output


# Records the mode each unix socket has the moment it is bound, in a
# daemon started under umask 0.
BIND_PROBE = """\
import os, socket, stat, sys
real_bind = socket.socket.bind
def bind(self, address):
    real_bind(self, address)
    if self.family == socket.AF_UNIX and isinstance(address, str):
        print(f"bound {address} mode {stat.S_IMODE(os.stat(address).st_mode):o}", flush=True)
socket.socket.bind = bind
os.umask(0)
from ib40d.commands.cli import main
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.netns
def test_the_control_socket_is_never_open_to_others(netns, tmp_path):
    d = Running(netns, tmp_path, "--exit-when-ready", python=("-c", BIND_PROBE))
    assert d.proc.wait(timeout=DEADLINE_S) == 0, d.output
    d.reader.join(timeout=10)
    assert f"bound {d.sock} mode 600\n" in d.lines, d.output
