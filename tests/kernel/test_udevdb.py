# SPDX-License-Identifier: GPL-2.0-or-later
"""ib40d.system.udevdb against the real libudev (through pyudev), on veths in a
network namespace, with a udev database of the test's own: a tmpfs over
/run in a private mount namespace, so the host's udev is never read or
written. udevdb reads the database itself; libudev must agree with it."""
import subprocess
import sys
import textwrap

import pytest

from helpers import REPO, private_run, start_daemon, wait_for

pytestmark = pytest.mark.netns

PROBE = textwrap.dedent("""
    import os, sys
    from ib40d.system.udevdb import Watcher
    w = Watcher()
    print(w.active, sorted(w.uninitialized(["v0", "v1", "absent"])))
    if w.active:
        # what udevd writes when it has run its rules on v0
        index = open("/sys/class/net/v0/ifindex").read().strip()
        os.makedirs("/run/udev/data", exist_ok=True)
        with open("/run/udev/data/n" + index, "w") as f:
            f.write("I:1\\n")
        print(sorted(w.uninitialized(["v0", "v1"])), "pyudev" in sys.modules)
        print(w.fileno() is not None, "pyudev" in sys.modules)
        # libudev's own answer, on the same devices and database
        import pyudev
        context = pyudev.Context()
        print(sorted(n for n in ("v0", "v1")
                     if not pyudev.Devices.from_name(context, "net", n).is_initialized))
""")


def run_with_private_udev(netns, udevd_running: bool) -> list[str]:
    # A tmpfs over all of /run, not only /run/udev: a machine without udevd
    # running has no /run/udev to mount on.
    setup = "mount -t tmpfs tmpfs /run && mkdir /run/udev"
    if udevd_running:
        setup += " && touch /run/udev/control"
    proc = subprocess.run(private_run([sys.executable, "-c", PROBE], netns.name, setup),
                          capture_output=True, text=True, timeout=60, cwd=REPO,
                          env={"PYTHONPATH": str(REPO), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert proc.returncode == 0, proc.stderr
    return proc.stdout.splitlines()


def test_links_wait_for_their_udev_database_entry(netns):
    netns.ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
    lines = run_with_private_udev(netns, udevd_running=True)
    # both exist, neither has an entry; the absent name is not waited for
    assert lines[0] == "True ['v0', 'v1']"
    # v0's entry written: only v1 is still waiting; pyudev not needed yet
    assert lines[1] == "['v1'] False"
    # the monitor opens, through pyudev
    assert lines[2] == "True True"
    # libudev says the same of the same database
    assert lines[3] == "['v1']"


def test_without_udevd_nothing_is_waited_for(netns):
    netns.ip("link", "add", "v0", "type", "veth", "peer", "name", "v1")
    assert run_with_private_udev(netns, udevd_running=False) == ["False []"]


# The daemon as the unit runs it (cli.main), then whether its own process
# had imported pyudev by the time it exited.
DAEMON_THEN_PYUDEV = """\
import sys
from ib40d.commands.cli import main
rc = main(sys.argv[1:])
print("pyudev imported:", "pyudev" in sys.modules, flush=True)
sys.exit(rc)
"""


def udev_entries(netns, *names) -> str:
    """Shell for start_daemon's MOUNTS: udevd "running" (its control file) in
    the daemon's private /run, and a database entry for each of NAMES."""
    indexes = [netns.ip("-o", "link", "show", name).split(":")[0] for name in names]
    return " && ".join(["mkdir -p /run/udev/data", "touch /run/udev/control",
                        *(f"echo I:1 > /run/udev/data/n{index}" for index in indexes)])


def test_the_daemon_leaves_pyudev_alone_when_udev_has_finished_with_every_port(netns, tmp_path):
    """The usual boot: udev has named the ports before the daemon looks. It
    applies them and never imports pyudev (ctypes, libudev): nothing to wait for."""
    conf = tmp_path / "ib40.conf"
    conf.write_text("[link v1]\nmtu = 9000\n[link v2]\nmtu = 9001\n")
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    proc = start_daemon(netns.name, conf, tmp_path / "root", "--exit-when-ready",
                        mounts=udev_entries(netns, "v1", "v2"), python=("-c", DAEMON_THEN_PYUDEV))
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "mtu 9000" in netns.ip("link", "show", "v1")
    assert "mtu 9001" in netns.ip("link", "show", "v2")
    assert "waiting for udev" not in out, out
    assert out.splitlines()[-1] == "pyudev imported: False", out


def test_the_daemon_leaves_a_port_alone_until_udev_has_finished_with_it(netns, tmp_path):
    """udevd "running" (its control file) in the daemon's private /run, v1
    without a database entry: the daemon waits (following udev through
    pyudev), then applies v1 once udev's entry is there, and configures v2
    (which has its entry) at once."""
    conf = tmp_path / "ib40.conf"
    conf.write_text("[link v1]\nmtu = 9000\n[link v2]\nmtu = 9001\n")
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    proc = start_daemon(netns.name, conf, tmp_path / "root", mounts=udev_entries(netns, "v2"),
                        python=("-c", DAEMON_THEN_PYUDEV))
    try:
        assert wait_for(lambda: "mtu 9001" in netns.ip("link", "show", "v2"), 60), netns.ip("link")
        assert "mtu 9000" not in netns.ip("link", "show", "v1")
        v1_index = netns.ip("-o", "link", "show", "v1").split(":")[0]
        subprocess.run(["nsenter", "-t", str(proc.pid), "-m", "sh", "-c",
                        f"echo I:1 > /run/udev/data/n{v1_index}"], check=True)
        assert wait_for(lambda: "mtu 9000" in netns.ip("link", "show", "v1"), 60), netns.ip("link")
    finally:
        proc.terminate()
        out, _ = proc.communicate(timeout=30)
    assert "waiting for udev to finish with v1" in out, out
    assert out.splitlines()[-1] == "pyudev imported: True", out
