# SPDX-License-Identifier: GPL-2.0-or-later
"""The few rtnetlink calls ib40 makes, through pyroute2's IPRoute.

Only API present in Debian bookworm's python3-pyroute2 (0.7.2) is used.
Every write goes through `_write()`, which counts it: a second apply on a
converged machine must send none, and tests check the count.
Reads return observe.LinkObs so that the planner never sees pyroute2 types.
The recording fake in tests/fakenl.py has the same methods.
"""

from __future__ import annotations

import socket

from pyroute2 import IPRoute
from pyroute2.netlink.exceptions import NetlinkError

from ib40d.config import BOND_MODES
from ib40d.netlink_errors import NetlinkRefused
from ib40d.observe import AddrObs, BondObs, LinkObs

_MODE_BY_NUMBER = {n: m for m, n in BOND_MODES.items()}
IFF_UP = 0x1


class Netlink:
    def __init__(self):
        self.ipr = IPRoute()
        self.writes = 0

    def close(self) -> None:
        self.ipr.close()

    # ----------------------------------------------------------------- reads

    def dump_links(self) -> list[LinkObs]:
        msgs = self.ipr.get_links()
        names = {m["index"]: m.get_attr("IFLA_IFNAME") for m in msgs}
        links = {}
        for m in msgs:
            link = _link_from_msg(m, names)
            links[link.index] = link
        for a in self.ipr.get_addr():
            link = links.get(a["index"])
            if link is None:
                continue
            addr = a.get_attr("IFA_ADDRESS")
            if a["family"] == socket.AF_INET:
                addr = a.get_attr("IFA_LOCAL") or addr
            link.addresses.append(AddrObs(f"{addr}/{a['prefixlen']}", a.get_attr("IFA_BROADCAST")))
        return list(links.values())

    # ---------------------------------------------------------------- writes

    def _write(self, what: str, fn, *args, **kwargs):
        self.writes += 1
        try:
            return fn(*args, **kwargs)
        except NetlinkError as e:
            raise NetlinkRefused(e.code, what) from None

    def create_bond(self, name: str, options: dict) -> None:
        self._write(f"create bond {name}", self.ipr.link, "add", ifname=name, kind="bond", **_bond_kwargs(options))

    def set_bond(self, index: int, name: str, options: dict) -> None:
        what = f"set {', '.join(f'{k} {v}' for k, v in options.items())} on {name}"
        self._write(what, self.ipr.link, "set", index=index, kind="bond", **_bond_kwargs(options))

    def set_state(self, index: int, name: str, up: bool) -> None:
        self._write(f"set {name} {'up' if up else 'down'}", self.ipr.link, "set", index=index,
                    state="up" if up else "down")

    def set_mtu(self, index: int, name: str, mtu: int) -> None:
        self._write(f"set mtu {mtu} on {name}", self.ipr.link, "set", index=index, mtu=mtu)

    def set_txqueuelen(self, index: int, name: str, qlen: int) -> None:
        self._write(f"set txqueuelen {qlen} on {name}", self.ipr.link, "set", index=index, txqlen=qlen)

    def set_master(self, index: int, name: str, master_index: int, master_name: str | None) -> None:
        what = f"enslave {name} to {master_name}" if master_index else f"release {name} from its master"
        self._write(what, self.ipr.link, "set", index=index, master=master_index)

    def add_address(self, index: int, name: str, cidr: str, broadcast: str | None) -> None:
        ip, prefixlen = cidr.split("/")
        kwargs = {"broadcast": broadcast} if broadcast else {}
        self._write(f"add address {cidr} to {name}", self.ipr.addr, "add", index=index,
                    address=ip, prefixlen=int(prefixlen), **kwargs)

    def del_address(self, index: int, name: str, cidr: str) -> None:
        ip, prefixlen = cidr.split("/")
        self._write(f"remove address {cidr} from {name}", self.ipr.addr, "del", index=index,
                    address=ip, prefixlen=int(prefixlen))


def _bond_kwargs(options: dict) -> dict:
    kwargs = {}
    for key, value in options.items():
        if key == "mode":
            value = BOND_MODES[value]
        elif key == "use_carrier":
            value = int(value)
        elif key == "arp_ip_target":
            value = list(value)
        kwargs[f"bond_{key}"] = value
    return kwargs


def _link_from_msg(m, names: dict[int, str]) -> LinkObs:
    kind = None
    bond = None
    info = m.get_attr("IFLA_LINKINFO")
    if info is not None:
        kind = info.get_attr("IFLA_INFO_KIND")
        data = info.get_attr("IFLA_INFO_DATA")
        if kind == "bond" and data is not None:
            mode = data.get_attr("IFLA_BOND_MODE")
            carrier = data.get_attr("IFLA_BOND_USE_CARRIER")
            targets = data.get_attr("IFLA_BOND_ARP_IP_TARGET")
            bond = BondObs(
                mode=_MODE_BY_NUMBER.get(mode),
                miimon=data.get_attr("IFLA_BOND_MIIMON"),
                updelay=data.get_attr("IFLA_BOND_UPDELAY"),
                downdelay=data.get_attr("IFLA_BOND_DOWNDELAY"),
                use_carrier=None if carrier is None else bool(carrier),
                arp_interval=data.get_attr("IFLA_BOND_ARP_INTERVAL"),
                arp_ip_target=tuple(targets) if isinstance(targets, (list, tuple)) else ((targets,) if targets else ()),
            )
    master = m.get_attr("IFLA_MASTER")
    carrier = m.get_attr("IFLA_CARRIER")
    return LinkObs(
        name=m.get_attr("IFLA_IFNAME"),
        index=m["index"],
        kind=kind,
        mac=m.get_attr("IFLA_ADDRESS"),
        mtu=m.get_attr("IFLA_MTU"),
        txqueuelen=m.get_attr("IFLA_TXQLEN"),
        admin_up=bool(m["flags"] & IFF_UP),
        carrier=None if carrier is None else bool(carrier),
        operstate=(m.get_attr("IFLA_OPERSTATE") or "").lower() or None,
        master=names.get(master) if master else None,
        bond=bond,
    )
