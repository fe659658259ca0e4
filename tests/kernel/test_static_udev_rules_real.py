# SPDX-License-Identifier: GPL-2.0-or-later
"""The shipped udev rules (udev/*.rules) read by the real udev rule engine.

`udevadm verify` is systemd 254's; Debian 12 has 252. `udevadm test` reads
every rules file and names each line it refuses ("FILE:LINE Invalid ...");
it needs a device of the real sysfs (a tmpfs copy is "outside of sysfs"),
and no machine here has a Mellanox one, so it runs on a PCI device of this
machine: the rules must parse, and start nothing for a device not a
ConnectX's. Which events start which unit: tests/unit/test_static_udev_rules.py.
Everything udevadm writes (/run/udev) goes to tmpfs mounts of a private
mount namespace, and the rules directories are tmpfs mounts holding only
ib40's rules."""

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import private_run

RULES_DIR = Path(__file__).resolve().parents[2] / "udev"
RULES = sorted(RULES_DIR.glob("*.rules"))
REFUSED = re.compile(r"^\S+\.rules:\d+ .*$", re.M)  # udev's complaint about one line


def other_pci_device() -> str:
    for name in sorted(os.listdir("/sys/bus/pci/devices")):
        driver = os.path.realpath(f"/sys/bus/pci/devices/{name}/driver")
        if os.path.basename(driver) not in ("mlx4_core", "mlx5_core") and os.path.exists(driver):
            return f"/sys/bus/pci/devices/{name}"
    pytest.skip("no PCI device bound to a driver on this machine")


def udevadm_test(rules_dir: Path, action: str, device: str) -> str:
    if os.geteuid() != 0 or shutil.which("udevadm") is None:
        pytest.skip("needs root (a private mount namespace) and udevadm")
    mounts = " && ".join(f"mount -t tmpfs ib40test {d}" for d in ("/run", "/etc/udev/rules.d", "/usr/lib/udev/rules.d"))
    mounts += f' && cp {rules_dir}/*.rules /usr/lib/udev/rules.d/'
    cmd = private_run(["udevadm", "test", f"--action={action}", device], mount=mounts)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout + proc.stderr


@pytest.mark.parametrize("action", ["add", "bind"])
def test_udev_reads_every_shipped_rule_and_starts_nothing_for_another_card(action):
    out = udevadm_test(RULES_DIR, action, other_pci_device())
    for path in RULES:
        assert f"Reading rules file: /usr/lib/udev/rules.d/{path.name}" in out, out
    assert REFUSED.findall(out) == []
    assert "SYSTEMD_WANTS" not in out and "DRIVER=" in out


def test_a_broken_rule_is_what_udev_names(tmp_path):
    """The check above can fail: a copy with a wrong operator is refused."""
    for path in RULES:
        (tmp_path / path.name).write_text(path.read_text().replace('ATTR{sriov_totalvfs}=="', 'ATTR{sriov_totalvfs}+="'))
    out = udevadm_test(tmp_path, "bind", other_pci_device())
    assert [line.split(" ", 1)[0] for line in REFUSED.findall(out)] == ["/usr/lib/udev/rules.d/60-ib40-mlx5.rules:14"]
