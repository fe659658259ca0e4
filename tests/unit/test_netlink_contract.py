# SPDX-License-Identifier: GPL-2.0-or-later
"""The two halves of ib40d.system.netlink agree: the stdlib reads and pyroute2 (the
writes) use the same numbers, read a real network namespace into the same
LinkObs, and a bond's options encoded by a write read back as they were set.
pyroute2 is the independent decoder here: its tables and parsers are not ours."""

from ib40d.core.records import asdict

import pytest

from ib40d.system import netlink
from ib40d.core import rtnl_constants
from ib40d.system.observe import BondObs

# ---------------------------------------------------------------- numbers


def _nla_numbers(nla_map) -> dict[str, int]:
    """pyroute2's nla_map rows are (name, type) by position or (number, name, type)."""
    out = {}
    for position, row in enumerate(nla_map):
        number, name = (row[0], row[1]) if isinstance(row[0], int) else (position, row[0])
        out[name] = number
    return out


def _nla_types(nla_map) -> dict[str, str]:
    return {row[-2]: row[-1] for row in nla_map}


def pyroute2_numbers() -> dict[str, int]:
    from pyroute2 import arp
    from pyroute2 import netlink as nl
    from pyroute2.netlink import rtnl
    from pyroute2.netlink.rtnl import ifaddrmsg, ifinfmsg, rtmsg
    from pyroute2.netlink.rtnl.ifinfmsg.plugins.bond import bond
    from pyroute2.netlink.rtnl.ifinfmsg.plugins.ipoib import ipoib
    from pyroute2.netlink.rtnl.ifinfmsg.plugins.vlan import vlan

    numbers = {}
    for module in (nl, rtnl, ifinfmsg, ifaddrmsg, arp):
        numbers.update({k: v for k, v in vars(module).items() if k.isupper() and isinstance(v, int)})
    for cls in (ifinfmsg.ifinfmsg, ifinfmsg.ifinfmsg.ifinfo, ifinfmsg.ifinfmsg.vflist,
                ifinfmsg.ifinfmsg.vflist.vfinfo, bond, vlan, ipoib, ifaddrmsg.ifaddrmsg, rtmsg.rtmsg):
        numbers.update(_nla_numbers(cls.nla_map))
    numbers.update(rtnl.rtprotos)
    numbers.update(rtnl.rtypes)
    numbers["NLA_TYPE_MASK"] = ~(nl.NLA_F_NESTED | nl.NLA_F_NET_BYTEORDER) & 0xFFFF
    return numbers


def test_every_constant_is_the_number_pyroute2_uses():
    ours = {k: v for k, v in vars(rtnl_constants).items() if k.isupper() and isinstance(v, int)}
    # pyroute2 has no name for the main table: the number its route() fills in
    # when given no table (rtmsg's encoder) and a dump of the namespace show it
    ours.pop("RT_TABLE_MAIN")
    # nor for ext_mask's bits (pyroute2's iproute/linux.py: "1 << 0 => RTEXT_FILTER_VF")
    assert ours.pop("RTEXT_FILTER_VF") == 1 << 0
    theirs = pyroute2_numbers()
    assert {"RTM_GETLINK", "IFLA_MTU", "IFLA_BOND_MODE", "IFA_F_PERMANENT", "IFF_UP", "ARPHRD_INFINIBAND"} <= ours.keys()
    assert {k: theirs.get(k) for k in ours} == ours


def test_operstate_names_are_pyroute2s():
    from pyroute2.netlink.rtnl.ifinfmsg import states

    assert rtnl_constants.OPERSTATES == tuple(s.lower() for s in states)


def test_bond_options_are_the_attributes_pyroute2_writes():
    """A write passes pyroute2 `bond_<option>`, which it sends as
    IFLA_BOND_<OPTION>; the read decodes BOND_ATTRS' number with BOND_ATTRS'
    width. Both must be pyroute2's, and every BondObs field must be an option."""
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.netlink.rtnl.ifinfmsg.plugins.bond import bond

    assert ifinfmsg.ifinfo.data_map["bond"] is bond
    numbers, types = _nla_numbers(bond.nla_map), _nla_types(bond.nla_map)
    widths = {"u8": "uint8", "u32": "uint32", "ipv4 list": "*ipaddr"}
    for option, (attr, carried) in netlink.BOND_ATTRS.items():
        name = f"IFLA_BOND_{netlink.PYROUTE2_BOND_NAMES.get(option, option).upper()}"
        assert (numbers[name], types[name]) == (attr, widths[carried]), option
    assert set(netlink.BOND_ATTRS) == set(asdict(BondObs()))


class _Captured:
    """An IPRoute whose requests are encoded but not sent."""

    def __init__(self):
        from pyroute2 import IPRoute

        self.ipr = IPRoute()
        self.sent = []
        self.ipr.nlm_request = lambda msg, msg_type, msg_flags: self.sent.append(msg) or ()

    def body(self) -> bytes:
        msg = self.sent[-1]
        msg.encode()
        return bytes(msg.data[16:])  # past the nlmsghdr, as parse_link takes it


@pytest.mark.parametrize("options", [
    {"mode": "balance-rr", "miimon": 100, "updelay": 200, "downdelay": 200, "use_carrier": True,
     "arp_interval": 0, "arp_ip_target": ()},
    {"mode": "active-backup", "miimon": 0, "updelay": 0, "downdelay": 0, "use_carrier": False,
     "arp_interval": 250, "arp_ip_target": ("10.30.0.1", "10.30.0.254")},
    {"mode": "802.3ad", "miimon": 4294967295, "updelay": 0, "downdelay": 0, "use_carrier": True,
     "arp_interval": 0, "arp_ip_target": ("192.0.2.1",), "xmit_hash_policy": "layer3+4",
     "lacp_rate": "fast", "ad_select": "count", "min_links": 2},
    {"mode": "balance-xor", "arp_ip_target": (), "xmit_hash_policy": "vlan+srcmac", "lacp_rate": "slow", "ad_select": "bandwidth",
     "min_links": 0},
])
def test_bond_written_by_pyroute2_reads_back_the_same(options):
    """What create_bond and set_bond put on the wire, decoded by the read
    side: the bond a write asked for is the bond a read sees."""
    nl = netlink.Netlink()
    captured = _Captured()
    nl._ipr = captured.ipr
    try:
        nl.create_bond("bond0", options)
        created = netlink.parse_link(captured.body())
        nl.set_bond(7, "bond0", options)
        changed = netlink.parse_link(captured.body())
    finally:
        nl.close()
    assert nl.writes == 2
    assert (created["name"], created["kind"], changed["index"], changed["kind"]) == ("bond0", "bond", 7, "bond")
    for raw in (created, changed):
        assert netlink._link_obs(raw, {}).bond == BondObs(**options)


def test_bond_primary_is_written_as_the_slaves_ifindex_and_read_back_as_its_name():
    nl = netlink.Netlink()
    captured = _Captured()
    nl._ipr = captured.ipr
    try:
        nl.set_bond_primary(7, "bond0", 12, "eth40b")
        raw = netlink.parse_link(captured.body())
    finally:
        nl.close()
    assert raw["bond"]["primary"] == 12
    assert netlink._link_obs(raw, {12: "eth40b"}).bond.primary == "eth40b"


# ---------------------------------------------------------------- a real namespace


@pytest.mark.parametrize("create, args, want", [
    ("create_vlan", ("bond0.30", 7, "bond0", 30), ("bond0.30", "vlan", "bond0", 30, None)),
    ("create_ipoib_child", ("ib0.8001", 7, "ib0", 0x8001), ("ib0.8001", "ipoib", "ib0", None, 0x8001)),
])
def test_a_link_on_a_link_written_by_pyroute2_reads_back_as_its_id_and_parent(create, args, want):
    """A VLAN (IFLA_VLAN_ID) or an IPoIB P_Key child (IFLA_IPOIB_PKEY) on
    ifindex 7, as our read side decodes pyroute2's request."""
    nl = netlink.Netlink()
    captured = _Captured()
    nl._ipr = captured.ipr
    try:
        getattr(nl, create)(*args)
        raw = netlink.parse_link(captured.body())
    finally:
        nl.close()
    obs = netlink._link_obs(raw, {7: args[2]})
    assert (obs.name, obs.kind, obs.parent, obs.vlan_id, obs.pkey) == want
