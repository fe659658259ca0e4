# SPDX-License-Identifier: GPL-2.0-or-later
"""Read-only rtnetlink dumps (links, addresses) with the standard library.

Why not pyroute2 here: importing it costs ~0.25 s and 35 MB, and most runs of
ib40 only need to look — `status`, `plan`, and an `apply` or a unit start on a
machine that is already converged. Two dump requests over a raw
NETLINK_ROUTE socket give the same kernel view in about a millisecond, so
pyroute2 is imported only when there is something to write (netlink.py).
Constants and layouts are the kernel's uapi (linux/rtnetlink.h, if_link.h,
if_addr.h).
"""

from __future__ import annotations

import errno
import os
import socket
import struct

NETLINK_ROUTE = 0
NLMSG_ERROR, NLMSG_DONE = 2, 3
RTM_NEWLINK, RTM_GETLINK = 16, 18
RTM_NEWADDR, RTM_GETADDR = 20, 22
NLM_F_REQUEST, NLM_F_DUMP = 0x1, 0x300
NLM_F_DUMP_INTR = 0x10
NLA_TYPE_MASK = 0x3FFF  # strips NLA_F_NESTED / NLA_F_NET_BYTEORDER

IFLA_ADDRESS, IFLA_IFNAME, IFLA_MTU, IFLA_MASTER = 1, 3, 4, 10
IFLA_TXQLEN, IFLA_OPERSTATE, IFLA_LINKINFO, IFLA_CARRIER = 13, 16, 18, 33
IFLA_PERM_ADDRESS = 54  # since Linux 5.5
IFLA_INFO_KIND, IFLA_INFO_DATA = 1, 2
IFLA_BOND_MODE, IFLA_BOND_MIIMON, IFLA_BOND_UPDELAY, IFLA_BOND_DOWNDELAY = 1, 3, 4, 5
IFLA_BOND_USE_CARRIER, IFLA_BOND_ARP_INTERVAL, IFLA_BOND_ARP_IP_TARGET = 6, 7, 8
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST, IFA_FLAGS = 1, 2, 4, 8
IFA_F_PERMANENT = 0x80
IFF_UP = 0x1
# IF_OPER_* (RFC 2863), as `ip link` prints them
OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")

_NLMSGHDR = struct.Struct("=IHHII")
_IFINFOMSG = struct.Struct("=BxHiII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")


def _align(n: int) -> int:
    return (n + 3) & ~3


def attrs(data: bytes, start: int = 0, end: int | None = None) -> dict[int, bytes]:
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


def _u8(raw: bytes | None) -> int | None:
    return raw[0] if raw else None


def _str(raw: bytes | None) -> str | None:
    # The kernel allows names that are not UTF-8: keep them, undecodable
    # bytes and all, rather than fail the whole dump over one link.
    return raw.split(b"\0", 1)[0].decode(errors="surrogateescape") if raw is not None else None


class DumpInterrupted(Exception):
    """The kernel flagged the dump NLM_F_DUMP_INTR: links or addresses
    changed while it ran (boot and hotplug bursts), so it may miss or repeat
    entries."""


def messages(data: bytes):
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


def _dump_once(request_type: int, family_msg: bytes) -> list[tuple[int, bytes]]:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE) as s:
        s.bind((0, 0))
        header = _NLMSGHDR.pack(_NLMSGHDR.size + len(family_msg), request_type, NLM_F_REQUEST | NLM_F_DUMP, 1, 0)
        s.send(header + family_msg)
        out = []
        interrupted = False
        while True:
            for mtype, flags, body in messages(s.recv(1 << 16)):
                interrupted |= bool(flags & NLM_F_DUMP_INTR)
                if mtype == NLMSG_DONE:
                    if interrupted:
                        raise DumpInterrupted()
                    return out
                out.append((mtype, body))


def dump(request_type: int, family_msg: bytes, attempts: int = 5) -> list[tuple[int, bytes]]:
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
    """One RTM_NEWLINK body -> plain dict (bond options under 'bond')."""
    _family, arptype, index, flags, _change = _IFINFOMSG.unpack_from(body)
    a = attrs(body, _IFINFOMSG.size)
    kind, bond = None, None
    if IFLA_LINKINFO in a:
        info = attrs(a[IFLA_LINKINFO])
        kind = _str(info.get(IFLA_INFO_KIND))
        if kind == "bond" and IFLA_INFO_DATA in info:
            d = attrs(info[IFLA_INFO_DATA])
            targets = attrs(d[IFLA_BOND_ARP_IP_TARGET]) if IFLA_BOND_ARP_IP_TARGET in d else {}
            bond = {
                "mode": _u8(d.get(IFLA_BOND_MODE)),
                "miimon": _u32(d.get(IFLA_BOND_MIIMON)),
                "updelay": _u32(d.get(IFLA_BOND_UPDELAY)),
                "downdelay": _u32(d.get(IFLA_BOND_DOWNDELAY)),
                "use_carrier": _u8(d.get(IFLA_BOND_USE_CARRIER)),
                "arp_interval": _u32(d.get(IFLA_BOND_ARP_INTERVAL)),
                "arp_ip_target": tuple(socket.inet_ntop(socket.AF_INET, v) for _, v in sorted(targets.items())
                                       if len(v) == 4),
            }
    mac = a.get(IFLA_ADDRESS)
    perm = a.get(IFLA_PERM_ADDRESS)
    oper = _u8(a.get(IFLA_OPERSTATE))
    return {
        "index": index,
        "name": _str(a.get(IFLA_IFNAME)),
        "type": arptype,  # ARPHRD_*: 1 Ethernet, 32 InfiniBand
        "flags": flags,
        "mac": ":".join(f"{b:02x}" for b in mac) if mac else None,
        "perm_mac": ":".join(f"{b:02x}" for b in perm) if perm else None,
        "mtu": _u32(a.get(IFLA_MTU)),
        "txqueuelen": _u32(a.get(IFLA_TXQLEN)),
        "master": _u32(a.get(IFLA_MASTER)),
        "operstate": OPERSTATES[oper] if oper is not None and oper < len(OPERSTATES) else None,
        "carrier": _u8(a.get(IFLA_CARRIER)),
        "kind": kind,
        "bond": bond,
    }


def parse_addr(body: bytes) -> tuple[int, str, str | None, bool] | None:
    """-> (ifindex, cidr, broadcast, permanent). Not permanent: addresses with
    a lifetime (SLAAC, privacy, DHCP), which belong to whoever made them."""
    family, prefixlen, flags, _scope, index = _IFADDRMSG.unpack_from(body)
    if family not in (socket.AF_INET, socket.AF_INET6):
        return None
    a = attrs(body, _IFADDRMSG.size)
    raw = (a.get(IFA_LOCAL) if family == socket.AF_INET else None) or a.get(IFA_ADDRESS)
    if not raw:
        return None
    flags = _u32(a.get(IFA_FLAGS)) or flags  # IFA_FLAGS supersedes the 8-bit field
    bcast = a.get(IFA_BROADCAST)
    return (index, f"{socket.inet_ntop(family, raw)}/{prefixlen}",
            socket.inet_ntop(family, bcast) if bcast else None, bool(flags & IFA_F_PERMANENT))


def dump_links() -> list[dict]:
    return [parse_link(body) for mtype, body in dump(RTM_GETLINK, _IFINFOMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0))
            if mtype == RTM_NEWLINK]


def get_link(index: int) -> dict | None:
    """One link by ifindex (a request, not a dump), or None when no link
    has that index any more."""
    body = _IFINFOMSG.pack(socket.AF_UNSPEC, 0, index, 0, 0)
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE) as s:
        s.bind((0, 0))
        s.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(body), RTM_GETLINK, NLM_F_REQUEST, 1, 0) + body)
        try:
            for mtype, _flags, reply in messages(s.recv(1 << 16)):
                if mtype == RTM_NEWLINK:
                    return parse_link(reply)
        except OSError as e:
            if e.errno == errno.ENODEV:
                return None
            raise
    return None


def dump_addresses() -> list[tuple[int, str, str | None, bool]]:
    out = []
    for mtype, body in dump(RTM_GETADDR, _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)):
        if mtype == RTM_NEWADDR:
            parsed = parse_addr(body)
            if parsed:
                out.append(parsed)
    return out


RTMGRP_LINK = 0x1
RTM_DELLINK = 17


class LinkMonitor:
    """Link events (RTM_NEWLINK/RTM_DELLINK) on a raw socket subscribed to
    RTMGRP_LINK. `events()` returns the waiting events as (deleted, link
    dict), or None when the kernel dropped events (ENOBUFS): then anything
    may have changed."""

    def __init__(self):
        self.sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
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
            for mtype, _flags, body in messages(data):
                if mtype in (RTM_NEWLINK, RTM_DELLINK):
                    found.append((mtype == RTM_DELLINK, parse_link(body)))

    def close(self) -> None:
        self.sock.close()
