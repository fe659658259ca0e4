# SPDX-License-Identifier: GPL-2.0-or-later
"""What the machine has now, as plain data: the planner's other input.

`observe()` asks a netlink adapter (netlink.Netlink for real, a recording
fake in tests) for links and addresses, and sysfs for what netlink does not
carry on every kernel (IPoIB mode). Nothing here writes.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from ib40d.sysroot import SysRoot


@dataclass
class BondObs:
    mode: str | None = None
    miimon: int | None = None
    updelay: int | None = None
    downdelay: int | None = None
    use_carrier: bool | None = None
    arp_interval: int | None = None
    arp_ip_target: tuple[str, ...] = ()


@dataclass
class AddrObs:
    cidr: str  # "10.30.0.2/16"
    broadcast: str | None = None
    permanent: bool = True  # False: has a lifetime (SLAAC, privacy, DHCP): not ours to manage

    @property
    def is_link_local_v6(self) -> bool:
        iface = ipaddress.ip_interface(self.cidr)
        return iface.version == 6 and iface.ip.is_link_local


@dataclass
class LinkObs:
    name: str
    index: int
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
    addresses: list[AddrObs] = field(default_factory=list)
    bond: BondObs | None = None
    ipoib_mode: str | None = None


@dataclass
class Observed:
    links: dict[str, LinkObs]

    def get(self, name: str) -> LinkObs | None:
        return self.links.get(name)

    def slaves_of(self, master: str) -> list[str]:
        return sorted(n for n, l in self.links.items() if l.master == master)


def observe(nl, root: SysRoot) -> Observed:
    links = {l.name: l for l in nl.dump_links()}
    for link in links.values():
        mode = root.read(f"/sys/class/net/{link.name}/mode")
        if link.kind == "ipoib" or (mode in ("connected", "datagram")):
            link.ipoib_mode = mode
    return Observed(links)
