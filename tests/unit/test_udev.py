# SPDX-License-Identifier: GPL-2.0-or-later
"""Rule generation (ib40d.core.udev): names by MAC and by IPoIB port GUID, hooks."""
import fnmatch
import re

import pytest

from helpers import fixture_output
from ib40d.core import udev
from ib40d.core.config import parse_text

BOND_CONF = """
[link eth40a]
mac = 00:02:C9:3E:CA:B1
txqueuelen = 10000
[link eth40b]
mac = 00:02:c9:3e:ca:b0
[bond bond0]
slaves = eth40a eth40b
mode = balance-rr
miimon = 100
address = 10.30.0.2/16
"""


def rule_lines(text):
    return [line for line in text.splitlines() if line and not line.startswith("#")]


# udev(7): KEY, optional {ATTR}, operator, quoted value; comma separated.
_TOKEN = re.compile(r'\s*([A-Z_]+)(\{[^}]+\})?\s*(==|!=|\+=|-=|:=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
_MATCH_KEYS = {"SUBSYSTEM", "ACTION", "DRIVERS", "ATTR", "NAME", "KERNEL", "ENV"}
_ASSIGN_KEYS = {"NAME", "ENV", "TAG", "GOTO", "LABEL"}


def parse_rule(line):
    """Split one rule line into (key, attr, op, value), failing on anything
    udev would refuse: a cheap syntax check without a udevd."""
    tokens, pos = [], 0
    while pos < len(line):
        m = _TOKEN.match(line, pos)
        assert m, f"unparsable at {line[pos:]!r} in {line!r}"
        key, attr, op, value = m.group(1), m.group(2), m.group(3), m.group(4)
        if op in ("==", "!="):
            assert key in _MATCH_KEYS, (key, line)
        else:
            assert key in _ASSIGN_KEYS, (key, line)
        tokens.append((key, attr, op, value))
        pos = m.end()
    return tokens


def ipoib_address(qpn: int, guid_hex: str) -> str:
    """The 20-byte IPoIB hardware address the kernel shows: 4 bytes of flags
    and queue pair number, the 8-byte default subnet prefix fe80::, the 8-byte
    port GUID."""
    raw = qpn.to_bytes(4, "big") + bytes.fromhex("fe80000000000000") + bytes.fromhex(guid_hex)
    return ":".join(f"{b:02x}" for b in raw)


def test_mac_rule_is_the_howtos_line_with_the_configured_name():
    text = udev.names_rules(parse_text(BOND_CONF))
    assert rule_lines(text) == [
        'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="00:02:c9:3e:ca:b1", '
        'ATTR{dev_id}=="0x0", ATTR{type}=="1", NAME="eth40a"',
        'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="00:02:c9:3e:ca:b0", '
        'ATTR{dev_id}=="0x0", ATTR{type}=="1", NAME="eth40b"',
    ]
    for line in rule_lines(text):
        parse_rule(line)


def test_ipoib_rule_matches_the_port_guid_whatever_the_qpn():
    # Port GUIDs of a real ConnectX-3 (ibstat -p).
    guids = fixture_output("ibstat/ibstat_p_cx3_two_port_guids.txt").split()
    port1, port2 = (g[2:] for g in guids)
    cfg = parse_text(f"[ipoib ib40p1]\nguid = 0x{port1}\nmode = connected\n[ipoib ib40p2]\nguid = 0x{port2}\n")
    lines = rule_lines(udev.names_rules(cfg))
    assert len(lines) == 2
    rule = dict(((k, a), v) for k, a, op, v in parse_rule(lines[0]))
    assert rule[("ATTR", "{type}")] == "32"
    assert rule[("NAME", None)] == "ib40p1"
    glob = rule[("ATTR", "{address}")]
    assert glob == "?*:24:8a:07:03:00:d2:c6:91"
    # The QPN part differs at every driver load; the rule must not care.
    for qpn in (0x80000048, 0x80000208, 0x00000403):
        assert fnmatch.fnmatchcase(ipoib_address(qpn, port1), glob)
        assert not fnmatch.fnmatchcase(ipoib_address(qpn, port2), glob)


def test_guid_forms_agree():
    assert udev.guid_address_glob("0002:c903:003f:02f1") == "?*:00:02:c9:03:00:3f:02:f1"
    with pytest.raises(ValueError):
        udev.guid_address_glob("0002:c903:003f")


def test_no_names_file_without_mac_or_guid():
    cfg = parse_text("[ipoib ib0]\nmode = connected\nmtu = 65520\n")
    assert udev.names_rules(cfg) is None
    files = udev.rule_files(cfg)
    assert files[udev.NAMES_RULES] is None
    assert "ib40-link@ib0.service" in files[udev.HOOKS_RULES]


def _hook_rules_by_name(text):
    by_name = {}
    for line in rule_lines(text)[2:-1]:
        keys = {(k, a, op): v for k, a, op, v in parse_rule(line)}
        name = keys.get(("NAME", None, "==")) or keys[("KERNEL", None, "==")]
        by_name.setdefault(name, []).append(keys)
    return by_name


def test_hooks_mark_every_link_and_start_link_units_but_not_for_bonds():
    text = udev.hooks_rules(parse_text(BOND_CONF))
    lines = rule_lines(text)
    assert lines[0] == 'SUBSYSTEM!="net", GOTO="ib40_hooks_end"'
    assert lines[1] == 'ACTION=="remove", GOTO="ib40_hooks_end"'
    assert lines[-1] == 'LABEL="ib40_hooks_end"'
    by_name = _hook_rules_by_name(text)
    assert sorted(by_name) == ["bond0", "eth40a", "eth40b"]
    for name in ("eth40a", "eth40b"):
        unmanaged = [k for k in by_name[name] if ("ENV", "{NM_UNMANAGED}", "=") in k]
        wants = [k for k in by_name[name] if ("ENV", "{SYSTEMD_WANTS}", "+=") in k]
        for group in (unmanaged, wants):
            # once by the name a rule gives it, once by the kernel's own name
            assert [k[("NAME", None, "==")] for k in group] == [name, ""]
            assert group[1][("KERNEL", None, "==")] == name
        for keys in unmanaged:
            assert keys[("ENV", "{NM_UNMANAGED}", "=")] == "1"
            assert ("ACTION", None, "==") not in keys  # every event rebuilds the property
        for keys in wants:
            # only a device appearing starts the unit, never a change event
            assert keys[("ACTION", None, "==")] == "add"
            assert keys[("TAG", None, "+=")] == "systemd"
            assert keys[("ENV", "{SYSTEMD_WANTS}", "+=")] == f"ib40-link@{name}.service"
    assert len(by_name["bond0"]) == 2
    for keys in by_name["bond0"]:
        assert keys[("ENV", "{NM_UNMANAGED}", "=")] == "1"
        assert ("ENV", "{SYSTEMD_WANTS}", "+=") not in keys
    assert udev.hooked_names(text) == ["eth40a", "eth40b", "bond0"]


def test_unit_instance_is_systemd_escape():
    # `systemd-escape eth-40.a` prints eth\x2d40.a
    assert udev.unit_instance("eth40a") == "eth40a"
    assert udev.unit_instance("eth-40.a") == "eth\\x2d40.a"
    assert udev.unit_instance(".x") == "\\x2ex"
    assert udev.link_unit("ib0") == "ib40-link@ib0.service"


def test_names_needing_escape_get_no_hotplug_hook():
    # systemd releases differ on backslashes in SYSTEMD_WANTS: such a link is
    # marked unmanaged, and the rules say to enable its unit by hand.
    text = udev.hooks_rules(parse_text("[link eth-40]\nmac = 00:02:c9:3e:ca:b1\n"))
    keys = _hook_rules_by_name(text)["eth-40"]
    assert len(keys) == 2 and all(k[("ENV", "{NM_UNMANAGED}", "=")] == "1" for k in keys)
    assert not any("SYSTEMD_WANTS" in line for line in rule_lines(text))
    assert "systemctl enable 'ib40-link@eth\\x2d40.service'" in text


def test_no_config_no_rules():
    assert udev.rule_files(None) == {udev.NAMES_RULES: None, udev.HOOKS_RULES: None}
    assert udev.rule_files(parse_text("[opensm]\nstart = never\n")) == {
        udev.NAMES_RULES: None, udev.HOOKS_RULES: None}


# Names the config refuses (test_config.py); the rules escape them anyway.
HOSTILE_NAMES = ["eth*", 'q"x', 'x",ENV{EVIL}="', "e[a]", "e?"]
HOSTILE_VALUES = ["n%k$name", 'a"b', "%%", 'x",ENV{EVIL}="1', "bond%d"]


def _hostile_config():
    from ib40d.core.config import Config, LinkConfig

    return Config(files=("/etc/ib40.conf", "/etc/ib40.conf.d/x\n# \\"),
                  links={n: LinkConfig(name=n) for n in HOSTILE_NAMES})


def test_values_and_file_names_are_escaped_in_the_rules():
    cfg = _hostile_config()
    text = udev.hooks_rules(cfg, ", ".join(cfg.files))
    # the drop-in's name stays inside its comment line, which does not end
    # in a backslash (udev would join the next line to it)
    assert text.splitlines()[0] == "# Generated by `ib40d sync` from /etc/ib40.conf, /etc/ib40.conf.d/x\\x0a# \\x5c."
    for line in text.splitlines():
        assert line.startswith("#") or not line or parse_rule(line)
        assert not line.endswith("\\")
    by_name = _hook_rules_by_name(text)
    assert sorted(by_name) == sorted(udev._match(n) for n in HOSTILE_NAMES)
    assert 'NAME=="eth\\*"' in text and 'KERNEL=="q\\"x"' in text and 'NAME=="e\\[a\\]"' in text
    assert udev.hooked_names(text) == HOSTILE_NAMES
    assert udev._assign("bond%d") == "bond%%d" and udev._assign("$x") == "$$x"
    for value in ("a|b", "a\\b", "a\nb"):
        with pytest.raises(ValueError):
            udev._match(value)
        with pytest.raises(ValueError):
            udev._assign(value)


def test_with_p_key_children_the_guid_rule_takes_only_the_port_s_own_interface():
    """A child (ib0.8001) has its parent's GUID in its address; its pkey
    file says 0x8001 where the port's own says 0xffff (or 0x7fff)."""
    base = "[ipoib ib0]\nguid = 0x0002c903003f02f1\n"
    alone = udev.names_rules(parse_text(base))
    with_child = udev.names_rules(parse_text(base + "[ipoib ib0.8001]\nparent = ib0\npkey = 0x8001\n"
                                             "[partition p]\npkey = 0x0001\n"))
    assert "ATTR{pkey}" not in alone
    [rule] = [line for line in with_child.splitlines() if 'NAME="ib0"' in line]
    glob = re.search(r'ATTR\{pkey\}=="([^"]+)"', rule).group(1)
    assert [p for p in ("0xffff", "0x7fff", "0x8001", "0x0001") if fnmatch.fnmatchcase(p, glob)] == ["0xffff", "0x7fff"]
