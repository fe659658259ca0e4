# SPDX-License-Identifier: GPL-2.0-or-later
"""The machine as plain data: links, bonds, addresses, IPoIB, cards, IB ports.

One model whoever reads it: observe.observe() fills it from rtnetlink (plan,
apply, the daemon), observe.observe_sysfs() from sysfs and a support bundle's
files (status, doctor), observe.find_cards() adds the cards. diff.py compares
it with the config. Pure: nothing here reads or writes.
"""

from __future__ import annotations

import ipaddress

from ib40d.core.records import dataclass, field, make_dataclass

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from typing import Any, Callable

    from ib40d.core.ibports import IBPort
    from ib40d.core.pcie import PcieLink


# Records (ib40d.core.records, dataclasses without their import cost); those
# never compared are eq=False: an __eq__ less to make at every start.

# ---------------------------------------------------------------- bonds


def _first_word(text: str) -> str:
    return text.split()[0]  # sysfs bonding/mode: "balance-rr 0"


def _flag(text: str) -> bool:
    return text == "1"


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _name(text: str) -> str | None:
    return text or None  # bonding/primary is empty without one


@dataclass(eq=False)
class BondOption:
    """One bond setting. NAME is at once the [bond] key, the BondObs field,
    the file in /sys/class/net/<bond>/bonding and pyroute2's bond_<name>.
    Adding an option: a row here, its rtnetlink attribute (rtnl.parse_link,
    netlink._link_obs, and netlink._bond_kwargs unless it is an integer)
    and the config key; diff, plan, status and doctor then compare, set and
    show it."""
    name: str
    sysfs: Callable[[str], Any]  # the sysfs file's text -> value
    # /proc/net/bonding shows it too (bonding.parse_proc_bonding's key of the
    # same name): what a support bundle without the sysfs files falls back to
    in_proc: bool = False
    # Kernels from 6.x on deprecate it (use_carrier): compared only when the
    # kernel shows a value, set in a request of its own (apply's
    # "bond.<name>"), and a refusal is only a warning.
    best_effort: bool = False
    # Names a slave (primary): set in a request of its own once that slave
    # is present (netlink carries its ifindex), after the enslaving.
    names_slave: bool = False
    # The kernel changes it only while the bond is down (BOND_OPTFLAG_IFDOWN:
    # EBUSY otherwise)
    needs_down: bool = False


BOND_OPTIONS = (
    BondOption("mode", _first_word, in_proc=True),
    BondOption("miimon", int, in_proc=True),
    BondOption("updelay", int, in_proc=True),
    BondOption("downdelay", int, in_proc=True),
    BondOption("use_carrier", _flag, best_effort=True),
    BondOption("arp_interval", int, in_proc=True),
    BondOption("arp_ip_target", _words),
    BondOption("xmit_hash_policy", _first_word, in_proc=True),  # "layer3+4 1"
    BondOption("lacp_rate", _first_word, in_proc=True, needs_down=True),
    BondOption("ad_select", _first_word, in_proc=True, needs_down=True),
    BondOption("min_links", int, in_proc=True),
    BondOption("primary", _name, in_proc=True, names_slave=True),
)


# A bond's settings as the kernel shows them, one field per row (None: not
# shown). Made from the table so that an option is declared once here.
BondObs = make_dataclass("BondObs", [(o.name, object, field(default=None)) for o in BOND_OPTIONS],
                         namespace={"__doc__": "A bond's settings, one field per row of BOND_OPTIONS."})


# ---------------------------------------------------------------- links


@dataclass
class AddrObs:
    """An address on a link."""
    cidr: str  # "10.30.0.2/16"
    broadcast: str | None = None
    permanent: bool = True  # False: has a lifetime (SLAAC, privacy, DHCP): not ours to manage

    @property
    def is_link_local_v6(self) -> bool:
        iface = ipaddress.ip_interface(self.cidr)
        return iface.version == 6 and iface.ip.is_link_local


# Routes ib40 manages on a link whose section has `routes`: main table,
# unicast, added by hand (`ip route add`: boot) or by a configurator
# (static, which ib40 writes). The kernel's own (from addresses), DHCP's,
# RA's and routing daemons' are someone else's.
RTPROT_BOOT, RTPROT_STATIC = 3, 4
MANAGED_ROUTE_PROTOCOLS = (RTPROT_BOOT, RTPROT_STATIC)


@dataclass
class RouteObs:
    """A main-table unicast route out of a link."""
    dest: str  # a network, "10.0.2.0/30"; the default route "0.0.0.0/0"
    gateway: str | None = None
    metric: int = 0  # RTA_PRIORITY (the kernel omits 0 for IPv4; IPv6 routes default to 1024)
    protocol: int = RTPROT_STATIC

    @property
    def managed(self) -> bool:
        return self.protocol in MANAGED_ROUTE_PROTOCOLS


@dataclass
class VfObs:
    """A virtual function of a PF netdev, from IFLA_VFINFO_LIST. The GUIDs
    are None where the kernel does not show them (before Linux 5.5, or a
    driver without ndo_get_vf_guid, as mlx4): then nobody can tell whether
    they are set."""
    vf: int
    node_guid: str | None = None  # "02:02:c9:40:03:a4:e7:21"
    port_guid: str | None = None


@dataclass
class LinkObs:
    """A link as the kernel shows it (None: not shown)."""
    name: str
    index: int  # 0 when not known (a support bundle)
    kind: str | None = None  # IFLA_INFO_KIND: "bond", "veth", "ipoib"... None for plain NICs
    arptype: int | None = None  # ifi_type, ARPHRD_*: 1 Ethernet, 32 InfiniBand
    mac: str | None = None
    perm_mac: str | None = None  # the port's own MAC (a bond rewrites `mac` of balance-rr slaves)
    mtu: int | None = None
    txqueuelen: int | None = None
    admin_up: bool = False
    carrier: bool | None = None
    operstate: str | None = None
    master: str | None = None  # name of the master link
    # None: not read (doctor does not look at addresses), so not compared
    addresses: list[AddrObs] | None = field(default_factory=list)
    # None: not read (a support bundle has no route dump), so not compared
    routes: list[RouteObs] | None = None
    bond: BondObs | None = None
    vlan_id: int | None = None  # a VLAN's ID
    pkey: int | None = None  # an IPoIB interface's P_Key (IFLA_IPOIB_PKEY)
    parent: str | None = None  # the link a VLAN or an IPoIB P_Key child is on (IFLA_LINK)
    ipoib_mode: str | None = None
    speed_mbps: int | None = None  # sysfs only; None without link
    vfs: list[VfObs] | None = None  # a PF's virtual functions; None: not read (sysfs, bundles)
    vf_driver: str | None = None  # the PCI driver of a PF with VFs ("mlx4_core"), read only for those


# ---------------------------------------------------------------- cards

MELLANOX_VENDOR = 0x15B3
CARD_PORTS = (1, 2)  # a ConnectX VPI card's ports
# mlx4_core's options as ib40 writes them (port types, VFs): read by the
# planner of each, so it lives with neither.
MODPROBE_CONF = "/etc/modprobe.d/ib40-mlx4.conf"
# PCI device ids of Mellanox physical functions (pci.ids), for naming cards.
CONNECTX_MODELS = {
    0x673C: "ConnectX-2", 0x6750: "ConnectX-2 EN", 0x1003: "ConnectX-3", 0x1007: "ConnectX-3 Pro",
    0x1013: "ConnectX-4", 0x1015: "ConnectX-4 Lx", 0x1017: "ConnectX-5", 0x1019: "ConnectX-5 Ex",
    0x101B: "ConnectX-6", 0x101D: "ConnectX-6 Dx", 0x101F: "ConnectX-6 Lx", 0x1021: "ConnectX-7",
}
# The cards ib40 is written for: doctor names other devices by their PCI id.
WRITTEN_FOR = (0x1003, 0x1007)
# ConnectX-3 VPI ports are 40 Gb/s Ethernet or up to 56 Gb/s FDR; with no
# active port to read a rate from, compare the PCIe link against 40.
DEFAULT_PORT_GBIT_S = 40.0


def is_card_class(pci_class: int | None) -> bool:
    """Whether a Mellanox function of this PCI class is a card's port
    function: any network controller (0x02xxxx: Ethernet 0x0200, InfiniBand
    0x0207, other 0x0280, what a VPI card shows depends on its firmware's
    port types) or an InfiniBand controller on the serial bus (0x0c06xx, how
    InfiniHost and some ConnectX firmware report IB). Not the bridges, DMA
    and management functions of BlueField and newer ConnectX. A tree
    without the class file (old bundles) keeps the device."""
    return pci_class is None or pci_class >> 16 == 0x02 or pci_class >> 8 == 0x0C06


@dataclass(eq=False)
class Card:
    """A Mellanox card's PCI function (observe.find_cards)."""
    pci: str  # "0000:05:00.0"
    device_id: int | None = None
    mlx4_ports: tuple[int, ...] = ()  # ports with a mlx4_portN attribute (switchable now)
    numa_node: int | None = None
    pcie: PcieLink | None = None
    netdevs: list[str] = field(default_factory=list)
    ib_devices: list[str] = field(default_factory=list)
    cpulist: str | None = None
    # Rates (Gbit/s) of ports that are up: IB rate or netdev speed (doctor).
    active_port_rates: list[float] = field(default_factory=list)

    @property
    def generic_name(self) -> str:
        return f"Mellanox device {self.device_id:#06x}" if self.device_id is not None else "Mellanox device"

    @property
    def model(self) -> str:
        return CONNECTX_MODELS.get(self.device_id, self.generic_name)

    @property
    def name(self) -> str:
        """As doctor names it: the model for the cards ib40 is written for."""
        return self.model if self.device_id in WRITTEN_FOR else self.generic_name

    def describe(self) -> str:
        return f"{self.pci} ({self.model})"

    @property
    def port_gbit_s(self) -> float:
        """The fastest single port: what one stream of traffic can ask of PCIe."""
        return max(self.active_port_rates, default=DEFAULT_PORT_GBIT_S)

    @property
    def limit_gbit_s(self) -> float | None:
        """The lesser of the PCIe link and the port (per machine; the link as a
        whole is limited by the lesser of both machines)."""
        bw = self.pcie.bandwidth_gbit_s if self.pcie else None
        return self.port_gbit_s if bw is None else min(bw, self.port_gbit_s)

    def as_dict(self) -> dict:
        from ib40d.core.pcie import PcieLink

        return {
            "pci": self.pci,
            "name": self.name,
            "device_id": None if self.device_id is None else f"{self.device_id:#06x}",
            "numa_node": self.numa_node,
            "cpulist": self.cpulist,
            # the same keys when the link is unknown, all null
            "pcie": (self.pcie or PcieLink(None, None, source=None)).as_dict(),
            "netdevs": self.netdevs,
            "ib_devices": self.ib_devices,
            "port_gbit_s": self.port_gbit_s,
            "limit_gbit_s": None if self.limit_gbit_s is None else round(self.limit_gbit_s, 2),
        }


# ---------------------------------------------------------------- the machine


@dataclass(eq=False)
class Machine:
    """What a reader saw. Readers fill what they look at: plan and apply
    the links; status and doctor also /proc/net/bonding; doctor the cards,
    IB ports, sysctl values and NUMA nodes."""
    links: dict[str, LinkObs] = field(default_factory=dict)
    # /proc/net/bonding/<bond> parsed (MII status, slaves, link failures);
    # None: the bond has no such file
    bonding: dict[str, dict | None] = field(default_factory=dict)
    cards: list[Card] = field(default_factory=list)
    ib_ports: list[IBPort] = field(default_factory=list)
    sysctl: dict[str, str | None] = field(default_factory=dict)  # key -> current value
    numa_nodes: int = 0
    # the IPoIB P_Key children ib40 created (apply_engine's record in /run):
    # the only ones it removes when they leave the config
    created_children: set[str] = field(default_factory=set)

    def get(self, name: str) -> LinkObs | None:
        return self.links.get(name)

    def slaves_of(self, master: str) -> list[str]:
        return sorted(n for n, l in self.links.items() if l.master == master)
