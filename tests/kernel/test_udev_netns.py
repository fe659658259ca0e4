# SPDX-License-Identifier: GPL-2.0-or-later
"""The generated rules under a real udevadm, on links of a network namespace."""

import os
import shutil

import pytest
from ib40d.core import udev
from ib40d.core.config import parse_text

from test_udev import BOND_CONF, HOSTILE_NAMES, HOSTILE_VALUES, _hostile_config


def _udevadm_test(netns, tmp_path, action, device, rules: dict[str, str]) -> dict[str, str]:
    """`udevadm test` (the real udev rule engine, no udevd needed) on a
    device of the test's namespace, with our rules in place of the host's
    /etc/udev/rules.d. It writes the udev database (/run/udev/data/n<ifindex>,
    /run/udev/tags), keyed by an ifindex the host's own links may have: both
    go to tmpfs mounts inside `ip netns exec`'s private mount namespace, so
    the host never sees them. Returns the properties."""
    script = "mount -t tmpfs ib40test /run && mount -t tmpfs ib40test /etc/udev/rules.d"
    for path, text in rules.items():
        if text is not None:
            staged = tmp_path / os.path.basename(path)
            staged.write_text(text)
            script += f" && cp {staged} {path}"
    script += ' && udevadm test --action="$1" "/sys/class/net/$2"'
    proc = netns.exec("sh", "-c", script, "sh", action, device, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    out = proc.stdout + proc.stderr
    assert "Invalid" not in out and "invalid" not in out, out
    props = {}
    for line in proc.stdout.splitlines():
        key, sep, value = line.partition("=")
        if sep and key.isupper() and " " not in key:
            props[key] = value
    return props


def _need_udevadm():
    if shutil.which("udevadm") is None:
        pytest.fail("udevadm is needed (package udev)")


@pytest.mark.netns
def test_real_udev_marks_the_link_and_hooks_its_unit_on_add_only(netns, tmp_path):
    _need_udevadm()
    # an ifindex no host link has: the host's udev database must not get it
    ifindex = 4_000_000 + os.getpid() % 100_000
    netns.ip("link", "add", "eth40a", "index", str(ifindex), "type", "veth", "peer", "name", "other0")
    rules = udev.rule_files(parse_text(BOND_CONF))
    added = _udevadm_test(netns, tmp_path, "add", "eth40a", rules)
    assert added["NM_UNMANAGED"] == "1"
    assert added["SYSTEMD_WANTS"] == "ib40-link@eth40a.service"
    changed = _udevadm_test(netns, tmp_path, "change", "eth40a", rules)
    assert changed["NM_UNMANAGED"] == "1"
    assert "SYSTEMD_WANTS" not in changed  # an edit of the config applies nothing
    other = _udevadm_test(netns, tmp_path, "add", "other0", rules)
    assert "NM_UNMANAGED" not in other and "SYSTEMD_WANTS" not in other
    for entry in (f"/run/udev/data/n{ifindex}", f"/run/udev/tags/systemd/n{ifindex}"):
        assert not os.path.lexists(entry), f"udevadm test wrote the host's {entry}"


@pytest.mark.netns
def test_real_udev_takes_every_escaped_value_literally(netns, tmp_path):
    _need_udevadm()
    # eth0 and ea are what eth* and e[a] would match as globs
    for i, name in enumerate(HOSTILE_NAMES + ["eth0", "ea"]):
        netns.ip("link", "add", name, "type", "veth", "peer", "name", f"peer{i}")
    cfg = _hostile_config()
    rules = udev.rule_files(cfg, ", ".join(cfg.files))
    # what NAME= and ENV{}= store: each value exactly
    rules["/etc/udev/rules.d/50-ib40-test.rules"] = "".join(
        f'SUBSYSTEM=="net", ENV{{IB40_T{i}}}="{udev._assign(v)}"\n' for i, v in enumerate(HOSTILE_VALUES))
    for name in HOSTILE_NAMES:
        props = _udevadm_test(netns, tmp_path, "add", name, rules)
        assert props.get("NM_UNMANAGED") == "1", (name, props)
        assert "EVIL" not in props
        assert [props.get(f"IB40_T{i}") for i in range(len(HOSTILE_VALUES))] == HOSTILE_VALUES
    for name in ("eth0", "ea"):
        assert "NM_UNMANAGED" not in _udevadm_test(netns, tmp_path, "add", name, rules)
