# SPDX-License-Identifier: GPL-2.0-or-later
"""The shipped udev rules (udev/*.rules) evaluated against the events a
card's driver and its RDMA device make: which unit each event pulls in.
The match keys are udev(7)'s: alternatives split by "|", shell globs,
ATTR{x} read from the device (absent: matches nothing but a pattern that
matches ""). tests/kernel/test_static_udev_rules_real.py runs the same
rules under the real udevadm."""

import fnmatch
from pathlib import Path

import pytest

from test_udev import _TOKEN

RULES = sorted((Path(__file__).resolve().parents[2] / "udev").glob("*.rules"))


def parse(line):
    tokens, pos = [], 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        assert m, f"unparsable at {line[pos:]!r} in {line!r}"
        tokens.append((m.group(1) + (m.group(2) or ""), m.group(3), m.group(4)))
        pos = m.end()
    return tokens


def rule_lines():
    for path in RULES:
        lines = path.read_text().splitlines()
        for i, line in enumerate(lines):
            if line and not line.startswith("#"):
                yield path, lines, i, line


def matches(pattern, value):
    return value is not None and any(fnmatch.fnmatchcase(value, alt) for alt in pattern.split("|"))


def units_started(event: dict) -> set[str]:
    """The units all shipped rules pull in for EVENT ({"ACTION": "bind",
    "DRIVER": "mlx5_core", "ATTR{sriov_totalvfs}": "8", ...})."""
    wants = set()
    for _, _, _, line in rule_lines():
        tokens = parse(line)
        if all(matches(value, event.get(key)) == (op == "==") for key, op, value in tokens if op in ("==", "!=")):
            assigned = {(key, value) for key, op, value in tokens if op == "+="}
            if ("TAG", "systemd") in assigned:
                wants |= {value for key, value in assigned if key == "ENV{SYSTEMD_WANTS}"}
    return wants


def pci(action, driver, totalvfs=None):
    event = {"ACTION": action, "SUBSYSTEM": "pci", "DRIVER": driver}
    if totalvfs is not None:
        event["ATTR{sriov_totalvfs}"] = totalvfs
    return event


@pytest.mark.parametrize("event, units", [
    (pci("add", "mlx4_core"), {"ib40-porttype.service"}),  # coldplug replay at boot
    (pci("bind", "mlx4_core", "16"), {"ib40-porttype.service"}),  # a driver loaded late
    (pci("add", "mlx5_core", "8"), {"ib40-porttype.service"}),  # an mlx5 PF: its VFs are gone after a reboot
    (pci("bind", "mlx5_core", "8"), {"ib40-porttype.service"}),
    (pci("bind", "mlx5_core"), set()),  # one of its VFs (no sriov_totalvfs), or SR-IOV off in firmware
    (pci("change", "mlx5_core", "8"), set()),
    (pci("remove", "mlx4_core"), set()),
    (pci("add", "virtio-pci"), set()),
    ({"ACTION": "add", "SUBSYSTEM": "infiniband"}, {"ib40-opensm-gate.service"}),
    ({"ACTION": "change", "SUBSYSTEM": "infiniband"}, set()),
])
def test_which_unit_each_event_pulls_in(event, units):
    assert units_started(event) == units


def test_every_rule_is_commented_and_hands_its_work_to_a_unit():
    """A RUN+= program is killed for running long (udev(7)); every line
    says why it is there."""
    seen = 0
    for path, lines, i, line in rule_lines():
        seen += 1
        assert lines[i - 1].startswith("#"), f"{path.name}: {line}"
        keys = {key for key, _, _ in parse(line)}
        assert "RUN" not in keys and "TAG" in keys and "ENV{SYSTEMD_WANTS}" in keys, f"{path.name}: {line}"
    assert seen == 3
