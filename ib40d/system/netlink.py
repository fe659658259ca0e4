# SPDX-License-Identifier: GPL-2.0-or-later
"""rtnetlink for ib40: `Netlink` reads with the standard library and writes
through pyroute2; `LinkMonitor` is the daemon's link events.

Why two libraries behind one adapter: most runs of ib40 only look —
`status`, `plan`, an `apply` or a unit start on a machine that is already
converged — and importing pyroute2 costs ~0.25 s and 35 MB (seconds in the
lab's emulated guests). Two dump requests over a raw NETLINK_ROUTE socket
give the same kernel view in about a millisecond, so pyroute2's IPRoute is
created on the first write. Only API present in Debian bookworm's
python3-pyroute2 (0.7.2) is used. Both sides use the numbers in
rtnl_constants.py; tests/kernel/test_netlink_contract_netns.py shows that
our dump and pyroute2's read a network namespace alike, and
tests/unit/test_netlink_contract.py that the bond options a write encodes
read back as they were set.

Every write goes through `Netlink._write()`, which counts it: a second apply
on a converged machine must send none, and tests check the count. The
recording fake in tests/fakenl.py has the same methods.
"""

from __future__ import annotations

import errno
import os
import socket
import struct

from ib40d.core.schema import AD_SELECTS, BOND_MODES, LACP_RATES, XMIT_HASH_POLICIES
from ib40d.core.netlink_errors import NetlinkRefused
from ib40d.system.observe import AddrObs, BondObs, LinkObs
from ib40d.core.model import RouteObs, VfObs
from ib40d.core.rtnl_constants import IFLA_EXT_MASK, IFLA_NUM_VF, IFLA_VF_IB_NODE_GUID, IFLA_VF_IB_PORT_GUID, IFLA_VF_INFO, IFLA_VF_MAC, IFLA_VFINFO_LIST, RTEXT_FILTER_VF
from ib40d.core.rtnl_constants import IFA_ADDRESS, IFA_BROADCAST, IFA_F_PERMANENT, IFA_FLAGS, IFA_LOCAL, IFF_UP, IFLA_ADDRESS, IFLA_BOND_ARP_INTERVAL, IFLA_BOND_ARP_IP_TARGET, IFLA_BOND_DOWNDELAY, IFLA_BOND_MIIMON, IFLA_BOND_MODE, IFLA_BOND_UPDELAY, IFLA_BOND_USE_CARRIER, IFLA_BOND_XMIT_HASH_POLICY, IFLA_BOND_AD_LACP_RATE, IFLA_BOND_AD_SELECT, IFLA_BOND_MIN_LINKS, IFLA_BOND_PRIMARY, IFLA_CARRIER, IFLA_IFNAME, IFLA_LINK, IFLA_VLAN_ID, IFLA_IPOIB_PKEY, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU, IFLA_OPERSTATE, IFLA_PERM_ADDRESS, IFLA_TXQLEN, NETLINK_ROUTE, RTA_DST, RTA_GATEWAY, RTA_OIF, RTA_PRIORITY, RTA_TABLE, RTM_GETROUTE, RTM_NEWROUTE, RTN_UNICAST, RTPROT_STATIC, RT_TABLE_MAIN, NLA_TYPE_MASK, NLM_F_DUMP, NLM_F_DUMP_INTR, NLM_F_REQUEST, NLMSG_DONE, NLMSG_ERROR, OPERSTATES, RTM_DELLINK, RTM_GETADDR, RTM_GETLINK, RTM_NEWADDR, RTM_NEWLINK, RTMGRP_LINK

# The bond options ib40 sets: option -> (IFLA_BOND_* attribute, how the
# kernel carries it). Writes pass pyroute2 `bond_<option>`, reads decode the
# attribute; BondObs has a field of the same name.
BOND_ATTRS = {
    "mode": (IFLA_BOND_MODE, "u8"),
    "miimon": (IFLA_BOND_MIIMON, "u32"),
    "updelay": (IFLA_BOND_UPDELAY, "u32"),
    "downdelay": (IFLA_BOND_DOWNDELAY, "u32"),
    "use_carrier": (IFLA_BOND_USE_CARRIER, "u8"),
    "arp_interval": (IFLA_BOND_ARP_INTERVAL, "u32"),
    "arp_ip_target": (IFLA_BOND_ARP_IP_TARGET, "ipv4 list"),
    "xmit_hash_policy": (IFLA_BOND_XMIT_HASH_POLICY, "u8"),
    "lacp_rate": (IFLA_BOND_AD_LACP_RATE, "u8"),
    "ad_select": (IFLA_BOND_AD_SELECT, "u8"),
    "min_links": (IFLA_BOND_MIN_LINKS, "u32"),
    "primary": (IFLA_BOND_PRIMARY, "u32"),  # the slave's ifindex; absent until it is enslaved
}
# Where pyroute2's keyword is not bond_<option> (IFLA_BOND_AD_LACP_RATE).
PYROUTE2_BOND_NAMES = {"lacp_rate": "ad_lacp_rate"}
# Options the kernel carries as a number that names a choice (the schema's
# tuples are in the kernel's numbering).
_BOND_CHOICES = {"xmit_hash_policy": XMIT_HASH_POLICIES, "lacp_rate": LACP_RATES, "ad_select": AD_SELECTS}
_MODE_BY_NUMBER = {n: m for m, n in BOND_MODES.items()}

# ------------------------------------------------------------ wire format

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTMSG = struct.Struct("=BBBBBBBBI")
_RTATTR = struct.Struct("=HH")


def _align(n: int) -> int:
    return (n + 3) & ~3


def _attrs(data: bytes, start: int = 0, end: int | None = None) -> dict[int, bytes]:
    """Parse a run of netlink attributes -> {type: payload} (last one wins)."""
    end = len(data) if end is None else end
    out = {}
    pos = start
    while pos + _RTATTR.size <= end:
        alen, atype = _RTATTR.unpack_from(data, pos)
        if alen < _RTATTR.size or pos + alen > end:
            break
        out[atype & NLA_TYPE_MASK] = data[pos + _RTATTR.size:pos + alen]
        pos += _align(alen)
    return out


def _u32(raw: bytes | None) -> int | None:
    return struct.unpack("=I", raw[:4])[0] if raw and len(raw) >= 4 else None


def _u16(raw: bytes | None) -> int | None:
    return struct.unpack("=H", raw[:2])[0] if raw and len(raw) >= 2 else None


def _u8(raw: bytes | None) -> int | None:
    return raw[0] if raw else None


def _str(raw: bytes | None) -> str | None:
    # The kernel allows names that are not UTF-8: keep them, undecodable
    # bytes and all, rather than fail the whole dump over one link.
    return raw.split(b"\0", 1)[0].decode(errors="surrogateescape") if raw is not None else None


def _mac(raw: bytes | None) -> str | None:
    return ":".join(f"{b:02x}" for b in raw) if raw else None


def _ipv4_list(raw: bytes | None) -> tuple[str, ...]:
    """A nested list of IPv4 addresses (IFLA_BOND_ARP_IP_TARGET), in order."""
    items = sorted(_attrs(raw).items()) if raw else []
    return tuple(socket.inet_ntop(socket.AF_INET, v) for _, v in items if len(v) == 4)


_DECODE = {"u8": _u8, "u32": _u32, "ipv4 list": _ipv4_list}

_VF_GUID = struct.Struct("=I4xQ")  # struct ifla_vf_guid: the u64 in host order, as ipoib passes it


def _guid(raw: bytes | None) -> str | None:
    if raw is None or len(raw) < _VF_GUID.size:
        return None
    return ":".join(f"{b:02x}" for b in _VF_GUID.unpack_from(raw)[1].to_bytes(8, "big"))


def parse_vfs(raw: bytes | None, count: int | None) -> list[tuple[int, str | None, str | None]] | None:
    """IFLA_VFINFO_LIST -> [(vf, node GUID, port GUID)], the GUIDs None where
    the kernel did not put them (it does only through ndo_get_vf_guid). None
    when the link has no VFs (IFLA_NUM_VF absent or 0)."""
    if not count:
        return None
    out = []
    pos = 0
    while raw and pos + _RTATTR.size <= len(raw):
        alen, atype = _RTATTR.unpack_from(raw, pos)
        if alen < _RTATTR.size or pos + alen > len(raw):
            break
        if atype & NLA_TYPE_MASK == IFLA_VF_INFO:
            info = _attrs(raw, pos + _RTATTR.size, pos + alen)
            vf = _u32(info.get(IFLA_VF_MAC))
            if vf is not None:
                out.append((vf, _guid(info.get(IFLA_VF_IB_NODE_GUID)), _guid(info.get(IFLA_VF_IB_PORT_GUID))))
        pos += _align(alen)
    return out


class DumpInterrupted(Exception):
    """The kernel flagged the dump NLM_F_DUMP_INTR: links or addresses
    changed while it ran (boot and hotplug bursts), so it may miss or repeat
    entries."""


def _messages(data: bytes):
    """Yield (type, flags, body) for each netlink message; raise on NLMSG_ERROR."""
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, mtype, flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            return
        body = data[offset + _NLMSGHDR.size:offset + length]
        if mtype == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", body)
            if code:
                raise OSError(-code, os.strerror(-code))
        yield mtype, flags, body
        offset += _align(length)


def _socket() -> socket.socket:
    return socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)


def _dump_once(request_type: int, family_msg: bytes) -> list[tuple[int, bytes]]:
    with _socket() as s:
        s.bind((0, 0))
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(family_msg), request_type, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        s.send(header + family_msg)
        out = []
        interrupted = False
        while True:
            # a PF's link message with its VFs' IFLA_VFINFO_LIST nears 64 KiB
            for mtype, flags, body in _messages(s.recv(1 << 18)):
                interrupted |= bool(flags & NLM_F_DUMP_INTR)
                if mtype == NLMSG_DONE:
                    if interrupted:
                        raise DumpInterrupted()
                    return out
                out.append((mtype, body))


def _dump(request_type: int, family_msg: bytes, attempts: int = 5) -> list[tuple[int, bytes]]:
    """Send a dump request; return every (type, body) until NLMSG_DONE.
    An interrupted dump is taken again (a few times) rather than trusted."""
    for attempt in range(attempts):
        try:
            return _dump_once(request_type, family_msg)
        except DumpInterrupted:
            if attempt == attempts - 1:
                raise OSError(errno.EAGAIN, "the kernel's dump kept being interrupted by changes") from None
    raise AssertionError("unreachable")


def parse_link(body: bytes) -> dict:
    """One RTM_NEWLINK body -> plain dict (bond options under 'bond', as
    the kernel's numbers)."""
    _family, arptype, index, flags, _change = _IFINFOMSG.unpack_from(body)
    a = _attrs(body, _IFINFOMSG.size)
    kind, bond, vlan_id, pkey = None, None, None, None
    if IFLA_LINKINFO in a:
        info = _attrs(a[IFLA_LINKINFO])
        kind = _str(info.get(IFLA_INFO_KIND))
        if kind == "bond" and IFLA_INFO_DATA in info:
            data = _attrs(info[IFLA_INFO_DATA])
            bond = {key: _DECODE[carried](data.get(attr)) for key, (attr, carried) in BOND_ATTRS.items()}
        elif kind == "vlan" and IFLA_INFO_DATA in info:
            raw = _attrs(info[IFLA_INFO_DATA]).get(IFLA_VLAN_ID)
            vlan_id = _u16(raw)
        elif kind == "ipoib" and IFLA_INFO_DATA in info:
            pkey = _u16(_attrs(info[IFLA_INFO_DATA]).get(IFLA_IPOIB_PKEY))
    oper = _u8(a.get(IFLA_OPERSTATE))
    return {
        "index": index,
        "name": _str(a.get(IFLA_IFNAME)),
        "type": arptype,  # ARPHRD_*
        "flags": flags,
        "mac": _mac(a.get(IFLA_ADDRESS)),
        "perm_mac": _mac(a.get(IFLA_PERM_ADDRESS)),
        "mtu": _u32(a.get(IFLA_MTU)),
        "txqueuelen": _u32(a.get(IFLA_TXQLEN)),
        "master": _u32(a.get(IFLA_MASTER)),
        "operstate": OPERSTATES[oper] if oper is not None and oper < len(OPERSTATES) else None,
        "carrier": _u8(a.get(IFLA_CARRIER)),
        "kind": kind,
        "bond": bond,
        "vlan_id": vlan_id,
        "pkey": pkey,
        "link": _u32(a.get(IFLA_LINK)),
        "vfs": parse_vfs(a.get(IFLA_VFINFO_LIST), _u32(a.get(IFLA_NUM_VF))),
    }


def parse_addr(body: bytes) -> tuple[int, str, str | None, bool] | None:
    """-> (ifindex, cidr, broadcast, permanent). Not permanent: addresses with
    a lifetime (SLAAC, privacy, DHCP), which belong to whoever made them."""
    family, prefixlen, flags, _scope, index = _IFADDRMSG.unpack_from(body)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    a = _attrs(body, _IFADDRMSG.size)
    raw = (a.get(IFA_LOCAL) if family == socket.AF_INET else None) or a.get(IFA_ADDRESS)
    if not raw:
        return None
    flags = _u32(a.get(IFA_FLAGS)) or flags  # IFA_FLAGS supersedes the 8-bit field
    bcast = a.get(IFA_BROADCAST)
    return (index, f"{socket.inet_ntop(family, raw)}/{prefixlen}",
            socket.inet_ntop(family, bcast) if bcast else None, bool(flags & IFA_F_PERMANENT))


def parse_route(body: bytes) -> tuple[int, RouteObs] | None:
    """One RTM_NEWROUTE body -> (output ifindex, RouteObs) for a main-table
    unicast route with one next hop; None for any other (local, broadcast,
    multicast, other tables, multipath)."""
    family, dst_len, _src_len, _tos, table, protocol, _scope, rtype, _flags = _RTMSG.unpack_from(body)
    if family not in (socket.AF_INET, socket.AF_INET6) or rtype != RTN_UNICAST:
        return None
    a = _attrs(body, _RTMSG.size)
    if (_u32(a.get(RTA_TABLE)) or table) != RT_TABLE_MAIN or RTA_OIF not in a:
        return None
    dst = a.get(RTA_DST)
    dest = socket.inet_ntop(family, dst) if dst else ("0.0.0.0" if family == socket.AF_INET else "::")
    gateway = a.get(RTA_GATEWAY)
    return _u32(a[RTA_OIF]), RouteObs(f"{dest}/{dst_len}", socket.inet_ntop(family, gateway) if gateway else None,
                                      _u32(a.get(RTA_PRIORITY)) or 0, protocol)


def dump_routes() -> list[tuple[int, RouteObs]]:
    """Every main-table unicast route with one next hop: (ifindex, RouteObs)."""
    out = []
    for mtype, body in _dump(RTM_GETROUTE, _RTMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0, 0, 0, 0, 0)):
        if mtype == RTM_NEWROUTE:
            parsed = parse_route(body)
            if parsed:
                out.append(parsed)
    return out


# Without IFLA_EXT_MASK RTEXT_FILTER_VF a link dump leaves IFLA_VFINFO_LIST out.
LINK_DUMP_REQUEST = (_IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
                     + _RTATTR.pack(_RTATTR.size + 4, IFLA_EXT_MASK) + struct.pack("=I", RTEXT_FILTER_VF))


def _raw_links() -> list[dict]:
    return [parse_link(body) for mtype, body in _dump(RTM_GETLINK, LINK_DUMP_REQUEST) if mtype == RTM_NEWLINK]


def _raw_link(index: int) -> dict | None:
    """One link by ifindex (a request, not a dump), or None when no link
    has that index any more."""
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
    with _socket() as s:
        s.bind((0, 0))
        s.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETLINK, NLM_F_REQUEST, 1, 0) + body)
        try:
            for mtype, _flags, reply in _messages(s.recv(1 << 16)):
                if mtype == RTM_NEWLINK:
                    return parse_link(reply)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
    return None


def dump_addresses() -> list[tuple[int, str, str | None, bool]]:
    """Every IPv4/IPv6 address: (ifindex, cidr, broadcast, permanent)."""
    out = []
    for mtype, body in _dump(RTM_GETADDR, _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
        if mtype == RTM_NEWADDR:
            parsed = parse_addr(body)
            if parsed:
                out.append(parsed)
    return out


# ------------------------------------------------------------ the adapter


class Netlink:
    def __init__(self):
        self._ipr = None
        self.writes = 0

    @property
    def ipr(self):
        self.prepare_writes()
        return self._ipr

    def prepare_writes(self) -> bool:
        """Import pyroute2 and open its socket now, before the first write.
        True when this did it (it was not done yet)."""
        if self._ipr is not None:
            return False
        from ib40d.system.pyroute2_lean import IPRoute

        self._ipr = IPRoute()
        return True

    def close(self) -> None:
        if self._ipr is not None:
            self._ipr.close()

    # ----------------------------------------------------------------- reads

    def dump_links(self) -> list[LinkObs]:
        raw = _raw_links()
        names = {l["index"]: l["name"] for l in raw}
        links = {l["index"]: _link_obs(l, names) for l in raw}
        for index, cidr, bcast, permanent in dump_addresses():
            if index in links:
                links[index].addresses.append(AddrObs(cidr, bcast, permanent))
        for link in links.values():
            link.routes = []
        for index, route in dump_routes():
            if index in links:
                links[index].routes.append(route)
        return list(links.values())

    def link_name(self, index: int) -> str | None:
        """The name the link with this ifindex has now; None when it is gone."""
        raw = _raw_link(index)
        return raw["name"] if raw else None

    # ---------------------------------------------------------------- writes

    def _write(self, what: str, fn, *args, **kwargs):
        from ib40d.system.pyroute2_lean import NetlinkError

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

    def create_vlan(self, name: str, parent_index: int, parent: str, vlan_id: int) -> None:
        self._write(f"create VLAN {name} (ID {vlan_id} on {parent})", self.ipr.link, "add", ifname=name,
                    kind="vlan", link=parent_index, vlan_id=vlan_id)

    def create_ipoib_child(self, name: str, parent_index: int, parent: str, pkey: int) -> None:
        self._write(f"create IPoIB child {name} (P_Key {pkey:#06x} on {parent})", self.ipr.link, "add",
                    ifname=name, kind="ipoib", link=parent_index, pkey=pkey)  # IFLA_IPOIB_PKEY: the plugin drops its prefix

    def delete_link(self, index: int, name: str) -> None:
        self._write(f"delete {name}", self.ipr.link, "del", index=index)

    def set_bond_primary(self, index: int, name: str, slave_index: int, slave: str) -> None:
        self._write(f"set primary {slave} on {name}", self.ipr.link, "set", index=index, kind="bond",
                    bond_primary=slave_index)

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


    def add_route(self, index: int, name: str, dest: str, gateway: str | None, metric: int | None) -> None:
        # replace: creates it, or takes over the same destination and
        # metric (a route the kernel kept over a down/up) without EEXIST
        self._write(f"add route {dest} to {name}", self.ipr.route, "replace",
                    **_route_kwargs(index, dest, gateway, metric), proto=RTPROT_STATIC)

    def set_vf_guids(self, index: int, name: str, vf: int, node_guid: str, port_guid: str) -> None:
        set_vf_guids(self, index, name, vf, node_guid, port_guid)

    def del_route(self, index: int, name: str, dest: str, gateway: str | None, metric: int | None) -> None:
        self._write(f"remove route {dest} from {name}", self.ipr.route, "del",
                    **_route_kwargs(index, dest, gateway, metric))


def _route_kwargs(index: int, dest: str, gateway: str | None, metric: int | None) -> dict:
    kwargs = {"dst": dest, "oif": index, "table": RT_TABLE_MAIN,
              "family": socket.AF_INET6 if ":" in dest else socket.AF_INET}
    if gateway:
        kwargs["gateway"] = gateway
    if metric is not None:
        kwargs["priority"] = metric
    return kwargs


def _bond_kwargs(options: dict) -> dict:
    """Config values -> pyroute2's bond_* keywords, in the kernel's terms."""
    kwargs = {}
    for key, value in options.items():
        if key == "mode":
            value = BOND_MODES[value]
        elif key == "use_carrier":
            value = int(value)
        elif key == "arp_ip_target":
            value = list(value)
        elif key in _BOND_CHOICES:
            value = _BOND_CHOICES[key].index(value)
        kwargs[f"bond_{PYROUTE2_BOND_NAMES.get(key, key)}"] = value
    return kwargs


def _bond_obs(raw: dict, names: dict[int, str]) -> BondObs:
    """parse_link's bond numbers -> BondObs (the inverse of _bond_kwargs)."""
    values = dict(raw)
    values["mode"] = _MODE_BY_NUMBER.get(raw["mode"])
    values["use_carrier"] = None if raw["use_carrier"] is None else bool(raw["use_carrier"])
    for key, choices in _BOND_CHOICES.items():
        number = raw[key]
        values[key] = choices[number] if number is not None and number < len(choices) else None
    values["primary"] = names.get(raw["primary"]) if raw["primary"] else None
    return BondObs(**values)


def _link_obs(raw: dict, names: dict[int, str]) -> LinkObs:
    return LinkObs(
        name=raw["name"],
        index=raw["index"],
        kind=raw["kind"],
        arptype=raw["type"],
        mac=raw["mac"],
        perm_mac=raw["perm_mac"],
        mtu=raw["mtu"],
        txqueuelen=raw["txqueuelen"],
        admin_up=bool(raw["flags"] & IFF_UP),
        carrier=None if raw["carrier"] is None else bool(raw["carrier"]),
        operstate=raw["operstate"],
        master=names.get(raw["master"]) if raw["master"] else None,
        bond=None if raw["bond"] is None else _bond_obs(raw["bond"], names),
        vlan_id=raw["vlan_id"],
        pkey=raw["pkey"],
        parent=names.get(raw["link"]) if raw["kind"] in ("vlan", "ipoib") and raw["link"] else None,
        vfs=None if raw["vfs"] is None else [VfObs(*vf) for vf in raw["vfs"]],
    )


# ------------------------------------------------------------ link events


class LinkMonitor:
    """Link events (RTM_NEWLINK/RTM_DELLINK) on a raw socket subscribed to
    RTMGRP_LINK. `events()` returns the waiting events as (deleted,
    parse_link dict), or None when the kernel dropped events (ENOBUFS): then
    anything may have changed."""

    def __init__(self):
        self.sock = _socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
        self.sock.bind((0, RTMGRP_LINK))
        self.sock.setblocking(False)

    def fileno(self) -> int:
        return self.sock.fileno()

    def events(self) -> list[tuple[bool, dict]] | None:
        found: list[tuple[bool, dict]] = []
        while True:
            try:
                data = self.sock.recv(1 << 16)
            except BlockingIOError:
                return found
            except OSError as e:
                if e.errno == errno.ENOBUFS:
                    return None
                raise
            for mtype, _flags, body in _messages(data):
                if mtype in (RTM_NEWLINK, RTM_DELLINK):
                    found.append((mtype == RTM_DELLINK, parse_link(body)))

    def close(self) -> None:
        self.sock.close()


def vf_guid_request(vf: int, node_guid: str, port_guid: str) -> dict:
    """pyroute2's `vf=` argument of link("set") that sets an IB virtual
    function's GUIDs: IFLA_VFINFO_LIST / IFLA_VF_INFO with
    IFLA_VF_IB_NODE_GUID and IFLA_VF_IB_PORT_GUID (struct ifla_vf_guid),
    sent to the PF's IPoIB netdev. GUIDs as "02:02:c9:80:00:a4:e7:21"."""
    return {"vf": vf, "ib_node_guid": node_guid, "ib_port_guid": port_guid}


def set_vf_guids(nl: Netlink, index: int, name: str, vf: int, node_guid: str, port_guid: str) -> None:
    """mlx5 takes them (ndo_set_vf_guid); mlx4 has none: its VFs' GUIDs
    come from the SM's alias GUIDs, and the kernel answers EOPNOTSUPP.
    Netlink.set_vf_guids is this (the fake in tests/fakenl.py has the method)."""
    nl._write(f"set VF {vf} GUIDs on {name}", nl.ipr.link, "set", index=index,
              vf=vf_guid_request(vf, node_guid, port_guid))
