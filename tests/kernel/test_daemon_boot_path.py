# SPDX-License-Identifier: GPL-2.0-or-later
"""The daemon's start, on the real kernel: the links first, everything
optional after them, and a resident process that never holds pyroute2
(each apply runs in a forked child)."""
import os
import subprocess
import sys
import threading

import pytest

from helpers import REPO, private_run, start_daemon, wait_for

pytestmark = pytest.mark.netns

CONF = "[link v1]\nmtu = 9000\naddress = 10.96.0.1/24\n[link v2]\n"

# The daemon as the unit runs it (cli.main), then what its own process had
# imported once it exited.
DAEMON_THEN_MODULES = """\
import sys
from ib40d.commands.cli import main
rc = main(sys.argv[1:])
print("subprocess in the daemon:", "subprocess" in sys.modules, flush=True)
print("pyroute2 modules in the daemon:", sorted(m for m in sys.modules if m.startswith("pyroute2")), flush=True)
sys.exit(rc)
"""


def test_the_daemon_writes_through_pyroute2_without_holding_it(netns, tmp_path):
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    conf = tmp_path / "ib40.conf"
    conf.write_text(CONF)
    proc = start_daemon(netns.name, conf, tmp_path / "root", "--exit-when-ready",
                        python=("-c", DAEMON_THEN_MODULES))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "all: done: link.mtu v1: mtu 1500 -> 9000" in out.splitlines(), out
    assert "mtu 9000" in netns.ip("link", "show", "v1")
    assert out.splitlines()[-1] == "pyroute2 modules in the daemon: []", out
    # Nor subprocess (threading, locale): the child that writes imports it,
    # with pyroute2, and the daemon ran no program here.
    assert out.splitlines()[-2] == "subprocess in the daemon: False", out


def test_the_units_exact_command_line_takes_the_defaults_without_argparse(netns, tmp_path):
    """`ib40d daemon`, exactly as ib40d.service runs it at every boot: the
    same defaults as through argparse (--root from IB40_ROOT, the config
    under it), and argparse is never imported."""
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "etc/ib40.conf").write_text(CONF)
    probe = DAEMON_THEN_MODULES.replace(
        'print("pyroute2 modules', 'print("argparse imported:", "argparse" in sys.modules, flush=True)\nprint("pyroute2 modules')
    proc = subprocess.Popen(private_run([sys.executable, "-c", probe, "daemon"], netns.name),
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO,
                            env=dict(os.environ, PYTHONPATH=str(REPO), IB40_ROOT=str(root)))
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        assert wait_for(lambda: any(l.startswith("ready:") for l in lines), 60), lines
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=10)
    assert "all: done: link.mtu v1: mtu 1500 -> 9000\n" in lines, lines
    assert "argparse imported: False\n" in lines, lines
    assert "mtu 9000" in netns.ip("link", "show", "v1")


def test_the_links_come_first_then_the_rules_and_the_sync_record_is_there_before_them(netns, tmp_path):
    """On the live root, with rules that no longer match the config (in
    tmpfs mounts of the daemon's own mount namespace): the apply and READY
    come before the rules are rewritten, and the record that keeps
    ib40-sync.service from starting Python during boot is written before
    the apply (writes to /etc happen while it runs)."""
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    conf = tmp_path / "ib40.conf"
    conf.write_text(CONF)
    mounts = " && ".join([
        "mount -t tmpfs tmpfs /etc/udev/rules.d",
        "echo '# stale' > /etc/udev/rules.d/70-ib40-names.rules",
        "mount -t tmpfs tmpfs /var/lib",  # where sync keeps its manifest
    ])
    proc = start_daemon(netns.name, conf, "/", mounts=mounts)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        assert wait_for(lambda: any(l.startswith("warning: the udev rules did not match") for l in lines), 60), lines
        record = subprocess.run(["nsenter", "-t", str(proc.pid), "-m", "cat", "/run/ib40/synced.conf"],
                                capture_output=True, text=True, timeout=30)
        assert record.returncode == 0 and record.stdout == CONF, record
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=10)
    order = [i for i, l in enumerate(lines) if l.startswith(("all: done: link.mtu v1", "ready:", "warning: the udev"))]
    assert [lines[i].split(":")[0] for i in order] == ["all", "ready", "warning"], lines
    assert "Traceback" not in "".join(lines)


def test_a_read_only_etc_takes_the_sync_record_back(netns, tmp_path):
    """The record says the files were synced; when /etc cannot be written
    they were not, and the next write to /etc must run ib40d sync."""
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    conf = tmp_path / "ib40.conf"
    conf.write_text(CONF)
    mounts = " && ".join([
        "mount --bind /etc /etc", "mount -o remount,bind,ro /etc",
        "mount -t tmpfs tmpfs /etc/udev/rules.d",
        "echo '# stale' > /etc/udev/rules.d/70-ib40-names.rules",
        "mount -o remount,ro /etc/udev/rules.d",
        "mount -t tmpfs tmpfs /var/lib",
    ])
    proc = start_daemon(netns.name, conf, "/", mounts=mounts)
    lines = []
    reader = threading.Thread(target=lambda: lines.extend(proc.stdout), daemon=True)
    reader.start()
    try:
        assert wait_for(lambda: any("Read-only file system" in l for l in lines), 60), lines
        record = subprocess.run(["nsenter", "-t", str(proc.pid), "-m", "test", "-e", "/run/ib40/synced.conf"],
                                timeout=30)
        assert record.returncode == 1
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        reader.join(timeout=10)
    assert "mtu 9000" in netns.ip("link", "show", "v1")


CHILD = """\
import errno, gc, os, signal, sys
from ib40d.commands.daemon import in_child
print(in_child(lambda: ([("done", "x")], True)))
print("collector in the child", in_child(gc.isenabled), "in the daemon", gc.isenabled())
def refused():
    raise OSError(errno.EINTR, "Interrupted system call")
try:
    in_child(refused)
except OSError as e:
    print("OSError", e.errno, e.strerror)
def crash():
    raise KeyError("boom")
try:
    in_child(crash)
except RuntimeError as e:
    print("RuntimeError", e)
try:
    in_child(lambda: os.kill(os.getpid(), signal.SIGKILL))
except RuntimeError as e:
    print("RuntimeError", e)
print("end")  # once: no child comes back from in_child
"""


def test_in_child_returns_raises_and_notices_a_dead_child():
    proc = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, timeout=60,
                          env={"PYTHONPATH": str(REPO)})
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == [
        "([('done', 'x')], True)",
        "collector in the child False in the daemon True",
        "OSError 4 Interrupted system call",
        "RuntimeError the apply's child process failed: KeyError: 'boom'",
        "RuntimeError the apply's child process ended without an answer (wait status 9)",
        "end",
    ]
    assert "KeyError: 'boom'" in proc.stderr  # its traceback, for the journal
