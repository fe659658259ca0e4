# SPDX-License-Identifier: GPL-2.0-or-later
"""Routes on the real kernel: a three-node full mesh, one /30 per veth
cable, in three network namespaces, each configured by `ib40d apply` from
its own file. Routes for the far cable go through the neighbour (metric 0)
and, as a backup, through the third node (metric 100)."""

import json
import subprocess
import time
import uuid

import pytest

from helpers import run_ib40d, run_ib40d_private_run
from test_netns import Monitor

pytestmark = pytest.mark.netns

# node -> (its links: name -> (address, routes))
MESH = {
    "a": {"ab": ("10.0.12.1/30", "10.0.23.0/30 via 10.0.12.2"),
          "ac": ("10.0.13.1/30", "10.0.23.0/30 via 10.0.13.2 metric 100")},
    "b": {"ba": ("10.0.12.2/30", "10.0.13.0/30 via 10.0.12.1"),
          "bc": ("10.0.23.1/30", "10.0.13.0/30 via 10.0.23.2 metric 100")},
    "c": {"cb": ("10.0.23.2/30", "10.0.12.0/30 via 10.0.23.1"),
          "ca": ("10.0.13.2/30", "10.0.12.0/30 via 10.0.13.1 metric 100")},
}
ECHO = """
import socket, struct, sys
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_ICMP)
s.settimeout(2)
body = struct.pack("!BBHHH", 8, 0, 0, 0x4940, 1) + b"ib40"
total = sum(struct.unpack("!%dH" % (len(body) // 2), body))
total = (total >> 16) + (total & 0xFFFF)
s.sendto(body[:2] + struct.pack("!H", ~(total + (total >> 16)) & 0xFFFF) + body[4:], (sys.argv[1], 0))
while True:
    data, (source, _) = s.recvfrom(1500)
    icmp = data[(data[0] & 15) * 4:]
    if source == sys.argv[1] and icmp[0] == 0 and icmp[4:6] == b"\\x49\\x40":
        break
"""
CABLES = (("a", "ab", "b", "ba"), ("b", "bc", "c", "cb"), ("a", "ac", "c", "ca"))


class RouteMonitor(Monitor):
    """test_netns's Monitor, watching routes too."""

    def __init__(self, ns):
        self.proc = subprocess.Popen(["ip", "-n", ns.name, "monitor", "link", "address", "route"],
                                     stdout=subprocess.PIPE, text=True)
        time.sleep(0.3)  # let it subscribe


class Node:
    def __init__(self, node: str, tmp_path):
        self.node = node
        self.name = f"ib40t-{uuid.uuid4().hex[:8]}"
        self.conf = tmp_path / f"{node}.conf"
        subprocess.run(["ip", "netns", "add", self.name], check=True)

    def ip(self, *args) -> str:
        return subprocess.run(["ip", "-n", self.name, *args], check=True, capture_output=True, text=True).stdout

    def write_conf(self, text: str | None = None) -> str:
        self.conf.write_text(text if text is not None else "".join(
            f"[link {link}]\naddress = {address}\nroutes = {routes}\n" for link, (address, routes) in MESH[self.node].items()))
        return str(self.conf)

    def apply(self) -> dict:
        proc = run_ib40d_private_run("apply", "-c", str(self.conf), "--json", netns=self.name)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        return json.loads(proc.stdout)

    def routes(self, dev: str) -> set[tuple]:
        return {(r["dst"], r.get("gateway"), r.get("metric", 0), r.get("protocol"))
                for r in json.loads(self.ip("-j", "route", "show", "dev", dev))}

    def ping(self, address: str) -> bool:
        """An ICMP echo answered, of three (this machine has no ping binary;
        the first may go while a neighbour is being resolved)."""
        return any(subprocess.run(["ip", "netns", "exec", self.name, "/usr/bin/python3", "-c", ECHO, address],
                                  capture_output=True).returncode == 0 for _ in range(3))


@pytest.fixture
def mesh(tmp_path):
    if subprocess.run(["id", "-u"], capture_output=True, text=True).stdout.strip() != "0":
        pytest.skip("needs root to create network namespaces")
    nodes = {}
    try:
        for n in MESH:
            nodes[n] = Node(n, tmp_path)
            nodes[n].ip("link", "set", "lo", "up")
            nodes[n].ip("link", "add", "other0", "type", "veth", "peer", "name", "other1")
            # forward for the others; a route out of a port without carrier is
            # skipped (the backup route then carries), as README advises
            subprocess.run(["ip", "netns", "exec", nodes[n].name, "sysctl", "-qw", "net.ipv4.ip_forward=1",
                            "net.ipv4.conf.all.ignore_routes_with_linkdown=1"], check=True)
        for x, x_link, y, y_link in CABLES:
            nodes[x].ip("link", "add", x_link, "type", "veth", "peer", "name", y_link, "netns", nodes[y].name)
        yield nodes
    finally:
        for node in nodes.values():
            subprocess.run(["ip", "netns", "del", node.name], check=False)


def test_three_node_mesh_routes_ping_fail_over_and_a_second_apply_sends_nothing(mesh):
    for node in mesh.values():
        node.write_conf()
        assert node.apply()["not_converged"] == []
    a = mesh["a"]
    assert ("10.0.23.0/30", "10.0.12.2", 0, "static") in a.routes("ab")
    assert ("10.0.23.0/30", "10.0.13.2", 100, "static") in a.routes("ac")
    every_address = [address.split("/")[0] for links in MESH.values() for address, _ in links.values()]
    for node in mesh.values():
        assert [addr for addr in every_address if not node.ping(addr)] == [], node.node

    time.sleep(2.5)  # IPv6 DAD and link-local routes settle, so their events don't count as ours
    monitor = RouteMonitor(a)
    second = a.apply()
    assert second["writes"] == 0 and monitor.stop() == []
    assert run_ib40d("plan", "-c", str(a.conf), netns=a.name).returncode == 0

    # the A-B cable goes (B's side has no carrier, A's is down): the metric 100 routes via C carry
    a.ip("link", "set", "ab", "down")
    assert a.ping("10.0.23.2") and a.ping("10.0.23.1")


def test_only_managed_routes_of_configured_links_are_removed(mesh):
    a = mesh["a"]
    a.write_conf()
    a.apply()
    a.ip("link", "set", "other0", "up")
    a.ip("address", "add", "10.0.99.1/24", "dev", "other0")
    a.ip("route", "add", "10.0.50.0/24", "via", "10.0.12.2", "dev", "ab")  # by hand: proto boot
    a.ip("route", "add", "10.0.51.0/24", "via", "10.0.12.2", "dev", "ab", "proto", "dhcp")
    a.ip("route", "add", "10.0.52.0/24", "via", "10.0.99.2", "dev", "other0")  # a link not in the config
    # ac no longer has a routes key: its routes are not ib40's business any more
    a.write_conf("[link ab]\naddress = 10.0.12.1/30\nroutes = 10.0.24.0/30 via 10.0.12.2 metric 7\n"
                 "[link ac]\naddress = 10.0.13.1/30\n")
    done = a.apply()["done"]
    assert sorted((x["kind"], x["changes"][0]["old"] or x["changes"][0]["new"]) for x in done) == [
        ("route.add", "10.0.24.0/30 via 10.0.12.2 metric 7"),
        ("route.del", "10.0.23.0/30 via 10.0.12.2 metric 0"),
        ("route.del", "10.0.50.0/24 via 10.0.12.2 metric 0")]
    assert {r[0] for r in a.routes("ab")} == {"10.0.12.0/30", "10.0.24.0/30", "10.0.51.0/24"}
    assert ("10.0.23.0/30", "10.0.13.2", 100, "static") in a.routes("ac")
    assert ("10.0.52.0/24", "10.0.99.2", 0, None) in a.routes("other0")  # ip -j leaves out proto boot
    assert a.apply()["writes"] == 0


def test_a_route_to_an_unreachable_gateway_is_refused_by_check_and_nothing_is_touched(mesh):
    a = mesh["a"]
    conf = a.write_conf("[link ab]\naddress = 10.0.12.1/30\nroutes = 10.0.23.0/30 via 10.0.13.2\n")
    proc = run_ib40d_private_run("apply", "-c", conf, netns=a.name)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert f"{conf}:3: [link ab] routes: gateway 10.0.13.2 of 10.0.23.0/30 is in none" in proc.stderr
    assert json.loads(a.ip("-j", "address", "show", "ab"))[0]["addr_info"] == []


def test_status_shows_a_missing_route(mesh):
    a = mesh["a"]
    a.write_conf()
    a.apply()
    a.ip("route", "del", "10.0.23.0/30", "via", "10.0.12.2", "dev", "ab")
    a.ip("route", "add", "10.0.60.0/24", "via", "10.0.12.2", "dev", "ab")
    status = json.loads(run_ib40d("status", "-c", str(a.conf), "--json", netns=a.name).stdout)
    ab = next(l for l in status["links"] if l["name"] == "ab")
    assert ab["mismatches"] == ["route 10.0.60.0/24 via 10.0.12.2 metric 0 not in the config",
                                "route 10.0.23.0/30 via 10.0.12.2 metric 0 missing"]
