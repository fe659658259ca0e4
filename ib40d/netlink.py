# SPDX-License-Identifier: GPL-2.0-or-later
"""The few rtnetlink writes ib40 makes, through pyroute2's IPRoute.

Reads come from rtnl.py (stdlib dumps) so that a run with nothing to change
never imports pyroute2 (~0.25 s, 35 MB); IPRoute is created on the first
write. Only API present in Debian bookworm's python3-pyroute2 (0.7.2) is
used. Every write goes through `_write()`, which counts it: a second apply on
a converged machine must send none, and tests check the count.
The recording fake in tests/fakenl.py has the same methods.
"""

from __future__ import annotations

from ib40d import rtnl
from ib40d.config import BOND_MODES
from ib40d.netlink_errors import NetlinkRefused
from ib40d.observe import AddrObs, BondObs, LinkObs

_MODE_BY_NUMBER = {n: m for m, n in BOND_MODES.items()}


class Netlink:
    def __init__(self):
        self._ipr = None
        self.writes = 0

    @property
    def ipr(self):
        if self._ipr is None:
            from pyroute2 import IPRoute

            self._ipr = IPRoute()
        return self._ipr

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()

    # ----------------------------------------------------------------- reads

    def dump_links(self) -> list[LinkObs]:
        raw = rtnl.dump_links()
        names = {l["index"]: l["name"] for l in raw}
        links = {l["index"]: _link_obs(l, names) for l in raw}
        for index, cidr, bcast, permanent in rtnl.dump_addresses():
            if index in links:
                links[index].addresses.append(AddrObs(cidr, bcast, permanent))
        return list(links.values())

    def link_name(self, index: int) -> str | None:
        """The name the link with this ifindex has now; None when it is gone."""
        raw = rtnl.get_link(index)
        return raw["name"] if raw else None

    # ---------------------------------------------------------------- writes

    def _write(self, what: str, fn, *args, **kwargs):
        from pyroute2.netlink.exceptions import NetlinkError

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


def _link_obs(raw: dict, names: dict[int, str]) -> LinkObs:
    bond = None
    if raw["bond"] is not None:
        b = raw["bond"]
        bond = BondObs(
            mode=_MODE_BY_NUMBER.get(b["mode"]),
            miimon=b["miimon"],
            updelay=b["updelay"],
            downdelay=b["downdelay"],
            use_carrier=None if b["use_carrier"] is None else bool(b["use_carrier"]),
            arp_interval=b["arp_interval"],
            arp_ip_target=b["arp_ip_target"],
        )
    return LinkObs(
        name=raw["name"],
        index=raw["index"],
        kind=raw["kind"],
        arptype=raw["type"],
        mac=raw["mac"],
        perm_mac=raw["perm_mac"],
        mtu=raw["mtu"],
        txqueuelen=raw["txqueuelen"],
        admin_up=bool(raw["flags"] & rtnl.IFF_UP),
        carrier=None if raw["carrier"] is None else bool(raw["carrier"]),
        operstate=raw["operstate"],
        master=names.get(raw["master"]) if raw["master"] else None,
        bond=bond,
    )
