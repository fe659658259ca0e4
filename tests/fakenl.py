# SPDX-License-Identifier: GPL-2.0-or-later
"""A recording netlink fake with the methods of ib40d.system.netlink.Netlink.

It keeps a model of links and enforces the kernel rules the planner must
respect, so an ordering bug fails here the way it would on a machine:
- a slave must be down to be enslaved (EBUSY otherwise, docs/pitfalls.md);
  the bond driver then opens it and gives it the bond's MTU;
- a bond's mode changes only while it is down (EBUSY) and empty (ENOTEMPTY);
- updelay/downdelay are rounded down to multiples of miimon;
- IPoIB: connected mode raises the MTU to 65520, datagram clamps it to the
  IB MTU less 4 (2044 on a 2048 fabric), and an MTU above that in datagram
  mode is EINVAL (the ipoib_mode fixtures: "SIOCSIFMTU: Invalid argument").
Every write is recorded as (method, name, detail) in `calls`.
"""

from __future__ import annotations

import copy
import errno
import re

from ib40d.core.netlink_errors import NetlinkRefused
from ib40d.core.model import AddrObs, BondObs, LinkObs, RouteObs, VfObs
from ib40d.system.sysroot import SysRoot

IPOIB_DATAGRAM_MTU = 2044


class FakeNetlink:
    def __init__(self, links: list[LinkObs] | None = None):
        self.links: dict[str, LinkObs] = {l.name: copy.deepcopy(l) for l in links or []}
        for link in self.links.values():
            link.routes = [] if link.routes is None else link.routes  # a dump reads them all
        self.next_index = max([l.index for l in self.links.values()], default=1) + 1
        self.calls: list[tuple] = []
        self.writes = 0
        self.fail: dict[tuple[str, str], int] = {}  # (method, name) -> errno to raise
        self.shows_vf_guids = True  # False: a kernel before 5.5, or mlx4 (no ndo_get_vf_guid)
        self.while_preparing = None  # fn(self): what the machine does while pyroute2 is imported

    # reads
    def dump_links(self) -> list[LinkObs]:
        return [copy.deepcopy(l) for l in self.links.values()]

    def link_name(self, index: int) -> str | None:
        return next((l.name for l in self.links.values() if l.index == index), None)

    def close(self):
        pass

    def prepare_writes(self) -> bool:
        """The real adapter imports pyroute2 here; the fake runs the test's
        hook (what happens on the machine meanwhile), once."""
        hook, self.while_preparing = self.while_preparing, None
        if hook:
            hook(self)
        return hook is not None

    # helpers
    def _by_index(self, index: int) -> LinkObs:
        for l in self.links.values():
            if l.index == index:
                return l
        raise NetlinkRefused(errno.ENODEV, f"index {index}")

    def _write(self, method: str, name: str, detail=None) -> None:
        self.writes += 1
        self.calls.append((method, name, detail))
        code = self.fail.get((method, name))
        if code:
            raise NetlinkRefused(code, f"{method} {name}")

    # writes
    def create_bond(self, name, options):
        self._write("create_bond", name, dict(options))
        if name in self.links:
            raise NetlinkRefused(errno.EEXIST, f"create bond {name}")
        bond = BondObs(mode="balance-rr", miimon=0, updelay=0, downdelay=0, use_carrier=True,
                       arp_interval=0, arp_ip_target=(), xmit_hash_policy="layer2", lacp_rate="slow",
                       ad_select="stable", min_links=0)
        link = LinkObs(name=name, index=self.next_index, kind="bond", mac="02:00:00:00:00:01",
                       mtu=1500, txqueuelen=1000, bond=bond)
        self.next_index += 1
        self.links[name] = link
        self._bond_options(link, options)

    def _bond_options(self, link, options):
        for key, value in options.items():
            if key == "mode" and value != link.bond.mode:
                if any(l.master == link.name for l in self.links.values()):
                    raise NetlinkRefused(errno.ENOTEMPTY, f"set mode on {link.name}")
                if link.admin_up:
                    raise NetlinkRefused(errno.EBUSY, f"set mode on {link.name}")
            if key == "lacp_rate" and "802.3ad" not in (link.bond.mode, options.get("mode")):
                raise NetlinkRefused(errno.EACCES, f"set lacp_rate on {link.name}")
            if key in ("lacp_rate", "ad_select") and value != getattr(link.bond, key) and link.admin_up:
                raise NetlinkRefused(errno.EBUSY, f"set {key} on {link.name}")  # BOND_OPTFLAG_IFDOWN
            if key in ("updelay", "downdelay") and link.bond.miimon:
                value -= value % link.bond.miimon
            setattr(link.bond, key, tuple(value) if key == "arp_ip_target" else value)

    def set_bond(self, index, name, options):
        self._write("set_bond", name, dict(options))
        self._bond_options(self._by_index(index), options)

    def create_ipoib_child(self, name, parent_index, parent, pkey):
        self._write("create_ipoib_child", name, (parent, pkey))
        if name in self.links:
            raise NetlinkRefused(errno.EEXIST, f"create IPoIB child {name}")
        lower = self._by_index(parent_index)
        if lower.kind != "ipoib":
            raise NetlinkRefused(errno.EINVAL, f"create IPoIB child {name}")
        # ipoib_new_child_link(): the parent's mode and a datagram MTU
        self.links[name] = LinkObs(name=name, index=self.next_index, kind="ipoib", arptype=32, pkey=pkey,
                                   parent=lower.name, mtu=IPOIB_DATAGRAM_MTU, txqueuelen=256,
                                   ipoib_mode="datagram", routes=[])
        self.next_index += 1

    def delete_link(self, index, name):
        self._write("delete_link", name)
        del self.links[self._by_index(index).name]

    def create_vlan(self, name, parent_index, parent, vlan_id):
        self._write("create_vlan", name, (parent, vlan_id))
        if name in self.links:
            raise NetlinkRefused(errno.EEXIST, f"create VLAN {name}")
        lower = self._by_index(parent_index)
        self.links[name] = LinkObs(name=name, index=self.next_index, kind="vlan", mac=lower.mac, mtu=lower.mtu,
                                   txqueuelen=1000, vlan_id=vlan_id, parent=lower.name, routes=[])
        self.next_index += 1

    def set_bond_primary(self, index, name, slave_index, slave):
        self._write("set_bond_primary", name, slave)
        bond = self._by_index(index)
        if bond.bond.mode not in ("active-backup", "balance-tlb", "balance-alb"):
            raise NetlinkRefused(errno.EACCES, f"set primary on {name}")
        bond.bond.primary = self._by_index(slave_index).name

    def set_state(self, index, name, up):
        self._write("set_state", name, "up" if up else "down")
        link = self._by_index(index)
        link.admin_up = up
        if not up:
            link.routes = []  # the kernel flushes a down link's routes

    def add_route(self, index, name, dest, gateway, metric):
        self._write("add_route", name, (dest, gateway, metric))
        link = self._by_index(index)
        metric = (1024 if ":" in dest else 0) if metric is None else metric
        link.routes = [r for r in link.routes if (r.dest, r.metric) != (dest, metric)]  # replace
        link.routes.append(RouteObs(dest, gateway, metric))

    def del_route(self, index, name, dest, gateway, metric):
        self._write("del_route", name, (dest, gateway, metric))
        link = self._by_index(index)
        if not any((r.dest, r.metric) == (dest, metric) for r in link.routes):
            raise NetlinkRefused(errno.ESRCH, f"remove route {dest} from {name}")
        link.routes = [r for r in link.routes if (r.dest, r.metric) != (dest, metric)]

    def set_mtu(self, index, name, mtu):
        self._write("set_mtu", name, mtu)
        link = self._by_index(index)
        if link.kind == "ipoib" and link.ipoib_mode == "datagram" and mtu > IPOIB_DATAGRAM_MTU:
            raise NetlinkRefused(errno.EINVAL, f"set mtu {mtu} on {name}")
        link.mtu = mtu

    def set_txqueuelen(self, index, name, qlen):
        self._write("set_txqueuelen", name, qlen)
        self._by_index(index).txqueuelen = qlen

    def set_master(self, index, name, master_index, master_name):
        self._write("set_master", name, master_name)
        link = self._by_index(index)
        if master_index:
            master = self._by_index(master_index)
            if link.admin_up:
                raise NetlinkRefused(errno.EBUSY, f"enslave {name} to {master_name}")
            link.routes = []
            link.master = master.name
            link.admin_up = True  # bond_enslave() opens the slave
            link.mtu = master.mtu
        else:
            link.master = None
            link.admin_up = False  # bond release closes it

    def add_address(self, index, name, cidr, broadcast):
        self._write("add_address", name, cidr)
        link = self._by_index(index)
        if any(a.cidr == cidr for a in link.addresses):
            raise NetlinkRefused(errno.EEXIST, f"add address {cidr} to {name}")
        link.addresses.append(AddrObs(cidr, broadcast))

    def del_address(self, index, name, cidr):
        self._write("del_address", name, cidr)
        link = self._by_index(index)
        link.addresses = [a for a in link.addresses if a.cidr != cidr]

    def set_vf_guids(self, index, name, vf, node_guid, port_guid):
        self._write("set_vf_guids", name, (vf, node_guid, port_guid))
        link = self._by_index(index)
        if not any(v.vf == vf for v in link.vfs or []):
            raise NetlinkRefused(errno.EINVAL, f"set VF {vf} GUIDs on {name}")  # vf >= the PF's num_vf
        if self.shows_vf_guids:  # else like a kernel without ndo_get_vf_guid: the dump keeps None
            link.vfs = [VfObs(vf, node_guid, port_guid) if v.vf == vf else v for v in link.vfs]

    # the sysfs side of IPoIB, wired through FakeRoot below
    def write_ipoib_mode(self, name, mode):
        self.writes += 1
        self.calls.append(("ipoib_mode", name, mode))
        link = self.links[name]
        link.ipoib_mode = mode
        link.mtu = 65520 if mode == "connected" else min(link.mtu, IPOIB_DATAGRAM_MTU)


def encode_link_with_vfs(vfs, guids: bool) -> bytes:
    """An RTM_NEWLINK body for an IPoIB PF, encoded by pyroute2, as the
    kernel dumps it with RTEXT_FILTER_VF: IFLA_NUM_VF, then one IFLA_VF_INFO
    per VF with its IFLA_VF_MAC (always) and the GUIDs (5.5+, ndo_get_vf_guid)."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    infos = []
    for vf, node, port in vfs:
        attrs = [("IFLA_VF_MAC", {"vf": vf, "mac": "00:00:00:00:00:00"})]
        if guids:
            attrs += [("IFLA_VF_IB_NODE_GUID", {"vf": vf, "ib_node_guid": node}),
                      ("IFLA_VF_IB_PORT_GUID", {"vf": vf, "ib_port_guid": port})]
        infos.append(("IFLA_VF_INFO", {"attrs": attrs}))
    msg = ifinfmsg()
    msg["index"], msg["ifi_type"] = 7, 32
    msg["attrs"] = [("IFLA_IFNAME", "ib0"), ("IFLA_NUM_VF", len(vfs)), ("IFLA_VFINFO_LIST", {"attrs": infos})]
    msg.encode()
    return bytes(msg.data[16:])  # the body after struct nlmsghdr


def pf_from_ip_link(text: str, index: int = 5) -> LinkObs:
    """An IPoIB PF as `ip link show` prints it with its VFs (the
    tests/fixtures/ip_link samples): the name, the 20-byte address, and each
    `vf N ... NODE_GUID x, PORT_GUID y` (None where iproute2 printed no GUIDs)."""
    vfs = []
    for m in re.finditer(r"\bvf (\d+)\b(.*?)(?=\bvf \d+\b|\Z)", text, re.S):
        guids = [re.search(rf"{key} ([0-9a-f:]{{23}})", m.group(2)) for key in ("NODE_GUID", "PORT_GUID")]
        vfs.append(VfObs(int(m.group(1)), *(g.group(1) if g else None for g in guids)))
    words = text.split()
    return LinkObs(name=words[0].rstrip(":"), index=index, kind="ipoib", arptype=32,
                   mac=words[words.index("link/infiniband") + 1], mtu=int(words[words.index("mtu") + 1]),
                   txqueuelen=256, admin_up="UP" in words[1].strip("<>").split(","), ipoib_mode="datagram", vfs=vfs)


class FakeRoot(SysRoot):
    """A SysRoot whose IPoIB mode writes land in the FakeNetlink model, and
    whose reads of /sys/class/net/X/mode come from it."""

    def __init__(self, tmp_path, nl: FakeNetlink):
        super().__init__(tmp_path)
        self.nl = nl

    def read(self, abspath):
        parts = abspath.strip("/").split("/")
        if parts[:3] == ["sys", "class", "net"] and len(parts) == 5 and parts[4] == "mode":
            link = self.nl.links.get(parts[3])
            return link.ipoib_mode if link else None
        return super().read(abspath)

    def write_sysfs(self, abspath, value):
        parts = abspath.strip("/").split("/")
        assert parts[:3] == ["sys", "class", "net"] and parts[4] == "mode", abspath
        # ipoib_set_mode() accepts exactly "connected\n" or "datagram\n"
        if value not in ("connected\n", "datagram\n"):
            raise OSError(errno.EINVAL, "Invalid argument")
        self.nl.write_ipoib_mode(parts[3], value.strip())
