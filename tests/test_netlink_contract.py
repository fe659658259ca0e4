# SPDX-License-Identifier: GPL-2.0-or-later
"""The two halves of ib40d.system.netlink agree: the stdlib reads and pyroute2 (the
writes) use the same numbers, read a real network namespace into the same
LinkObs, and a bond's options encoded by a write read back as they were set.
pyroute2 is the independent decoder here: its tables and parsers are not ours."""

import json
import os
import socket
import subprocess
import sys
from dataclasses import asdict

import pytest
from helpers import REPO, private_run

from ib40d.system import netlink
from ib40d.core import rtnl_constants
from ib40d.system.observe import AddrObs, BondObs, LinkObs

TESTS = os.path.dirname(os.path.abspath(__file__))

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
    from pyroute2.netlink.rtnl import ifaddrmsg, ifinfmsg
    from pyroute2.netlink.rtnl.ifinfmsg.plugins.bond import bond

    numbers = {}
    for module in (nl, rtnl, ifinfmsg, ifaddrmsg, arp):
        numbers.update({k: v for k, v in vars(module).items() if k.isupper() and isinstance(v, int)})
    for cls in (ifinfmsg.ifinfmsg, ifinfmsg.ifinfmsg.ifinfo, bond, ifaddrmsg.ifaddrmsg):
        numbers.update(_nla_numbers(cls.nla_map))
    numbers["NLA_TYPE_MASK"] = ~(nl.NLA_F_NESTED | nl.NLA_F_NET_BYTEORDER) & 0xFFFF
    return numbers


def test_every_constant_is_the_number_pyroute2_uses():
    ours = {k: v for k, v in vars(rtnl_constants).items() if k.isupper() and isinstance(v, int)}
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
        name = f"IFLA_BOND_{option.upper()}"
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
     "arp_interval": 0, "arp_ip_target": ("192.0.2.1",)},
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


# ---------------------------------------------------------------- a real namespace


def pyroute2_view() -> list[LinkObs]:
    """The namespace's links and addresses as pyroute2 decodes them, put into
    ib40's model by pyroute2's names and numbers only."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_PERMANENT
    from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP

    with IPRoute() as ipr:
        raw_links, raw_addrs = ipr.get_links(), ipr.get_addr()
    names = {l["index"]: l.get_attr("IFLA_IFNAME") for l in raw_links}
    links = {}
    for l in raw_links:
        info = l.get_attr("IFLA_LINKINFO")
        carrier = l.get_attr("IFLA_CARRIER")
        oper = l.get_attr("IFLA_OPERSTATE")
        links[l["index"]] = LinkObs(
            name=l.get_attr("IFLA_IFNAME"), index=l["index"],
            kind=info.get_attr("IFLA_INFO_KIND") if info else None,
            arptype=l["ifi_type"], mac=l.get_attr("IFLA_ADDRESS"), perm_mac=l.get_attr("IFLA_PERM_ADDRESS"),
            mtu=l.get_attr("IFLA_MTU"), txqueuelen=l.get_attr("IFLA_TXQLEN"),
            admin_up=bool(l["flags"] & IFF_UP), carrier=None if carrier is None else bool(carrier),
            operstate=oper.lower() if oper else None,
            master=names.get(l.get_attr("IFLA_MASTER")) if l.get_attr("IFLA_MASTER") else None)
    for a in raw_addrs:
        v4 = a["family"] == socket.AF_INET
        ip = (a.get_attr("IFA_LOCAL") if v4 else None) or a.get_attr("IFA_ADDRESS")
        flags = a.get_attr("IFA_FLAGS") or a["flags"]
        links[a["index"]].addresses.append(
            AddrObs(f"{ip}/{a['prefixlen']}", a.get_attr("IFA_BROADCAST"), bool(flags & IFA_F_PERMANENT)))
    return list(links.values())


def both_views() -> dict:
    """Ours, pyroute2's, ours again: links settle (carrier, operstate, IPv6
    link-local addresses) while the namespace is young, so the caller only
    trusts a round in which ours did not change."""
    ours = [asdict(l) for l in netlink.Netlink().dump_links()]
    theirs = [asdict(l) for l in pyroute2_view()]
    again = [asdict(l) for l in netlink.Netlink().dump_links()]
    return {"ours": ours, "pyroute2": theirs, "stable": ours == again}


def read_in(ns) -> dict:
    script = "import json, test_netlink_contract as t; print(json.dumps(t.both_views()))"
    for _ in range(20):
        proc = ns.exec(sys.executable, "-c", script, env={"PYTHONPATH": f"{REPO}:{TESTS}"})
        assert proc.returncode == 0, proc.stderr
        views = json.loads(proc.stdout)
        if views["stable"]:
            return views
    pytest.fail("the namespace's links kept changing under the dumps")


@pytest.mark.netns
def test_stdlib_and_pyroute2_read_a_namespace_alike(netns):
    ip = netns.ip
    ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    ip("link", "add", "v3", "type", "veth", "peer", "name", "v4")  # v3 up, its peer down: no carrier
    ip("link", "add", "br0", "type", "bridge")
    ip("link", "add", "mv0", "link", "v1", "type", "macvlan", "mode", "bridge")
    ip("link", "set", "v1", "mtu", "9000", "txqueuelen", "5000")
    ip("link", "set", "v2", "master", "br0")
    ip("address", "add", "10.98.0.1/24", "broadcast", "10.98.0.255", "dev", "v1")
    ip("address", "add", "fd00:98::1/64", "dev", "v1", "nodad")
    ip("address", "add", "10.98.1.1/16", "dev", "br0")
    ip("address", "add", "10.98.2.1/24", "dev", "mv0", "valid_lft", "3600", "preferred_lft", "3600")
    ip("address", "add", "fd00:99::2/64", "dev", "mv0", "valid_lft", "3600", "preferred_lft", "1800", "nodad")
    for name in ("v1", "v2", "br0", "v3"):
        ip("link", "set", name, "up")

    views = read_in(netns)
    ours = {l["name"]: l for l in views["ours"]}
    # What was made is what our read sees...
    assert set(ours) == {"lo", "v1", "v2", "v3", "v4", "br0", "mv0"}
    v1, v2, br0, mv0 = ours["v1"], ours["v2"], ours["br0"], ours["mv0"]
    assert (v1["kind"], br0["kind"], mv0["kind"], ours["lo"]["kind"]) == ("veth", "bridge", "macvlan", None)
    assert (v1["mtu"], v1["txqueuelen"], v2["master"], v1["master"]) == (9000, 5000, "br0", None)
    assert (v1["admin_up"], br0["admin_up"], mv0["admin_up"], ours["lo"]["admin_up"]) == (True, True, False, False)
    assert (v1["carrier"], ours["v3"]["carrier"], v1["operstate"], ours["v4"]["operstate"]) == (
        True, False, "up", "down")
    assert (v1["arptype"], ours["lo"]["arptype"]) == (rtnl_constants.ARPHRD_ETHER, 772)
    assert {"cidr": "10.98.0.1/24", "broadcast": "10.98.0.255", "permanent": True} in v1["addresses"]
    assert {"cidr": "fd00:98::1/64", "broadcast": None, "permanent": True} in v1["addresses"]
    assert {"cidr": "10.98.1.1/16", "broadcast": None, "permanent": True} in br0["addresses"]
    assert mv0["addresses"] == [{"cidr": "10.98.2.1/24", "broadcast": None, "permanent": False},
                                {"cidr": "fd00:99::2/64", "broadcast": None, "permanent": False}]
    # ...and pyroute2 reads the same namespace into the same model, field for field.
    assert views["pyroute2"] == views["ours"]


@pytest.mark.netns
def test_plan_and_a_converged_apply_do_not_import_pyroute2(netns, tmp_path):
    """The reads are the stdlib's: only a write pays for pyroute2."""
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    conf = tmp_path / "ib40.conf"
    conf.write_text("[link v1]\nmtu = 9000\naddress = 10.97.0.1/24\n")
    env = dict(os.environ, PYTHONPATH=str(REPO), PYTHONVERBOSE="1")

    def run(*args):
        cmd = private_run([sys.executable, "-m", "ib40d", *args, "-c", str(conf)], netns.name)
        return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd=REPO, timeout=120)

    first = run("apply")
    assert first.returncode == 0, first.stderr[-2000:]
    assert "import 'pyroute2'" in first.stderr  # the first apply writes, through pyroute2
    for args in (("plan",), ("apply",)):
        proc = run(*args)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "import 'ib40d.system.netlink'" in proc.stderr  # the verbose import log is really there
        assert "pyroute2" not in proc.stderr, args
