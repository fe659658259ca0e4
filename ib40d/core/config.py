# SPDX-License-Identifier: GPL-2.0-or-later
"""Parse and validate /etc/ib40.conf (and /etc/ib40.conf.d/*.conf).

Pure: `parse_texts()` takes file names and their text and returns a Config or
raises ConfigError carrying every problem found, each a Problem (file, line,
section, key, message) that renders as "FILE:LINE: [section] key: message".
Reading the files from disk is the only I/O here (`load()`), kept at the edge.

The sections and keys, and how a single value is checked, are the table in
schema.py; the checks between keys are here.

The format is INI-like and strict on purpose: a typo in a network config must
stop the apply, not be ignored. configparser is not used because it loses line
numbers and silently merges duplicates.
"""

from __future__ import annotations

import ipaddress
import re

from ib40d.core.records import dataclass, field
from ib40d.core import schema
from ib40d.core.errors import ConfigError, Problem
from ib40d.core.schema import SECTIONS

DEFAULT_CONFIG = "/etc/ib40.conf"  # also in system/cliargs.py, which must not import this module

# The kernel's IFNAMSIZ is 16 including the NUL; dev_valid_name() refuses
# "", ".", "..", and names containing "/", ":" or white space.
IFNAMSIZ = 16

# ARP monitoring works for these modes only (kernel bonding.rst: "ARP
# monitoring ... does not work with 802.3ad, balance-tlb and balance-alb").
ARP_MONITOR_MODES = {"balance-rr", "active-backup", "balance-xor", "broadcast"}
# Datagram-mode IPoIB carries at most the IB MTU (4096) less the 4-byte
# IPoIB header; only connected mode reaches 65520.
IPOIB_DATAGRAM_MTU_MAX = 4092
MLX4_MAX_VFS = 126  # include/linux/mlx4/device.h MLX4_MAX_NUM_VF


@dataclass(frozen=True)
class Address:
    interface: ipaddress.IPv4Interface | ipaddress.IPv6Interface
    broadcast: ipaddress.IPv4Address | None = None

    @property
    def cidr(self) -> str:
        return str(self.interface)

    @property
    def family(self) -> int:
        return self.interface.version


@dataclass(frozen=True)
class CardConfig:
    pci: str | None = None  # normalized "0000:05:00.0"; None = the only one present
    port1: str | None = None  # "ib" | "eth" | "auto" | None (leave alone)
    port2: str | None = None
    vfs: int | None = None  # SR-IOV VFs on both ports; None: left alone
    vfs_port1: int | None = None  # mlx4 single-port VFs
    vfs_port2: int | None = None
    probe_vfs: int | None = None
    section: str = "card"  # its key in Config.origins: "card" or "card 0000:05:00.0"

    @property
    def label(self) -> str:
        return f"[{self.section}]"


@dataclass(frozen=True)
class LinkConfig:
    name: str
    mac: str | None = None  # lower case "00:02:c9:3e:ca:b1"
    mtu: int | None = None
    txqueuelen: int | None = None
    addresses: tuple[Address, ...] | None = None  # None: addresses not managed
    # (network, gateway or None, metric or None); None: routes not managed
    routes: tuple[tuple[str, str | None, int | None], ...] | None = None
    kind: str = "ether"  # "ether" for [link], "ipoib" for [ipoib]


@dataclass(frozen=True)
class IPoIBConfig(LinkConfig):
    mode: str | None = None  # "connected" | "datagram" | None (leave alone)
    guid: str | None = None  # port GUID "0002:c903:003f:02f1" (last 8 bytes of the address)
    parent: str | None = None  # a P_Key child of this [ipoib]
    pkey: int | None = None  # with the full-membership bit, 0x8001
    vf_guids: tuple[tuple[int, str], ...] | None = None  # ((VF, "02:02:c9:80:03:a4:e7:21"), ...): overrides
    kind: str = "ipoib"


@dataclass(frozen=True)
class BondConfig:
    name: str
    slaves: tuple[str, ...] = ()
    mode: str | None = None
    miimon: int | None = None
    updelay: int | None = None
    downdelay: int | None = None
    use_carrier: bool | None = None
    arp_interval: int | None = None
    arp_ip_target: tuple[str, ...] | None = None
    xmit_hash_policy: str | None = None
    lacp_rate: str | None = None
    ad_select: str | None = None
    min_links: int | None = None
    primary: str | None = None  # a slave's name
    mtu: int | None = None
    addresses: tuple[Address, ...] | None = None
    routes: tuple[tuple[str, str | None, int | None], ...] | None = None


@dataclass(frozen=True)
class VlanConfig:
    name: str
    link: str | None = None  # a [link] or [bond]
    id: int | None = None
    mtu: int | None = None
    addresses: tuple[Address, ...] | None = None
    routes: tuple[tuple[str, str | None, int | None], ...] | None = None


@dataclass(frozen=True)
class PartitionConfig:
    name: str
    pkey: int | None = None  # with the full-membership bit, as PKey parses it
    ipoib: bool = schema.default("partition", "ipoib")
    mtu: str | None = None  # "2048" | "4096"
    rate: str | None = None  # Gb/s, a key of schema.IB_RATES
    members: tuple[str, ...] = schema.default("partition", "members")


@dataclass(frozen=True)
class OpensmConfig:
    start: str = schema.default("opensm", "start")
    priority: int | None = None


@dataclass(frozen=True)
class SysctlConfig:
    tuning: bool = schema.default("sysctl", "tuning")


@dataclass(frozen=True)
class Config:
    files: tuple[str, ...] = ()
    cards: tuple[CardConfig, ...] = ()  # a bare [card], or one [card PCI] per card
    links: dict[str, LinkConfig] = field(default_factory=dict)  # [link] and [ipoib]
    bonds: dict[str, BondConfig] = field(default_factory=dict)
    vlans: dict[str, VlanConfig] = field(default_factory=dict)
    partitions: dict[str, PartitionConfig] = field(default_factory=dict)
    opensm: OpensmConfig = OpensmConfig()
    sysctl: SysctlConfig = SysctlConfig()
    # where each "section" / "section key" was last set: for messages after parsing
    origins: dict[str, Where] = field(default_factory=dict)

    @property
    def card(self) -> CardConfig | None:
        """The card section when there is exactly one."""
        return self.cards[0] if len(self.cards) == 1 else None

    @property
    def ipoibs(self) -> dict[str, IPoIBConfig]:
        return {n: l for n, l in self.links.items() if isinstance(l, IPoIBConfig)}

    def names(self) -> list[str]:
        """Every link name the config manages, links before bonds, VLANs last."""
        return list(self.links) + list(self.bonds) + list(self.vlans)

    def bond_of(self, link: str) -> BondConfig | None:
        for bond in self.bonds.values():
            if link in bond.slaves:
                return bond
        return None

    def origin(self, section: str, key: str | None = None) -> Where | None:
        return self.origins.get(f"{section} {key}" if key else section)


def shown(text: str) -> str:
    """TEXT for a message or a generated file: anything but printable ASCII
    as \\xNN escapes of its UTF-8 bytes (an undecodable byte of a file name
    as itself), so that it stays on one line in any terminal and locale."""
    if _PRINTABLE_RE.fullmatch(text):
        return text
    out = []
    for ch in text:
        if " " <= ch <= "~":
            out.append(ch)
            continue
        try:
            raw = ch.encode("utf-8", "surrogateescape")
        except UnicodeEncodeError:
            raw = ch.encode("utf-8", "surrogatepass")
        out.append("".join(f"\\x{b:02x}" for b in raw))
    return "".join(out)


_PRINTABLE_RE = re.compile(r"[ -~]*")


def desired_addresses(addresses: tuple[Address, ...]) -> dict[str, str | None]:
    """cidr -> broadcast. Without a broadcast key an IPv4 address gets its
    network's broadcast (as `ip addr add ... brd +` would) when ib40 adds it."""
    result = {}
    for a in addresses:
        bcast = a.broadcast
        if bcast is None and a.family == 4 and a.interface.network.prefixlen < 31:
            bcast = a.interface.network.broadcast_address
        result[str(a.interface)] = str(bcast) if bcast is not None else None
    return result


# ---------------------------------------------------------------- raw parsing


@dataclass(frozen=True)
class Where:
    file: str
    line: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}"


@dataclass
class _Value:
    text: str
    where: Where


@dataclass
class _Section:
    kind: str  # a name in schema.SECTIONS: "card", "link", "bond"...
    name: str | None
    where: Where
    keys: dict[str, _Value] = field(default_factory=dict)

    @property
    def label(self) -> str:
        return f"[{self.kind} {shown(self.name)}]" if self.name else f"[{self.kind}]"


_SECTION_RE = re.compile(r"^\[\s*([A-Za-z0-9_-]+)(?:\s+(\S+))?\s*\]$")
_KEY_RE = re.compile(r"^([A-Za-z0-9_]+)\s*=\s*(.*)$")
# An inline comment starts at " ;" or " #" (a value never contains either).
_INLINE_COMMENT_RE = re.compile(r"\s[;#].*$")


def _strip_comment(line: str) -> str:
    stripped = line.strip()
    if not stripped or stripped[0] in "#;":
        return ""
    return _INLINE_COMMENT_RE.sub("", stripped).strip()


def _parse_file(fname: str, text: str, problems: list[Problem]) -> list[_Section]:
    sections: list[_Section] = []
    seen_headers: dict[str, int] = {}
    current: _Section | None = None

    def problem(section: str | None, key: str | None, message: str) -> None:
        problems.append(Problem(fname, where.line, section, key, message))  # at the line being read

    if text.startswith("\ufeff"):
        text = text[1:]  # a byte order mark, skipped as systemd's parsers do
    # Only \n ends a line (\r\n too: strip() drops the \r); splitlines()
    # also splits at \f, \v, \x85, \u2028... and would misnumber the lines.
    for lineno, raw in enumerate(text.split("\n"), 1):
        where = Where(fname, lineno)
        line = _strip_comment(raw)
        if not line:
            continue
        if line.startswith("["):
            m = _SECTION_RE.match(line)
            if not m:
                problem(None, None, f"malformed section header {line!r} (expected [type] or [type NAME])")
                current = None
                continue
            kind, name = m.group(1), m.group(2)
            spec = SECTIONS.get(kind)
            if spec is None:
                known = ", ".join(f"[{k}]" for k in SECTIONS)
                problem(f"[{kind}{' ' + shown(name) if name else ''}]", None, f"unknown section (known: {known})")
                current = None
                continue
            if spec.named and not name:
                problem(f"[{kind}]", None, f"needs a link name, as in [{kind} NAME]")
                current = None
                continue
            if not spec.named and name and not spec.optional_name:
                problem(f"[{kind} {shown(name)}]", None, f"[{kind}] takes no name")
                current = None
                continue
            current = _Section(kind, name, where)
            if current.label in seen_headers:
                problem(current.label, None, f"duplicate section (first at line {seen_headers[current.label]})")
            else:
                seen_headers[current.label] = lineno
            sections.append(current)
            continue
        m = _KEY_RE.match(line)
        if not m:
            # the section is context here, not the subject: no colon after it
            ctx = f"{current.label} " if current else ""
            problem(None, None, f"{ctx}expected 'key = value', got {line!r}")
            continue
        key, value = m.group(1).lower(), m.group(2).strip()
        if current is None:
            problem(None, key, "key outside any section")
            continue
        if key not in SECTIONS[current.kind].key_names:
            known = ", ".join(sorted(SECTIONS[current.kind].key_names))
            problem(current.label, key, f"unknown key (known: {known})")
            continue
        if key in current.keys:
            problem(current.label, key, f"duplicate key (first at line {current.keys[key].where.line})")
            continue
        if value == "":
            problem(current.label, key, "empty value")
            continue
        current.keys[key] = _Value(value, where)
    return sections


def _merge(files_sections: list[list[_Section]]) -> list[_Section]:
    """Drop-ins re-open sections of earlier files: later keys win."""
    merged: dict[str, _Section] = {}
    for sections in files_sections:
        for s in sections:
            if s.label in merged:
                merged[s.label].keys.update(s.keys)
            else:
                merged[s.label] = _Section(s.kind, s.name, s.where, dict(s.keys))
    return list(merged.values())


# ------------------------------------------------------------ value checking


class _Checker:
    def __init__(self, problems: list[Problem]):
        self.problems = problems

    def err(self, where: Where, section: _Section, key: str | None, msg: str) -> None:
        self.problems.append(Problem(where.file, where.line, section.label, key, msg))

    def values(self, s: _Section) -> dict:
        """Each key of S's schema -> its value, checked by the key's type
        alone: the schema's default when the file does not set it, None
        when it is wrong (and a problem). The keys checked together
        (address, netmask, broadcast) are left to addresses()."""
        values = {}
        for key in SECTIONS[s.kind].keys:
            if key.type.parse is None:
                continue
            v = s.keys.get(key.name)
            if v is None:
                values[key.name] = key.default_value()
                continue
            values[key.name], messages = key.type.parse(v.text)
            for msg in messages:
                self.err(v.where, s, key.name, msg)
        return values

    def addresses(self, s: _Section) -> tuple[Address, ...] | None:
        v = s.keys.get("address")
        nm = s.keys.get("netmask")
        bc = s.keys.get("broadcast")
        if v is None:
            for other in (nm, bc):
                if other is not None:
                    key = "netmask" if other is nm else "broadcast"
                    self.err(other.where, s, key, "needs an address = in the same section")
            return None
        result: list[Address] = []
        words = v.text.split()
        for word in words:
            if "%" in word:
                # pyroute2 refuses a scope at apply time, halfway through a link
                self.err(v.where, s, "address", f"{word!r} has a zone (%...); a configured address takes none")
                continue
            if nm is not None:
                if "/" in word:
                    self.err(nm.where, s, "netmask", f"given together with a prefix length in address {word!r}: use one")
                    return None
                if len(words) > 1:
                    self.err(nm.where, s, "netmask", "netmask only goes with a single address")
                    return None
                try:
                    iface = ipaddress.IPv4Interface(f"{word}/{nm.text}")
                except ValueError:
                    self.err(nm.where, s, "netmask", f"{nm.text!r} is not a valid IPv4 netmask for {word!r}")
                    return None
            else:
                if "/" not in word:
                    self.err(v.where, s, "address", f"{word!r} needs a prefix length (10.30.0.2/16) or a netmask = key")
                    continue
                try:
                    iface = ipaddress.ip_interface(word)
                except ValueError:
                    self.err(v.where, s, "address", f"{word!r} is not an address in CIDR form like 10.30.0.2/16")
                    continue
            why = _not_a_host(iface)
            if why:
                self.err(v.where, s, "address", f"{word!r} is {why}")
                continue
            result.append(Address(iface))
        if len({a.interface.ip for a in result}) != len(result):
            self.err(v.where, s, "address", "the same address is listed twice")
        if bc is not None:
            v4 = [a for a in result if a.family == 4]
            if len(v4) != 1:
                self.err(bc.where, s, "broadcast", "broadcast needs exactly one IPv4 address in this section")
                return tuple(result)
            try:
                baddr = ipaddress.IPv4Address(bc.text)
            except ValueError:
                self.err(bc.where, s, "broadcast", f"{bc.text!r} is not an IPv4 address")
                return tuple(result)
            if baddr not in v4[0].interface.network:
                self.err(bc.where, s, "broadcast", f"{baddr} is outside {v4[0].interface.network}")
                return tuple(result)
            result = [Address(a.interface, baddr) if a is v4[0] else a for a in result]
        return tuple(result)


# Names udev rules and the kernel both take as they are: no quote, glob or
# "%" (udev patterns and substitutions; the kernel's "%d" template), nothing
# a shell or a unit name would need escaped beyond "-".
_IFNAME_RE = re.compile(r"[A-Za-z0-9_.-]+")
_RESERVED_NAMES = {
    "lo": "is the loopback device: ib40 would remove its 127.0.0.1/8 and ::1",
    # /proc/sys/net/*/conf/{all,default}: the kernel refuses them (EINVAL)
    "all": "is refused by the kernel (EINVAL): it names /proc/sys/net/*/conf/all",
    "default": "is refused by the kernel (EINVAL): it names /proc/sys/net/*/conf/default",
}


def _valid_ifname(name: str) -> str | None:
    """Why ib40 refuses this interface name, or None."""
    if name in _RESERVED_NAMES:
        return _RESERVED_NAMES[name]
    if name in (".", ".."):
        return "is not a valid interface name"
    bad = next((c for c in name if not _IFNAME_RE.fullmatch(c)), None)
    if bad is not None:
        return (f"contains {bad!r}; use letters, digits, '_', '.' and '-' "
                "(what udev rules and the kernel both take as they are)")
    if len(name) >= IFNAMSIZ:
        return f"is longer than {IFNAMSIZ - 1} characters (the kernel's IFNAMSIZ)"
    return None


def _not_a_host(iface: ipaddress.IPv4Interface | ipaddress.IPv6Interface) -> str | None:
    """Why IFACE cannot be a host's own address on a link, or None."""
    ip, net = iface.ip, iface.network
    if ip.is_unspecified:
        return "the unspecified address, not a host's"
    if ip == ipaddress.IPv4Address("255.255.255.255"):
        return "the limited broadcast address, not a host's"
    if ip.is_multicast:
        return "a multicast address, not a host's"
    if ip.version == 6 and ip.is_link_local:
        return "link-local: the kernel gives every link its own fe80:: address"
    # /31 and /32 (/127, /128) have no network or broadcast address (RFC 3021)
    if net.prefixlen < iface.max_prefixlen - 1:
        if ip == net.network_address:
            return f"the network address of {net}, not a host"
        if ip.version == 4 and ip == net.broadcast_address:
            return f"the broadcast address of {net}, not a host"
    return None


def _once(chk, s, key: str, value, seen: dict, what: str) -> None:
    """A MAC or GUID names one port: a second section giving it is a problem."""
    if not value:
        return
    if value in seen:
        chk.err(s.keys[key].where, s, key, f"{value} is also {what} of {seen[value].label}")
    seen[value] = s

def _build(sections: list[_Section], files: tuple[str, ...], problems: list[Problem]) -> Config:
    chk = _Checker(problems)
    cards: dict[str | None, CardConfig] = {}
    links: dict[str, LinkConfig] = {}
    bonds: dict[str, BondConfig] = {}
    vlans: dict[str, VlanConfig] = {}
    partitions: dict[str, PartitionConfig] = {}
    opensm = OpensmConfig()
    sysctl = SysctlConfig()
    origins: dict[str, Where] = {}
    name_sections: dict[str, _Section] = {}
    macs: dict[str, _Section] = {}
    guids: dict[str, _Section] = {}

    for s in sections:
        origin_key = f"{s.kind} {s.name}" if s.kind == "card" and s.name else (s.name or s.kind)
        origins[origin_key] = s.where
        for key, v in s.keys.items():
            origins[f"{origin_key} {key}"] = v.where
        if s.name is not None and s.kind != "card":
            why = _valid_ifname(s.name)
            if why:
                chk.err(s.where, s, None, f"interface name '{shown(s.name)}' {why}")
                continue
            if s.name in name_sections:
                other = name_sections[s.name]
                chk.err(s.where, s, None, f"{s.name} is already configured by {other.label} at {other.where}")
                continue
            name_sections[s.name] = s

        # Each key's value goes to the model's field of the same name.
        values = chk.values(s)
        if s.kind == "card":
            if values["port1"] == "eth" and values["port2"] == "ib":
                v = s.keys["port1"]
                chk.err(v.where, s, "port1", "port1 = eth with port2 = ib is refused by the mlx4 driver "
                        "(port 1 can be Ethernet only when port 2 is too); use port2 = eth or auto, or swap the cables")
            total = sum(values[k] or 0 for k in ("vfs", "vfs_port1", "vfs_port2"))
            if total > MLX4_MAX_VFS:
                chk.err(s.where, s, None, f"{total} virtual functions in all; mlx4 has at most {MLX4_MAX_VFS}")
            if (values["probe_vfs"] or 0) > (values["vfs"] or 0):
                chk.err(s.keys["probe_vfs"].where, s, "probe_vfs", f"{values['probe_vfs']} is more than vfs = "
                        f"{values['vfs'] or 0}: the host can probe only virtual functions that exist")
            pci = _card_pci(chk, s, values, cards)
            if pci is not False:
                cards[pci] = CardConfig(**dict(values, pci=pci), section=origin_key)

        elif s.kind in ("link", "ipoib"):
            addresses = chk.addresses(s)
            if s.kind == "link":
                _once(chk, s, "mac", values["mac"], macs, "the MAC")
                links[s.name] = LinkConfig(name=s.name, addresses=addresses, **values)
            else:
                mode, mtu = values["mode"], values["mtu"]
                if mtu is not None and mtu > IPOIB_DATAGRAM_MTU_MAX and mode != "connected":
                    v = s.keys["mtu"]
                    why = "in datagram mode" if mode == "datagram" else "unless mode = connected"
                    chk.err(v.where, s, "mtu", f"{mtu} is above {IPOIB_DATAGRAM_MTU_MAX}, the most IPoIB carries {why}; "
                            "set mode = connected (up to 65520) or mtu <= 4092")
                _once(chk, s, "guid", values["guid"], guids, "the port GUID")
                links[s.name] = IPoIBConfig(name=s.name, addresses=addresses, **values)

        elif s.kind == "bond":
            bonds[s.name] = _build_bond(chk, s, values)

        elif s.kind == "vlan":
            for key in ("link", "id"):
                if values[key] is None and key not in s.keys:
                    chk.err(s.where, s, None, f"needs {key} = " + ("the [link] or [bond] it is on" if key == "link"
                                                                   else "the VLAN ID (1-4094)"))
            vlans[s.name] = VlanConfig(name=s.name, addresses=chk.addresses(s), **values)

        elif s.kind == "partition":
            if values["pkey"] is None and "pkey" not in s.keys:
                chk.err(s.where, s, None, "needs pkey = the partition key")
            partitions[s.name] = PartitionConfig(name=s.name, **values)

        elif s.kind == "opensm":
            opensm = OpensmConfig(**values)

        elif s.kind == "sysctl":
            sysctl = SysctlConfig(**values)

    _check_bonds(chk, bonds, links, name_sections)
    _check_vlans(chk, vlans, links, bonds, name_sections)
    _check_children(chk, links, name_sections)
    _check_partitions(chk, partitions, links, opensm, name_sections)
    _check_routes(chk, [*links.values(), *bonds.values(), *vlans.values()], name_sections)
    _check_vf_guids(chk, links, cards, name_sections)
    return Config(files=files, cards=tuple(cards.values()), links=links, bonds=bonds, vlans=vlans, partitions=partitions,
                  opensm=opensm, sysctl=sysctl, origins=origins)


def _check_vf_guids(chk: _Checker, links, cards, name_sections) -> None:
    """vf_guids: on a port's own [ipoib] (not a P_Key child), VF numbers
    below the card's count (the most any card section has: which card a
    port is on is known only on the machine), no GUID given twice."""
    from ib40d.core.sriov import total_vfs

    most = max((total_vfs(c) for c in cards.values()), default=0)
    owner: dict[str, str] = {}
    for link in links.values():
        if not isinstance(link, IPoIBConfig) or link.vf_guids is None:
            continue
        s = name_sections[link.name]
        where = s.keys["vf_guids"].where
        if link.parent is not None:
            chk.err(where, s, "vf_guids", "a P_Key child has no virtual functions; set them on its parent's [ipoib]")
            continue
        over = [n for n, _ in link.vf_guids if n >= most]
        if over:
            chk.err(where, s, "vf_guids", f"VF {over[0]} does not exist: " + (
                f"the card has {most}, numbered from 0 (vfs)" if most else "no [card] has vfs"))
        for n, guid in link.vf_guids:
            if guid in owner:
                chk.err(where, s, "vf_guids", f"VF {n}'s GUID is also {owner[guid]}'s")
            owner[guid] = f"VF {n} of {link.name}"


def _card_pci(chk: _Checker, s: _Section, values: dict, cards: dict) -> str | None | bool:
    """The PCI address a card section is about (None: the only card
    present), or False when the section is refused."""
    pci = values["pci"]
    if s.name is not None:
        pci, errors = SECTIONS["card"].optional_name[1].parse(s.name)
        if errors:
            chk.err(s.where, s, None, f"{errors[0]}; name a card section by its PCI address, or write [card]")
            return False
        if "pci" in s.keys:
            chk.err(s.keys["pci"].where, s, "pci", "the section's name is the card's PCI address already; "
                    "remove pci = here")
            return False
    bare = None if pci is not None else s.label
    bare = bare or next((c.label for c in cards.values() if c.pci is None), None)
    if cards and bare:
        chk.err(s.where, s, None, f"{bare} without pci = means the only card, so it cannot stand beside other "
                "card sections; give each card its own [card PCI] section")
        return False
    if pci in cards:
        chk.err(s.where, s, None, f"card {pci} is already configured by {cards[pci].label}")
        return False
    return pci


def _check_children(chk: _Checker, links, name_sections) -> None:
    """A P_Key child: parent and pkey together, the parent an [ipoib] that
    is no child itself, and the name the kernel gives it (PARENT.PKEY)."""
    for link in links.values():
        if not isinstance(link, IPoIBConfig) or (link.parent is None and link.pkey is None):
            continue
        s = name_sections[link.name]
        if link.parent is None or link.pkey is None:
            if "parent" in s.keys and "pkey" in s.keys:
                continue  # one of them is wrong, and already said
            have, need = ("parent", "pkey") if link.parent is not None else ("pkey", "parent")
            chk.err(s.keys[have].where, s, have, f"needs {need} = too (a P_Key child has both)")
            continue
        where = s.keys["parent"].where
        parent = links.get(link.parent)
        if not isinstance(parent, IPoIBConfig) or parent.parent is not None:
            n = shown(link.parent)
            chk.err(where, s, "parent", f"{n} is not an [ipoib {n}] section of a port" +
                    (" (it is a child itself)" if isinstance(parent, IPoIBConfig) else ""))
            continue
        name = f"{link.parent}.{link.pkey:04x}"
        if link.name != name:
            chk.err(s.where, s, None, f"the kernel names the child of {link.parent} with P_Key {link.pkey:#06x} "
                    f"{name}: use [ipoib {name}]")
        if link.guid is not None:
            chk.err(s.keys["guid"].where, s, "guid", "a P_Key child has its parent's GUID: ib40 finds it by name")


IPOIB_DATAGRAM_MTU_2048 = 2044  # a 2048-byte IB MTU less the 4-byte IPoIB header


def _check_partitions(chk: _Checker, partitions, links, opensm, name_sections) -> None:
    """One partition per P_Key; with ib40 running the SM, each P_Key child's
    partition must be here, carry IPoIB, and carry its datagram MTU."""
    by_pkey: dict[int, PartitionConfig] = {}
    for p in partitions.values():
        if p.pkey is None:
            continue
        if p.pkey in by_pkey:
            s = name_sections[p.name]
            chk.err(s.keys["pkey"].where, s, "pkey", f"{p.pkey & 0x7FFF:#06x} is also [partition {by_pkey[p.pkey].name}]")
        by_pkey[p.pkey] = p
    if opensm.start == "never":
        return  # another SM's partitions are not ib40's to know
    for link in links.values():
        if not isinstance(link, IPoIBConfig) or link.pkey is None or link.parent is None:
            continue
        s = name_sections[link.name]
        p = by_pkey.get(link.pkey)
        if p is None:
            chk.err(s.keys["pkey"].where, s, "pkey", f"no [partition] has pkey {link.pkey & 0x7FFF:#06x}: ib40's "
                    "opensm would not serve it (add one, or set [opensm] start = never if another SM does)")
            continue
        if not p.ipoib:
            chk.err(s.keys["pkey"].where, s, "pkey", f"[partition {p.name}] has ipoib = no: opensm makes no IPoIB "
                    "group there")
        if (link.mtu is not None and link.mtu > IPOIB_DATAGRAM_MTU_2048 and link.mode != "connected"
                and p.mtu != "4096"):
            chk.err(s.keys["mtu"].where, s, "mtu", f"{link.mtu} is above {IPOIB_DATAGRAM_MTU_2048}, the most a datagram "
                    f"carries in a 2048-byte partition: set mtu = 4096 in [partition {p.name}] (or mode = connected)")


def _check_vlans(chk: _Checker, vlans, links, bonds, name_sections) -> None:
    on: dict[tuple[str, int], str] = {}
    for vlan in vlans.values():
        s = name_sections[vlan.name]
        if vlan.link is None:
            continue
        where = s.keys["link"].where
        parent = links.get(vlan.link) or bonds.get(vlan.link)
        bond = next((b for b in bonds.values() if vlan.link in b.slaves), None)
        if parent is None:
            n = shown(vlan.link)
            chk.err(where, s, "link", f"{n} is neither a [link {n}] nor a [bond {n}] section")
            continue
        if getattr(parent, "kind", "ether") == "ipoib":
            chk.err(where, s, "link", f"{vlan.link} is IPoIB, which carries no VLANs (InfiniBand has P_Keys)")
        elif bond is not None:
            chk.err(where, s, "link", f"{vlan.link} is a slave of {bond.name}: put the VLAN on {bond.name}")
        if vlan.mtu is not None and parent.mtu is not None and vlan.mtu > parent.mtu:
            chk.err(s.keys["mtu"].where, s, "mtu", f"{vlan.mtu} is above {vlan.link}'s mtu {parent.mtu}")
        if vlan.id is not None:
            if (vlan.link, vlan.id) in on:
                chk.err(s.keys["id"].where, s, "id", f"VLAN {vlan.id} on {vlan.link} is also [vlan {on[vlan.link, vlan.id]}]")
            on[vlan.link, vlan.id] = vlan.name


def _build_bond(chk: _Checker, s: _Section, values: dict) -> BondConfig:
    miimon = values["miimon"]
    for key in ("updelay", "downdelay"):
        value = values[key]
        if not value or ("miimon" in s.keys and miimon is None):
            continue  # nothing to check, or miimon itself is already reported
        v = s.keys[key]
        if not miimon:
            chk.err(v.where, s, key, f"{key} needs miimon > 0 (it counts MII monitor intervals)")
        elif value % miimon:
            chk.err(v.where, s, key, f"{value} is not a multiple of miimon {miimon}; "
                    f"the kernel would round it down to {value - value % miimon}")
    if values["arp_interval"]:
        v = s.keys["arp_interval"]
        if miimon:
            chk.err(v.where, s, "arp_interval", "ARP monitoring and miimon exclude each other "
                    "(the kernel turns miimon off when arp_interval is set); set miimon = 0")
        if "arp_ip_target" not in s.keys:
            chk.err(v.where, s, "arp_interval", "needs arp_ip_target = the peer's address(es)")
        if values["mode"] is not None and values["mode"] not in ARP_MONITOR_MODES:
            chk.err(v.where, s, "arp_interval", f"ARP monitoring does not work in mode {values['mode']}")
    elif values["arp_ip_target"]:
        chk.err(s.keys["arp_ip_target"].where, s, "arp_ip_target", "needs arp_interval > 0")
    if values["slaves"] is None:
        chk.err(s.where, s, None, "needs slaves = the links to bond")
        values["slaves"] = ()
    _check_bond_modes(chk, s, values)
    return BondConfig(name=s.name, addresses=chk.addresses(s), **values)


def _check_bond_modes(chk: _Checker, s: _Section, values: dict) -> None:
    """The keys the bonding driver uses in some modes only, against mode =;
    primary among the slaves, min_links at most their number."""
    mode = values["mode"]
    for key in SECTIONS["bond"].keys:
        if not key.modes or key.name not in s.keys or values[key.name] is None:
            continue
        v = s.keys[key.name]
        only = " and ".join(key.modes)
        if "mode" not in s.keys:
            chk.err(v.where, s, key.name, f"is used in mode {only} only: set mode =")
        elif mode is not None and mode not in key.modes:
            chk.err(v.where, s, key.name, f"is used in mode {only} only, not {mode}")
    slaves = values["slaves"] or ()
    primary = values["primary"]
    if primary is not None and slaves and primary not in slaves:
        chk.err(s.keys["primary"].where, s, "primary", f"{shown(primary)} is not one of slaves ({shown(' '.join(slaves))})")
    min_links = values["min_links"]
    if min_links and slaves and min_links > len(slaves):
        chk.err(s.keys["min_links"].where, s, "min_links", f"{min_links} is more than the {len(slaves)} slaves: "
                "the bond would never have carrier")


def _check_routes(chk: _Checker, sections, name_sections) -> None:
    """A gateway must be on the link (inside one of its address networks,
    when the section gives addresses: the kernel refuses it otherwise), and
    one destination and metric is one route of the main table."""
    seen: dict[tuple, str] = {}
    for cfg in sections:
        if not cfg.routes:
            continue
        s = name_sections[cfg.name]
        where = s.keys["routes"].where
        networks = [a.interface.network for a in cfg.addresses or ()]
        for dest, gateway, metric in cfg.routes:
            if gateway is not None and networks and not any(ipaddress.ip_address(gateway) in n for n in networks):
                chk.err(where, s, "routes", f"gateway {gateway} of {dest} is in none of this link's networks "
                        f"({', '.join(map(str, networks))}): the kernel can't reach it on {cfg.name}")
            key = (dest, metric)
            if key in seen:
                chk.err(where, s, "routes", f"{dest}{f' metric {metric}' if metric is not None else ''} is also a "
                        f"route of {seen[key]}: give one of them another metric")
            seen[key] = name_sections[cfg.name].label


def _check_bonds(chk: _Checker, bonds, links, name_sections) -> None:
    owner: dict[str, str] = {}
    for bond in bonds.values():
        s = name_sections[bond.name]
        slaves_v = s.keys.get("slaves")
        kinds = set()
        for slave in bond.slaves:
            where = slaves_v.where
            if slave not in links:
                if slave in bonds:
                    chk.err(where, s, "slaves", f"{slave} is a bond; ib40 does not nest bonds")
                else:
                    n = shown(slave)
                    chk.err(where, s, "slaves", f"{n} is neither a [link {n}] nor an [ipoib {n}] section")
                continue
            if slave in owner:
                chk.err(where, s, "slaves", f"{slave} is already a slave of {owner[slave]}")
                continue
            owner[slave] = bond.name
            link = links[slave]
            kinds.add(link.kind)
            ls = name_sections[slave]
            if link.addresses is not None:
                chk.err(ls.keys["address"].where, ls, "address",
                        f"{slave} is a slave of {bond.name}: put the address on {bond.name}, never on a slave")
            if link.routes is not None:
                chk.err(ls.keys["routes"].where, ls, "routes",
                        f"{slave} is a slave of {bond.name}: put the routes on {bond.name}")
            if link.mtu is not None and link.mtu != bond.mtu:
                why = f"differs from {bond.name} mtu {bond.mtu}" if bond.mtu is not None else f"is set on a slave of {bond.name}"
                chk.err(ls.keys["mtu"].where, ls, "mtu",
                        f"{link.mtu} {why}; the bond sets its slaves' MTU: put mtu on [bond {bond.name}]")
        if "ipoib" in kinds and bond.mtu is not None and bond.mtu > IPOIB_DATAGRAM_MTU_MAX:
            datagram = [sl for sl in bond.slaves if sl in links and links[sl].kind == "ipoib"
                        and links[sl].mode != "connected"]
            if datagram:
                chk.err(s.keys["mtu"].where, s, "mtu", f"{bond.mtu} is above {IPOIB_DATAGRAM_MTU_MAX}, which "
                        f"{', '.join(datagram)} carries only in connected mode: set mode = connected on "
                        f"[ipoib {datagram[0]}]")
        if "ipoib" in kinds:
            if len(kinds) > 1:
                chk.err(slaves_v.where, s, "slaves", "IPoIB and Ethernet links cannot be slaves of the same bond")
            elif bond.mode != "active-backup":
                where = s.keys["mode"].where if "mode" in s.keys else s.where
                key = "mode" if "mode" in s.keys else None
                mode = bond.mode or "balance-rr (the default)"
                chk.err(where, s, key, f"IPoIB slaves work in active-backup mode only, not {mode}; set mode = active-backup")


# ---------------------------------------------------------------- entry points


def parse_texts(named_texts: list[tuple[str, str]]) -> Config:
    """Parse (file name, text) pairs, main file first. Raises ConfigError."""
    return _parse(named_texts, [])


def parse_bytes(named_bytes: list[tuple[str, bytes]]) -> Config:
    """parse_texts() for the files' bytes, always read as UTF-8 (whatever
    the locale); a line that is not UTF-8 is a problem at that line."""
    problems: list[Problem] = []
    return _parse([(name, _decode(name, data, problems)) for name, data in named_bytes], problems)


def _decode(fname: str, data: bytes, problems: list[Problem]) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        pass
    lines = []
    # 0x0a is never part of a UTF-8 sequence: the lines are those of the text
    for lineno, raw in enumerate(data.split(b"\n"), 1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError as e:
            problems.append(Problem(fname, lineno, None, None, f"byte 0x{raw[e.start]:02x} (byte {e.start + 1} "
                                    "of the line) is not UTF-8; write the file as UTF-8"))
            lines.append(raw.decode("utf-8", "replace"))
    return "\n".join(lines)


def _parse(named_texts: list[tuple[str, str]], problems: list[Problem]) -> Config:
    per_file = [_parse_file(name, text, problems) for name, text in named_texts]
    files = tuple(name for name, _ in named_texts)
    config = _build(_merge(per_file), files, problems)
    if problems:
        # by file (main first, then drop-ins) and line; a stable sort keeps
        # the order of the problems of one line
        order = {name: i for i, name in reversed(list(enumerate(files)))}
        raise ConfigError(sorted(problems, key=lambda p: (order.get(p.file, len(files)), p.line or 0)))
    return config


def parse_text(text: str, fname: str = "ib40.conf") -> Config:
    return parse_texts([(fname, text)])
