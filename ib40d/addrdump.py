# SPDX-License-Identifier: GPL-2.0-or-later
"""Interface addresses for `status`, without importing pyroute2.

The cheapest sound source is one RTM_GETADDR dump over a raw rtnetlink socket
from the standard library: one request, a few kB back, about a millisecond,
and exactly what the kernel has (procfs has no IPv4 per-interface address
list with prefixes). On a captured tree (--root other than /), the bundle's
`run/ib40/ip-address.json` (the output of `ip -j address`) is read instead.
"""

from __future__ import annotations

import ipaddress
import json
import os
import socket
import struct

from ib40d.sysroot import SysRoot

NETLINK_ROUTE = 0
RTM_GETADDR = 22
RTM_NEWADDR = 20
NLMSG_DONE = 3
NLMSG_ERROR = 2
NLM_F_REQUEST = 0x1
NLM_F_DUMP = 0x300
IFA_ADDRESS, IFA_LOCAL, IFA_BROADCAST = 1, 2, 4

_NLMSGHDR = struct.Struct("=IHHII")
_IFADDRMSG = struct.Struct("=BBBBI")
_RTATTR = struct.Struct("=HH")

BUNDLE_FILE = "/run/ib40/ip-address.json"


def _align(n: int) -> int:
    return (n + 3) & ~3


def parse_dump(data: bytes) -> tuple[list[tuple[int, str, str | None]], bool]:
    """Parse RTM_NEWADDR messages -> ([(ifindex, cidr, broadcast)], done)."""
    out = []
    offset = 0
    while offset + _NLMSGHDR.size <= len(data):
        length, mtype, _flags, _seq, _pid = _NLMSGHDR.unpack_from(data, offset)
        if length < _NLMSGHDR.size:
            break
        if mtype == NLMSG_DONE:
            return out, True
        if mtype == NLMSG_ERROR:
            (code,) = struct.unpack_from("=i", data, offset + _NLMSGHDR.size)
            raise OSError(-code, os.strerror(-code))
        if mtype == RTM_NEWADDR:
            body = offset + _NLMSGHDR.size
            family, prefixlen, _f, _scope, index = _IFADDRMSG.unpack_from(data, body)
            attrs = {}
            pos = body + _IFADDRMSG.size
            end = offset + length
            while pos + _RTATTR.size <= end:
                alen, atype = _RTATTR.unpack_from(data, pos)
                if alen < _RTATTR.size:
                    break
                attrs[atype] = data[pos + _RTATTR.size:pos + alen]
                pos += _align(alen)
            raw = attrs.get(IFA_LOCAL) if family == socket.AF_INET else None
            raw = raw or attrs.get(IFA_ADDRESS)
            if raw and family in (socket.AF_INET, socket.AF_INET6):
                addr = socket.inet_ntop(family, raw)
                bcast = attrs.get(IFA_BROADCAST)
                out.append((index, f"{addr}/{prefixlen}",
                            socket.inet_ntop(family, bcast) if bcast else None))
        offset += _align(length)
    return out, False


def _dump_live() -> list[tuple[int, str, str | None]]:
    with socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_ROUTE) as s:
        s.bind((0, 0))
        msg = _IFADDRMSG.pack(socket.AF_UNSPEC, 0, 0, 0, 0)
        s.send(_NLMSGHDR.pack(_NLMSGHDR.size + len(msg), RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, 1, 0) + msg)
        result = []
        while True:
            part, done = parse_dump(s.recv(65536))
            result.extend(part)
            if done:
                return result


def addresses_by_name(root: SysRoot) -> dict[str, list[dict]]:
    """{ifname: [{"cidr", "broadcast"}]}, IPv6 link-local included (status shows all)."""
    if not root.is_live:
        text = root.read(BUNDLE_FILE)
        result: dict[str, list[dict]] = {}
        for link in json.loads(text) if text else []:
            for a in link.get("addr_info", []):
                result.setdefault(link["ifname"], []).append(
                    {"cidr": f"{a['local']}/{a['prefixlen']}", "broadcast": a.get("broadcast")})
        return result
    names = {}
    for name in root.listdir("/sys/class/net"):
        idx = root.read_int(f"/sys/class/net/{name}/ifindex")
        if idx is not None:
            names[idx] = name
    result = {}
    for index, cidr, bcast in _dump_live():
        if index in names:
            cidr = str(ipaddress.ip_interface(cidr))
            result.setdefault(names[index], []).append({"cidr": cidr, "broadcast": bcast})
    return result
