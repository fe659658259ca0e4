# SPDX-License-Identifier: GPL-2.0-or-later
"""Interface addresses for `status`, without importing pyroute2.

The cheapest sound source is one RTM_GETADDR dump (rtnl.py): one request,
about a millisecond, exactly what the kernel has (procfs has no per-interface
IPv4 list with prefixes). On a captured tree (--root other than /) the
bundle's `run/ib40/ip-address.json` (the output of `ip -j address`) is read.
"""

from __future__ import annotations

import ipaddress
import json

from ib40d.system import rtnl
from ib40d.core.model import AddrObs
from ib40d.system.sysroot import SysRoot

BUNDLE_FILE = "/run/ib40/ip-address.json"


def read_addresses(root: SysRoot) -> dict[str, list[AddrObs]]:
    """{ifname: [AddrObs]}, IPv6 link-local included (status shows all)."""
    result: dict[str, list[AddrObs]] = {}
    if not root.is_live:
        text = root.read(BUNDLE_FILE)
        for link in json.loads(text) if text else []:
            for a in link.get("addr_info", []):
                # `ip` prints "dynamic" for an address without IFA_F_PERMANENT
                result.setdefault(link["ifname"], []).append(
                    AddrObs(f"{a['local']}/{a['prefixlen']}", a.get("broadcast"), not a.get("dynamic", False)))
        return result
    names = {}
    for name in root.listdir("/sys/class/net"):
        idx = root.read_int(f"/sys/class/net/{name}/ifindex")
        if idx is not None:
            names[idx] = name
    for index, cidr, bcast, permanent in rtnl.dump_addresses():
        if index in names:
            result.setdefault(names[index], []).append(AddrObs(str(ipaddress.ip_interface(cidr)), bcast, permanent))
    return result


def addresses_by_name(root: SysRoot) -> dict[str, list[dict]]:
    """{ifname: [{"cidr", "broadcast"}]}: read_addresses as status prints them."""
    return {name: [{"cidr": a.cidr, "broadcast": a.broadcast} for a in addrs]
            for name, addrs in read_addresses(root).items()}


def read_routes(root: SysRoot) -> dict[str, list] | None:
    """{ifname: [RouteObs]} of the main table from one RTM_GETROUTE dump;
    on a bundle, as it recorded them; None on another tree: not compared."""
    if not root.is_live:
        from ib40d.system.bundle import recorded_routes

        return recorded_routes(root)
    from ib40d.system.netlink import dump_routes

    names = {root.read_int(f"/sys/class/net/{name}/ifindex"): name for name in root.listdir("/sys/class/net")}
    result: dict[str, list] = {name: [] for name in names.values()}
    for index, route in dump_routes():
        if index in names:
            result[names[index]].append(route)
    return result
