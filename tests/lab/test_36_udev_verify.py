# SPDX-License-Identifier: GPL-2.0-or-later
"""The static udev rules as the package installs them, checked by the
guest's own udev: `udevadm verify` (systemd 254 and later: trixie; the
host's 252 has none, so tests/kernel/test_static_udev_rules_real.py reads
them with `udevadm test` instead). Which event starts which unit:
tests/unit/test_static_udev_rules.py."""

import pytest

pytestmark = pytest.mark.lab


def test_udevadm_verify_accepts_the_installed_static_rules(ib40_lab):
    vm = ib40_lab.a
    if vm.run(["udevadm", "verify", "--help"], check=False).rc != 0:
        pytest.skip("this guest's udevadm has no verify (systemd < 254)")
    rules = vm.run("dpkg -L ib40 | grep -E '/udev/rules\\.d/[^/]+\\.rules$'").out.split()
    assert sorted(r.rsplit("/", 1)[1] for r in rules) == ["60-ib40-mlx4.rules", "60-ib40-mlx5.rules"], rules
    done = vm.run(["udevadm", "verify", "--resolve-names=never", *rules], check=False)
    # it prints its findings (errors and style warnings) on stderr, and a count
    assert done.rc == 0 and done.err == "" and "Success: 2" in done.out, (done.out, done.err)
