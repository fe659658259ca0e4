# SPDX-License-Identifier: GPL-2.0-or-later
"""The sections and keys of /etc/ib40.conf, each declared once: whether a
section takes a name, and each key's type (with its range or choices),
default and one line of doc.

config.py checks every single value with its key's type here and hands the
values to its model by key name (BondConfig.miimon for [bond] miimon); the
checks between keys (slaves, multiples of miimon, IPoIB mode and MTU...)
are code in config.py. The README's key table and ib40.conf(5) are rendered
from this table (`make schema-docs` writes both: `python3 -m ib40d.commands.schema_docs
--man` prints the page, `--readme README.md` replaces the table in place);
tests/fake/test_schema.py fails when either is stale.
"""

from __future__ import annotations

import ipaddress
import re

BOND_MODES = {
    "balance-rr": 0,
    "active-backup": 1,
    "balance-xor": 2,
    "broadcast": 3,
    "802.3ad": 4,
    "balance-tlb": 5,
    "balance-alb": 6,
}
# bonding.rst's names; each tuple's order is the kernel's numbering (netlink
# carries IFLA_BOND_XMIT_HASH_POLICY, _AD_LACP_RATE, _AD_SELECT as the index)
XMIT_HASH_POLICIES = ("layer2", "layer3+4", "layer2+3", "encap2+3", "encap3+4", "vlan+srcmac")
LACP_RATES = ("slow", "fast")
AD_SELECTS = ("stable", "bandwidth", "count")
PORT_TYPES = ("ib", "eth", "auto")
IPOIB_MODES = ("connected", "datagram")
OPENSM_START = ("auto", "always", "never")
MTU_MIN, MTU_MAX = 68, 65520


# ------------------------------------------------------------------ types
#
# parse(text) -> (value, [messages]): a scalar with a message has the value
# None; a list keeps its good items. syntax() says how a value is written
# (the man page), hint() the same for the README table, in markdown.


class Type:
    SYNTAX = HINT = ""

    def syntax(self) -> str:
        return self.SYNTAX

    def hint(self) -> str:
        return self.HINT


class Int(Type):
    def __init__(self, lo: int, hi: int, unit: str = ""):
        self.lo, self.hi, self.unit = lo, hi, unit

    def parse(self, text: str):
        # int() also takes "1_000", " 12" and digits of other scripts ("９０００")
        m = re.fullmatch(r"([-+]?)0*([0-9]+)", text)
        if not m:
            return None, [f"{text!r} is not a whole number"]
        if len(m.group(2)) > 20:  # beyond every range here; int() refuses 4300 digits
            return None, [f"{m.group(1)}{m.group(2)[:8]}... ({len(m.group(2))} digits) "
                          f"is out of range {self.lo}..{self.hi}"]
        n = int(m.group(1) + m.group(2), 10)
        if not self.lo <= n <= self.hi:
            return None, [f"{n} is out of range {self.lo}..{self.hi}"]
        return n, []

    def syntax(self) -> str:
        return f"{self.lo}..{self.hi}" + (f" ({self.unit})" if self.unit else "")

    def hint(self) -> str:
        # the kernel's own u32/int limits say nothing a reader needs
        if self.hi <= 0xFFFF:
            return f" ({self.lo}–{self.hi})"
        return f" ({self.unit})" if self.unit else ""


class Enum(Type):
    def __init__(self, choices, aliases: dict[str, str] | None = None, noun: str | None = None):
        self.choices, self.aliases, self.noun = tuple(choices), aliases or {}, noun

    def parse(self, text: str):
        value = text.lower()
        value = self.aliases.get(value, value)
        if value not in self.choices or not text.isascii():  # "\u212a".lower() == "k"
            if self.noun:
                return None, [f"{text!r} is not {self.noun} ({', '.join(self.choices)})"]
            return None, [f"{text!r} is not one of: {', '.join(self.choices)}"]
        return value, []

    def _aliases(self) -> str:
        return f"{min(self.aliases)}..{max(self.aliases)}" if self.aliases else ""

    def syntax(self) -> str:
        return " | ".join([*self.choices, *filter(None, [self._aliases()])])

    def hint(self) -> str:
        choices = " \\| ".join(f"`{c}`" for c in self.choices)
        return f" = {choices}" + (f" (or {self._aliases().replace('..', '–')})" if self.aliases else "")


class Bool(Type):
    SYNTAX, HINT = "yes | no (or true | false, 1 | 0, on | off)", " = `yes` \\| `no`"
    TRUE, FALSE = ("1", "yes", "true", "on"), ("0", "no", "false", "off")

    def parse(self, text: str):
        if text.lower() in self.TRUE:
            return True, []
        if text.lower() in self.FALSE:
            return False, []
        return None, [f"{text!r} is not a boolean (yes/no, true/false, 1/0, on/off)"]


class Mac(Type):
    SYNTAX, HINT = "a MAC address like 00:02:c9:3e:ca:b1", " (MAC address)"

    def parse(self, text: str):
        if not re.fullmatch(r"[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){5}", text):
            return None, [f"{text!r} is not a MAC address like 00:02:c9:3e:ca:b1"]
        mac = text.lower()
        why = None
        if mac == "ff:ff:ff:ff:ff:ff":
            why = "the broadcast address"
        elif int(mac[:2], 16) & 1:
            why = "a multicast address"
        elif mac == "00:00:00:00:00:00":
            why = "all zero"
        if why:
            return None, [f"{text!r} is {why}, not a port's MAC"]
        return mac, []


class Guid(Type):
    """A port GUID as ibstat prints it (0x0002c903003f02f1) or as sysfs
    does (0002:c903:003f:02f1); its value is the sysfs form."""

    SYNTAX, HINT = "a port GUID like 0x0002c903003f02f1 or 0002:c903:003f:02f1", " (port GUID)"

    def parse(self, text: str):
        low = text.lower()
        digits = None
        if re.fullmatch(r"0x[0-9a-f]{16}", low):
            digits = low[2:]
        elif re.fullmatch(r"[0-9a-f]{4}(:[0-9a-f]{4}){3}", low):
            digits = low.replace(":", "")
        if digits is None:
            return None, [f"{text!r} is not a port GUID like 0x0002c903003f02f1"]
        if int(digits, 16) == 0:
            return None, [f"{text!r} is all zero, not a port's GUID"]
        return ":".join(digits[i:i + 4] for i in range(0, 16, 4)), []


class VfGuids(Type):
    """`N=GUID, N=GUID`: virtual function N's GUID (ibstat's or sysfs's form,
    as Guid); its value is ((N, "02:02:c9:80:03:a4:e7:21"), ...) by N, the
    GUIDs in the form `ip link` takes."""

    SYNTAX, HINT = "VF=GUID pairs like 0=0x0202c98000a4e721, 3=0202:c980:03a4:e721", " (VF=GUID, ...)"

    def parse(self, text: str):
        pairs, seen = [], {}
        for item in (i.strip() for i in text.split(",")):
            vf, eq, guid_text = item.partition("=")
            if not eq or not re.fullmatch(r"[0-9]{1,3}", vf.strip()):
                return None, [f"{item!r} is not VF=GUID, like 3=0x0202c98003a4e721"]
            guid, errors = Guid().parse(guid_text.strip())
            if errors:
                return None, errors
            n, wire = int(vf), ":".join(guid.replace(":", "")[i:i + 2] for i in range(0, 16, 2))
            if n in dict(pairs):
                return None, [f"VF {n} is given twice"]
            if wire in seen:
                return None, [f"VFs {seen[wire]} and {n} have the same GUID {guid_text.strip()}"]
            seen[wire] = n
            pairs.append((n, wire))
        return tuple(sorted(pairs)), []


class Pci(Type):
    """A PCI address, the domain optional; its value is "0000:05:00.0"."""

    SYNTAX, HINT = "a PCI address like 0000:05:00.0 or 05:00.0", " (PCI address)"

    def parse(self, text: str):
        m = re.fullmatch(r"(?:([0-9a-fA-F]{4}):)?([0-9a-fA-F]{2}):([0-9a-fA-F]{2})\.([0-7])", text)
        if not m:
            return None, [f"{text!r} is not a PCI address like 0000:05:00.0"]
        domain = (m.group(1) or "0000").lower()
        return f"{domain}:{m.group(2).lower()}:{m.group(3).lower()}.{m.group(4)}", []


class Names(Type):
    """Link names separated by spaces or commas; the value has each once."""

    SYNTAX, HINT = "link names, separated by spaces or commas", " (link names)"

    def parse(self, text: str):
        names = text.replace(",", " ").split()
        problems = []
        if not names:
            problems.append(f"{text!r} names no link")
        if len(set(names)) != len(names):
            problems.append("a link is listed twice")
        return tuple(dict.fromkeys(names)), problems


class Name(Type):
    """One link name (its section is checked in config.py)."""

    SYNTAX, HINT = "a link name", " (link name)"

    def parse(self, text: str):
        if len(text.split()) != 1:
            return None, [f"{text!r} is not one link name"]
        return text, []


class PKey(Type):
    """An InfiniBand partition key, 0x0001-0x7ffe; its value has the
    full-membership bit (0x8000) set, as a P_Key child is made with."""

    SYNTAX, HINT = "a partition key like 0x8001 (0x0001 is taken as 0x8001, full member)", " (P_Key, like `0x8001`)"
    FULL = 0x8000

    def parse(self, text: str):
        if not re.fullmatch(r"0[xX][0-9a-fA-F]{1,4}", text):
            return None, [f"{text!r} is not a partition key like 0x8001"]
        pkey = int(text, 16) | self.FULL
        if pkey == self.FULL:
            return None, [f"{text} is the invalid partition key (0x0000)"]
        if pkey == 0xFFFF:
            return None, [f"{text} is the default partition (0x7fff): the parent interface's, which ib40 writes itself"]
        return pkey, []


class Members(Type):
    """opensm's PortGUIDs list: port GUIDs or ALL, ALL_CAS, ALL_SWITCHES,
    ALL_ROUTERS, SELF, each =full or =limited; the value is the list as
    partitions.conf writes it."""

    SYNTAX = ("port GUIDs (0x0002c903003f02f1) or ALL, ALL_CAS, ALL_SWITCHES, ALL_ROUTERS, SELF, each =full or "
              "=limited, separated by commas")
    HINT = " (`ALL=full`, port GUIDs`=full`/`=limited`, comma-separated)"
    KEYWORDS = ("ALL", "ALL_CAS", "ALL_SWITCHES", "ALL_ROUTERS", "SELF")

    def parse(self, text: str):
        members, problems = [], []
        for item in text.split(","):
            who, _, membership = (part.strip() for part in item.partition("="))
            membership = membership or "limited"  # opensm's default
            if who.upper() in self.KEYWORDS:
                who = who.upper()
            elif re.fullmatch(r"0x[0-9a-fA-F]{1,16}", who):
                who = who.lower()
            else:
                problems.append(f"{who!r} is not a port GUID like 0x0002c903003f02f1 nor one of {', '.join(self.KEYWORDS)}")
                continue
            if membership not in ("full", "limited"):
                problems.append(f"{membership!r} is not full or limited")
                continue
            members.append(f"{who}={membership}")
        return tuple(members), problems


# opensm's rate codes for an IPoIB multicast group (IBTA: the static rate
# enumeration), by the link rate in Gb/s as ibstat shows it
IB_RATES = {"2.5": 2, "5": 5, "10": 3, "14": 11, "20": 6, "25": 15, "30": 4, "40": 7, "56": 12, "60": 8,
            "80": 9, "100": 16, "112": 13, "120": 10, "168": 14, "200": 17, "300": 18}
# partition mtu by bytes: opensm's IBTA codes
IB_MTUS = {"2048": 4, "4096": 5}


class ArpTargets(Type):
    MOST = 16  # the kernel's BOND_MAX_ARP_TARGETS
    SYNTAX, HINT = f"IPv4 addresses, at most {MOST}, separated by spaces", " (IPv4 addresses)"

    def parse(self, text: str):
        targets, problems = [], []
        for word in text.split():
            try:
                target = ipaddress.IPv4Address(word)
            except ValueError:
                problems.append(f"{word!r} is not an IPv4 address")
                continue
            # bond_option_arp_ip_target: the kernel refuses these with EINVAL
            if target.is_unspecified or target == ipaddress.IPv4Address("255.255.255.255"):
                problems.append(f"{word} cannot be an ARP target")
            elif str(target) in targets:
                problems.append(f"{word} is listed twice")
            else:
                targets.append(str(target))
        if len(targets) > self.MOST:
            problems.append(f"at most {self.MOST} targets (BOND_MAX_ARP_TARGETS)")
        return tuple(targets), problems


class Routes(Type):
    """Comma-separated `DEST [via GW] [metric N]`; each a (network, gateway
    or None, metric or None) tuple. DEST is a network in CIDR form or
    `default`."""

    SYNTAX = "DEST [via GATEWAY] [metric N], separated by commas; DEST a network like 10.0.2.0/30, or default"
    HINT = " (`DEST [via GW] [metric N]`, comma-separated)"
    METRIC_MAX = 2**32 - 1  # RTA_PRIORITY is a u32

    def parse(self, text: str):
        routes, problems = [], []
        for item in text.split(","):
            route, why = self._route(item.split())
            if why:
                problems.append(why)
            elif any(r[0] == route[0] and r[2] == route[2] for r in routes):
                problems.append(f"{route[0]} is listed twice" + (f" with metric {route[2]}" if route[2] is not None else ""))
            else:
                routes.append(route)
        return tuple(routes), problems

    def _route(self, words: list[str]):
        if not words:
            return None, "an empty route (two commas, or one at the end)"
        item = " ".join(words)
        dest_text, rest = words[0], words[1:]
        opts = {}
        while rest:
            if len(rest) < 2 or rest[0] not in ("via", "metric") or rest[0] in opts:
                return None, f"{item!r} is not DEST [via GATEWAY] [metric N]"
            opts[rest[0]], rest = rest[1], rest[2:]
        gateway = None
        if "via" in opts:
            try:
                gateway = ipaddress.ip_address(opts["via"])
            except ValueError:
                return None, f"gateway {opts['via']!r} is not an IP address"
            if gateway.is_unspecified or gateway.is_multicast:
                return None, f"gateway {gateway} cannot be a router's address"
        if dest_text == "default":
            dest_text = "::/0" if gateway is not None and gateway.version == 6 else "0.0.0.0/0"
        elif "/" not in dest_text:
            return None, f"{dest_text!r} needs a prefix length (10.0.2.0/30, or /32 for one host)"
        try:
            dest = ipaddress.ip_network(dest_text)
        except ValueError:
            try:
                net = ipaddress.ip_interface(dest_text).network
            except ValueError:
                return None, f"{dest_text!r} is not a network like 10.0.2.0/30"
            return None, f"{dest_text} has host bits set: the network is {net}"
        if gateway is not None and gateway.version != dest.version:
            return None, f"{item!r}: gateway and destination are of different IP versions"
        metric = None
        if "metric" in opts:
            metric, why = Int(0, self.METRIC_MAX).parse(opts["metric"])
            if why:
                return None, f"metric: {why[0]}"
        return (str(dest), None if gateway is None else str(gateway), metric), None


class Addressing(Type):
    """address, netmask and broadcast: a netmask changes how the address
    is read, so config.py checks the three together (parse is None)."""

    parse = None

    def __init__(self, syntax: str):
        self.SYNTAX = syntax


# ------------------------------------------------------------------ the table


# Plain classes, not dataclasses: status, check and plan import this table,
# and each dataclass costs about half a millisecond to define.
class Key:
    __slots__ = ("name", "type", "doc", "default", "modes")

    def __init__(self, name: str, type: Type, doc: str, default: str | None = None,
                 modes: tuple[str, ...] = ()):
        self.name, self.type, self.doc = name, type, doc
        # written as in the file; None: without the key, ib40 leaves the setting as it is
        self.default = default
        # a [bond] key the bonding driver uses only in these modes: config.py
        # refuses it in another mode (or without mode =)
        self.modes = modes

    def modes_doc(self) -> str:
        return f" Only in mode {', '.join(self.modes)}." if self.modes else ""

    def default_value(self):
        return None if self.default is None else self.type.parse(self.default)[0]


class Section:
    __slots__ = ("name", "named", "doc", "keys", "key_names", "optional_name")

    def __init__(self, name: str, named: bool, doc: str, keys: tuple[Key, ...],
                 optional_name: tuple[str, Type] | None = None):
        self.name = name
        self.named = named  # [link NAME], or [card]
        self.doc, self.keys = doc, keys
        self.key_names = tuple(k.name for k in keys)
        # Unnamed, or named by a value of this type: [card] or [card PCI]
        self.optional_name = optional_name

    def key(self, name: str) -> Key | None:
        return next((k for k in self.keys if k.name == name), None)

    @property
    def header(self) -> str:
        if self.optional_name:
            return f"[{self.name}] or [{self.name} {self.optional_name[0]}]"
        return f"[{self.name} NAME]" if self.named else f"[{self.name}]"


_MTU = Int(MTU_MIN, MTU_MAX)
_QUEUE = Int(0, 2**32 - 1)  # u32 in the kernel
_MS = Int(0, 2**31 - 1, "ms")  # the bonding driver's int
_ROUTES = Key("routes", Routes(), "Routes out of this link, as ip route add DEST via GW metric N dev NAME "
               "would add them (a gateway inside one of its address networks); ib40 also removes, from a link "
               "with this key, the routes others added by hand (ip route's boot or static protocol) that are not "
               "here, and never touches the kernel's, DHCP's, RA's or routing daemons'.")
_ADDRESS_KEYS = (
    Key("address", Addressing("addresses in CIDR form like 10.30.0.2/16, separated by spaces"),
        "The addresses of the link, or one address with netmask = as in the HOWTO; never on a bond's slave."),
    Key("netmask", Addressing("an IPv4 netmask like 255.255.255.0"),
        "The netmask of a single address written without a prefix length."),
    Key("broadcast", Addressing("an IPv4 address"),
        "The broadcast address of the one IPv4 address; without it, it is the subnet's (as with brd +)."),
)

SECTIONS: dict[str, Section] = {s.name: s for s in (
    Section("card", False, "A ConnectX card and the types of its two ports. [card] is the one card of the "
            "machine (pci = chooses it when there are several); with several cards, one [card PCI] section "
            "each, named by its PCI address as lspci -D shows it (0000:05:00.0).", (
        Key("pci", Pci(), "The card's PCI address in a bare [card]; may be left out when exactly one ConnectX card "
            "is present. A [card PCI] section takes its address from its name."),
        Key("port1", Enum(PORT_TYPES), "Port 1 as InfiniBand, Ethernet or VPI auto-sensing; eth needs port2 = eth "
            "or auto (mlx4 refuses port 1 on Ethernet with port 2 on InfiniBand)."),
        Key("port2", Enum(PORT_TYPES), "Port 2 as InfiniBand, Ethernet or VPI auto-sensing."),
        Key("vfs", Int(0, 126), "SR-IOV virtual functions serving both ports (mlx4's num_vfs port1+2 slot; on "
            "mlx5, sriov_numvfs). mlx4 takes them through the module options in /etc/modprobe.d/ib40-mlx4.conf "
            "at its next load (a reboot or module reload); the firmware must have SRIOV_EN and NUM_OF_VFS."),
        Key("vfs_port1", Int(0, 64), "mlx4 only: virtual functions serving port 1 alone (num_vfs=port1,port2,port1+2)."),
        Key("vfs_port2", Int(0, 64), "mlx4 only: virtual functions serving port 2 alone."),
        Key("probe_vfs", Int(0, 126), "mlx4 only: how many of the two-port virtual functions the host itself "
            "probes (probe_vf) instead of leaving them to VMs."),
    ), optional_name=("PCI", Pci())),
    Section("link", True, "An Ethernet port named NAME, alone or a slave of a [bond].", (
        Key("mac", Mac(), "The port's MAC address: a udev rule gives the port with this MAC the name NAME."),
        Key("mtu", _MTU, "The MTU; on a bond's slave, only as the bond's (set it on the [bond])."),
        Key("txqueuelen", _QUEUE, "The transmit queue length (the HOWTO sets 10000)."),
        *_ADDRESS_KEYS,
        _ROUTES,
    )),
    Section("ipoib", True, "The IPoIB interface NAME of an InfiniBand port, alone or a slave of a [bond].", (
        Key("mode", Enum(IPOIB_MODES), "The IPoIB mode: connected carries an MTU up to 65520, datagram up to 4092."),
        Key("mtu", _MTU, "The MTU; above 4092 only with mode = connected."),
        Key("guid", Guid(), "The port GUID: a udev rule gives the IPoIB interface of this port the name NAME."),
        Key("parent", Name(), "Makes NAME a P_Key child of this [ipoib] interface, named as the kernel names "
            "it: PARENT.PKEY in four hex digits (ib0.8001); created by ib40, and removed only if ib40 created it."),
        Key("pkey", PKey(), "The child's partition key; the full-membership bit is set for you."),
        Key("vf_guids", VfGuids(), "On the IPoIB interface of a port whose card has vfs: the GUID of these "
            "virtual functions (node and port GUID alike) instead of the one derived from the port's GUID. "
            "A VF number must be below the card's VF count."),
        Key("txqueuelen", _QUEUE, "The transmit queue length."),
        *_ADDRESS_KEYS,
        _ROUTES,
    )),
    Section("bond", True, "A bond NAME of [link] ports, or of [ipoib] interfaces in active-backup mode.", (
        Key("slaves", Names(), "The links to bond: [link] or [ipoib] sections, not both kinds, each in one bond."),
        Key("mode", Enum(BOND_MODES, {str(n): m for m, n in BOND_MODES.items()}, "a bonding mode"),
            "The bonding mode, by name or number; a new bond without it gets the kernel's, balance-rr."),
        Key("miimon", _MS, "The MII link monitor's interval in ms (the HOWTO sets 100); "
            "0 turns it off."),
        Key("updelay", _MS, "How long in ms a slave's link must be up before the bond uses it; "
            "a multiple of miimon."),
        Key("downdelay", _MS, "How long in ms a slave's link must be down before the bond "
            "drops it; a multiple of miimon."),
        Key("use_carrier", Bool(), "Whether the MII monitor reads the driver's carrier state (yes) or asks the "
            "driver through MII or ethtool ioctls (no)."),
        Key("arp_interval", _MS, "The ARP link monitor's interval in ms, instead of miimon "
            "(set miimon = 0): sees a link that has carrier but carries nothing."),
        Key("arp_ip_target", ArpTargets(), "The addresses the ARP monitor probes (the peer's); needs arp_interval, "
            "and works in balance-rr, active-backup, balance-xor and broadcast modes."),
        Key("xmit_hash_policy", Enum(XMIT_HASH_POLICIES, noun="a transmit hash policy"),
            "What picks a packet's slave: layer2 the MACs (one peer, one slave), layer3+4 also the IP "
            "addresses and ports (the flows to one peer spread over the slaves); the switch hashes its own side.",
            modes=("balance-xor", "802.3ad", "balance-tlb")),
        Key("lacp_rate", Enum(LACP_RATES, noun="an LACP rate"), "How often the switch is asked to send "
            "LACPDUs: slow every 30 s, fast every second (a dead port is seen in 3 s instead of 90 s).",
            modes=("802.3ad",)),
        Key("ad_select", Enum(AD_SELECTS, noun="an aggregator selection policy"), "Which aggregator is "
            "active when the ports reach several: stable, bandwidth (the most), count (the most ports).",
            modes=("802.3ad",)),
        Key("min_links", Int(0, 2**31 - 1), "How many ports must be up for the bond to have carrier; "
            "at most the number of slaves.", modes=("802.3ad",)),
        Key("primary", Name(), "The slave used whenever it is up; one of slaves.",
            modes=("active-backup", "balance-tlb", "balance-alb")),
        Key("mtu", _MTU, "The bond's MTU, which the kernel gives its slaves."),
        *_ADDRESS_KEYS,
        _ROUTES,
    )),
    Section("vlan", True, "An 802.1Q VLAN interface NAME on a [link] or [bond] (bond0.30 is the usual name).", (
        Key("link", Name(), "The [link] or [bond] the VLAN is on (not a bond's slave: put it on the bond)."),
        Key("id", Int(1, 4094), "The VLAN ID; with link, fixed once created (ib40 refuses to change either)."),
        Key("mtu", _MTU, "The MTU; at most its link's."),
        *_ADDRESS_KEYS,
        _ROUTES,
    )),
    Section("partition", True, "An InfiniBand partition that ib40's own opensm instances serve, written to the "
            "partitions file they are started with; NAME is its name there. The default partition (0x7fff) is "
            "written by ib40, with mtu 4096 when an IPoIB interface asks for a datagram MTU above 2044.", (
        Key("pkey", PKey(), "The partition key, 0x0001-0x7ffe (P_Key children of [ipoib] use it with the "
            "full-membership bit, 0x8001)."),
        Key("ipoib", Bool(), "Whether opensm creates the partition's IPoIB broadcast group (needed by any "
            "[ipoib] interface on it).", default="yes"),
        Key("mtu", Enum(IB_MTUS), "The partition's IB MTU for IPoIB (opensm's mtu=4 or mtu=5): an IPoIB "
            "datagram MTU above 2044 needs 4096. Without it, opensm's default, 2048."),
        Key("rate", Enum(IB_RATES, noun="an InfiniBand rate in Gb/s"), "The rate of the IPoIB group in "
            "Gb/s (opensm's rate=); without it, opensm's default, 10. Every member must reach it."),
        Key("members", Members(), "Who is in it and how (opensm's PortGUIDs list).", default="ALL=full"),
    )),
    Section("opensm", False, "The InfiniBand subnet manager: ib40's opensm, one per InfiniBand port.", (
        Key("start", Enum(OPENSM_START), "Where ib40 starts opensm: auto, on an InfiniBand port that is linked and "
            "sees no subnet manager; always, on every InfiniBand port; never, nowhere (it stops its own).",
            default="auto"),
        Key("priority", Int(0, 15), "opensm's SM priority (0 when unset): of several subnet managers, the highest "
            "becomes master, then the lowest port GUID."),
    )),
    Section("sysctl", False, "The HOWTO's TCP/IP tuning (its 60-infiniband.conf), shipped as "
            "/usr/lib/sysctl.d/60-ib40.conf.", (
        Key("tuning", Bool(), "Whether the tuning applies; no masks the file with "
            "/etc/sysctl.d/60-ib40.conf -> /dev/null.", default="yes"),
    )),
)}


def default(section: str, key: str):
    """KEY's value in SECTION when the file does not set it."""
    return SECTIONS[section].key(key).default_value()


# ------------------------------------------------------------------ documents


def readme_table() -> str:
    """The README's table of sections and keys, in markdown."""
    rows = ["| section | keys |", "|---|---|"]
    for s in SECTIONS.values():
        keys = ", ".join(f"`{k.name}`{k.type.hint()}" + (f" (default `{k.default}`)" if k.default else "")
                         for k in s.keys)
        rows.append(f"| `{s.header}` | {keys} |")
    return "\n".join(rows) + "\n"


def replace_readme_table(readme: str) -> str:
    """README with its key table (the lines from "| section | keys |" to
    the next line that is not a table row) replaced by readme_table()."""
    lines = readme.splitlines(keepends=True)
    start = lines.index("| section | keys |\n")
    end = start
    while end < len(lines) and lines[end].startswith("|"):
        end += 1
    return "".join(lines[:start]) + readme_table() + "".join(lines[end:])


def _roff(text: str) -> str:
    """TEXT as man(7) source: backslashes and hyphens escaped, and no line
    starting with a control character."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    return "\n".join("\\&" + line if line.startswith((".", "'")) else line for line in text.split("\n"))


_MAN_DESCRIPTION = [
    """ib40d(8) reads /etc/ib40.conf, then its drop-ins /etc/ib40.conf.d/*.conf in the byte order of their
names. A drop-in may re-open a section of an earlier file; its keys override. Hidden drop-ins (.x.conf) are
not read.""",
    """A line is a section header, [TYPE] or [TYPE NAME], or a key = value line in the section above it. Each
section and each key is written once per file. Comments start with # or ; at the start of a line, or after
a value following a space. The files are read as UTF-8 whatever the locale (a leading byte order mark is
skipped); only a newline ends a line. Only regular files up to 1 MiB are read.""",
    """NAME is an interface name: letters, digits, _, . and -, at most 15 characters, and not lo, all or
default; one section configures it. ib40 touches no link that the file does not name, and leaves a setting
the file does not give as it is, unless a default is given below.""",
    """ib40d check reports every problem of the files at once, one a line, as FILE:LINE: [section] key: message,
and exits 2; ib40d plan, apply and sync change nothing while the configuration is invalid.""",
]

_MAN_EXAMPLE = """[link eth40a]
mac = 00:02:c9:3e:ca:b1
txqueuelen = 10000

[link eth40b]
mac = 00:02:c9:3e:ca:b0
txqueuelen = 10000

[bond bond0]
slaves = eth40a eth40b
mode = balance-rr
miimon = 100
updelay = 200
downdelay = 200
address = 10.30.0.2/16"""


def man_page(version: str) -> str:
    """ib40.conf(5), in man(7) source."""
    out = [
        '.\\" SPDX-License-Identifier: GPL-2.0-or-later',
        '.\\" Generated from ib40d/core/schema.py by `python3 -m ib40d.commands.schema_docs --man`; edit that, not this file.',
        f'.TH IB40.CONF 5 "" "ib40 {_roff(version)}" "File Formats"',
        ".nh",  # no hyphenation, no justification: key names and paths stay whole
        ".ad l",
        ".SH NAME",
        "ib40.conf \\- configuration of ib40d: ConnectX\\-3 VPI ports, bond, IPoIB",
        ".SH SYNOPSIS",
        ".I /etc/ib40.conf",
        ".br",
        ".I /etc/ib40.conf.d/*.conf",
        ".SH DESCRIPTION",
    ]
    for i, paragraph in enumerate(_MAN_DESCRIPTION):
        out += ([".PP"] if i else []) + [_roff(paragraph)]
    out.append(".SH SECTIONS AND KEYS")
    for s in SECTIONS.values():
        out += [f".SS {_roff(s.header)}", _roff(s.doc)]
        for k in s.keys:
            out += [".TP", f"\\fB{_roff(k.name)}\\fR = \\fI{_roff(k.type.syntax())}\\fR", _roff(k.doc + k.modes_doc())]
            if k.default is not None:
                out += [".br", f"Default: {_roff(k.default)}."]
    out += [".SH EXAMPLE", "Both ports of the card bonded, as in the HOWTO:", ".PP", ".RS", ".nf",
            _roff(_MAN_EXAMPLE), ".fi", ".RE", ".PP", "More in /usr/share/doc/ib40/examples/.",
            ".SH FILES", ".TP", ".I /etc/ib40.conf", "The configuration.",
            ".TP", ".I /etc/ib40.conf.d/*.conf", "Drop\\-ins, read after it in name order.",
            ".SH SEE ALSO", ".BR ib40d (8),", ".BR sysctl.d (5),", ".BR opensm (8)"]
    return "\n".join(out) + "\n"
