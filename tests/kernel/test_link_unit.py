# SPDX-License-Identifier: GPL-2.0-or-later
"""ib40-link@.service's ExecStart, run as systemd would run it, beside a
real daemon: a link the daemon has just configured (its mark in
/run/ib40/configured holds the device's ifindex) costs a shell, not a
Python start; anything else asks the daemon with `ib40d link-ready`."""
import configparser
import os
import subprocess
import sys
import threading

import pytest

from helpers import REPO, start_daemon, wait_for

pytestmark = pytest.mark.netns

CONF = "[link v1]\nmtu = 9000\naddress = 10.95.0.1/24\n[link v2]\n"


def unit_command(name: str) -> list[str]:
    """The unit's ExecStart for instance NAME (%I is the name): its shipped
    script, asking with the client run from this checkout."""
    cp = configparser.ConfigParser(interpolation=None, strict=False)
    cp.read(REPO / "units" / "ib40-link@.service")
    program, instance = cp["Service"]["ExecStart"].split()
    assert (program, instance) == ("/usr/lib/ib40/link-configured", "%I")
    return ["env", f"IB40D={sys.executable} -m ib40d", str(REPO / "libexec/link-configured"), name]


class LiveDaemon:
    """The daemon on the live root, in the test's netns, with its own /run
    and tmpfs over what it would write in /etc and /var/lib."""

    def __init__(self, netns, tmp_path, conf_text=CONF):
        netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
        conf = tmp_path / "ib40.conf"
        conf.write_text(conf_text)
        self.proc = start_daemon(netns.name, conf, "/", mounts=" && ".join([
            "mount -t tmpfs tmpfs /etc/udev/rules.d", "mount -t tmpfs tmpfs /var/lib"]))
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.proc.stdout), daemon=True)
        self.reader.start()

    def run(self, *argv):
        """ARGV in the daemon's mount and network namespaces."""
        return subprocess.run(["nsenter", "-t", str(self.proc.pid), "-m", "-n", *argv], capture_output=True,
                              text=True, timeout=60, cwd=REPO, env=dict(os.environ, PYTHONPATH=str(REPO)))

    def mark(self, name):
        res = self.run("cat", f"/run/ib40/configured/{name}")
        return res.stdout.strip() if res.returncode == 0 else None

    def ifindex(self, name):
        return self.run("cat", f"/sys/class/net/{name}/ifindex").stdout.strip()

    def stop(self):
        self.proc.terminate()
        self.proc.wait(timeout=30)
        self.reader.join(timeout=10)


def test_a_link_the_daemon_configured_costs_its_unit_a_shell_and_a_restart_asks(netns, tmp_path):
    d = LiveDaemon(netns, tmp_path)
    try:
        assert wait_for(lambda: any(l.startswith("ready:") for l in d.lines), 60), d.lines
        assert d.mark("v1") == d.ifindex("v1") and d.mark("v2") == d.ifindex("v2")
        first = d.run(*unit_command("v1"))
        assert first.returncode == 0, first.stderr
        assert first.stdout == f"v1: configured by ib40d.service as it appeared (ifindex {d.ifindex('v1')})\n"
        assert d.mark("v1") == ""  # taken (emptied): the next start of the unit asks
        again = d.run(*unit_command("v1"))
        assert again.returncode == 0, again.stderr
        assert "configured by ib40d.service" not in again.stdout
        assert again.stdout.startswith("nothing to do"), again.stdout  # the daemon's answer
        # the unit started before the daemon's mark (as the lab saw at boot): it waits for it
        late = subprocess.Popen(["nsenter", "-t", str(d.proc.pid), "-m", "-n", *unit_command("v1")],
                                stdout=subprocess.PIPE, text=True, cwd=REPO,
                                env=dict(os.environ, PYTHONPATH=str(REPO)))
        d.run("sh", "-c", f"sleep 1; echo {d.ifindex('v1')} > /run/ib40/configured/v1")
        assert late.communicate(timeout=60)[0].startswith("v1: configured by ib40d.service"), "late mark not taken"
        assert d.mark("v1") == ""
        # a mark for another device under the name (an unplugged port's): ask
        d.run("sh", "-c", "echo 99999 > /run/ib40/configured/v2")
        stale = d.run(*unit_command("v2"))
        assert stale.returncode == 0 and stale.stdout.startswith("nothing to do"), stale
        assert d.mark("v2") is None  # the daemon dropped it when asked
    finally:
        d.stop()
    assert "Traceback" not in "".join(d.lines)


def test_a_refused_apply_leaves_no_mark_so_the_unit_asks_and_fails(netns, tmp_path):
    # bond0 is a bridge: the daemon refuses the group, and the unit must
    # report that as it did before there were marks.
    netns.ip("link", "add", "bond0", "type", "bridge")
    d = LiveDaemon(netns, tmp_path, CONF + "[bond bond0]\nslaves = v2\nmode = active-backup\n")
    try:
        assert wait_for(lambda: any("refused" in l for l in d.lines), 60), d.lines
        assert d.mark("v1") is None and d.mark("v2") is None
        unit = d.run(*unit_command("v2"))
        assert unit.returncode == 1 and "is of kind bridge" in unit.stderr, unit
    finally:
        d.stop()
