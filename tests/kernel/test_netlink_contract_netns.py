# SPDX-License-Identifier: GPL-2.0-or-later
"""The netlink contract on a real network namespace: the stdlib reads and
pyroute2 read it alike, and only a write pays for pyroute2."""

import json
import os
import socket
import subprocess
import sys
from ib40d.core.records import asdict

import pytest
from helpers import REPO, private_run

from ib40d.core import rtnl_constants
from ib40d.system import netlink
from ib40d.core.model import RouteObs
from ib40d.system.observe import AddrObs, LinkObs

TESTS = os.path.dirname(os.path.abspath(__file__))


def pyroute2_view() -> list[LinkObs]:
    """The namespace's links and addresses as pyroute2 decodes them, put into
    ib40's model by pyroute2's names and numbers only."""
    from pyroute2 import IPRoute
    from pyroute2.netlink.rtnl.ifaddrmsg import IFA_F_PERMANENT
    from pyroute2.netlink.rtnl.ifinfmsg import IFF_UP

    with IPRoute() as ipr:
        raw_links, raw_addrs = ipr.get_links(), ipr.get_addr()
        raw_routes = ipr.get_routes(family=socket.AF_UNSPEC, table=254)
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
    for link in links.values():
        link.routes = []
    for r in raw_routes:
        if r["type"] != 1 or r.get_attr("RTA_OIF") is None:  # unicast, one next hop
            continue
        dest = r.get_attr("RTA_DST") or ("0.0.0.0" if r["family"] == socket.AF_INET else "::")
        links[r.get_attr("RTA_OIF")].routes.append(RouteObs(
            f"{dest}/{r['dst_len']}", r.get_attr("RTA_GATEWAY"), r.get_attr("RTA_PRIORITY") or 0, r["proto"]))
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
    script = "import json, test_netlink_contract_netns as t; print(json.dumps(t.both_views()))"
    for _ in range(20):
        proc = ns.exec(sys.executable, "-c", script, env={"PYTHONPATH": f"{REPO}:{TESTS}:{os.path.dirname(TESTS)}"})
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
    ip("route", "add", "10.97.0.0/24", "via", "10.98.0.2", "dev", "v1", "metric", "7", "proto", "static")
    ip("route", "add", "default", "via", "10.98.0.3", "dev", "v1")
    ip("route", "add", "fd00:97::/64", "via", "fd00:98::2", "dev", "v1")

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
    assert {"dest": "10.97.0.0/24", "gateway": "10.98.0.2", "metric": 7, "protocol": 4} in v1["routes"]
    assert {"dest": "0.0.0.0/0", "gateway": "10.98.0.3", "metric": 0, "protocol": 3} in v1["routes"]
    assert {"dest": "fd00:97::/64", "gateway": "fd00:98::2", "metric": 1024, "protocol": 3} in v1["routes"]
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
    assert "import 'pyroute2.iproute.linux'" in first.stderr  # the first apply writes, through pyroute2's IPRoute
    for args in (("plan",), ("apply",)):
        proc = run(*args)
        assert proc.returncode == 0, proc.stderr[-2000:]
        assert "import 'ib40d.system.netlink'" in proc.stderr  # the verbose import log is really there
        assert "pyroute2" not in proc.stderr, args
