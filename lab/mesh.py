# SPDX-License-Identifier: GPL-2.0-or-later
"""`make lab-mesh`: a three-node full mesh (MachineA, B, C), one cable per
pair and one /30 per cable, ib40 installed with apt on each and configured
from one /etc/ib40.conf with routes to the far cable (through its owner,
metric 0, and through the third node, metric 100). Prints figures: pings
and iperf3 between all pairs over the direct cables, then over a route, then
the same route with the A-B cable cut. Figures, not a test (tests/kernel/
test_routes_netns.py is the test, in network namespaces).

Each VM has two NICs, c1 = eth40a and c2 = eth40b:
  A.c1 - B.c1   10.0.12.0/30  (A .1, B .2)
  A.c2 - C.c1   10.0.13.0/30  (A .1, C .2)
  B.c2 - C.c2   10.0.23.0/30  (B .1, C .2)
"""
import itertools
import json
import sys
import threading
import time

from ib40d.core import iperf
from lab import scenario
from lab.image import DEFAULT_SUITE, build_image
from lab.vm import RUN, VM, free_udp_port

# node -> [(NIC, peer node, peer NIC, this end's address, far cable, far cable's gateway via this NIC's peer)]
CABLES = {("a", "c1"): ("b", "c1"), ("a", "c2"): ("c", "c1"), ("b", "c2"): ("c", "c2")}
SUBNET = {frozenset("ab"): "10.0.12", frozenset("ac"): "10.0.13", frozenset("bc"): "10.0.23"}
NAMES = {"c1": "eth40a", "c2": "eth40b"}


def end_address(node, peer):
    """node's address on the node-peer cable: .1 for the first in name order."""
    return "%s.%d" % (SUBNET[frozenset(node + peer)], 1 if node < peer else 2)


def links_of(node):
    """[(nic, peer)] of NODE."""
    out = []
    for (x, x_nic), (y, y_nic) in CABLES.items():
        if x == node:
            out.append((x_nic, y))
        elif y == node:
            out.append((y_nic, x))
    return sorted(out)


def mesh_conf(node, macs):
    """NODE's /etc/ib40.conf: each port's /30, and the far cable (the one
    between the two others) through each neighbour, the second as backup."""
    others = sorted(set("abc") - {node})
    far = SUBNET[frozenset(others)] + ".0/30"
    text = "# ib40 lab: three-node full mesh, node %s\n" % node.upper()
    for i, (nic, peer) in enumerate(links_of(node)):
        metric = "" if i == 0 else " metric 100"
        text += ("\n[link %s]\nmac = %s\ntxqueuelen = 10000\naddress = %s/30\nroutes = %s via %s%s\n"
                 % (NAMES[nic], macs[int(nic[1]) - 1], end_address(node, peer), far, end_address(peer, node), metric))
    return text


def start_mesh(image):
    ports = {(node, nic): free_udp_port() for node in "abc" for nic in ("c1", "c2")}
    peer_of = dict(CABLES)
    peer_of.update({v: k for k, v in CABLES.items()})
    vms = {}
    for node in "abc":
        wires = [(nic, ports[(node, nic)], ports[peer_of[(node, nic)]]) for nic in ("c1", "c2")]
        vms[node] = VM(node, image, RUN + "/mesh", wires)
    return vms


def parallel(vms, fn):
    errors = []

    def one(vm):
        try:
            fn(vm)
        except BaseException as exc:  # noqa: B902 - re-raised below
            errors.append(exc)
    threads = [threading.Thread(target=one, args=(vm,)) for vm in vms.values()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]


def iperf3(src, dst_address, dst):
    dst.run("iperf3 -s -D -1 -B %s --logfile /tmp/iperf3-mesh.log" % dst_address)
    time.sleep(1)
    res = src.run("iperf3 -J -c %s -t 5" % dst_address, timeout=60, check=False)
    result = iperf.parse_json(res.out)
    return "%.2f Gbit/s" % result.received_gbit_s if result.ok else "failed: %s" % result.error


def main():
    t0 = time.monotonic()
    image = build_image(DEFAULT_SUITE)
    deb = scenario.ensure_deb()
    vms = start_mesh(image)
    figures = []

    def figure(line):
        figures.append(line)
        print("[mesh] " + line, flush=True)
    try:
        for vm in vms.values():
            vm.start()
        parallel(vms, lambda vm: vm.wait_boot(600))
        figure("three machines booted in %.0f s" % (time.monotonic() - t0))

        def setup(vm):
            scenario.install_deb(vm, deb)
            # forward for the others; skip a route out of a port without carrier
            vm.put("/etc/sysctl.d/90-mesh.conf", "net.ipv4.ip_forward = 1\n"
                   "net.ipv4.conf.all.ignore_routes_with_linkdown = 1\n")
            scenario.configure(vm, mesh_conf(vm.key, vm.macs))
        parallel(vms, setup)
        parallel(vms, lambda vm: vm.reboot(600))
        parallel(vms, lambda vm: scenario.wait_running(vm, 300))
        figure("installed, configured, rebooted: %.0f s from the start" % (time.monotonic() - t0))
        for vm in vms.values():
            plan = vm.run("ib40d plan", check=False)
            routes = json.loads(vm.run("ip -j route show proto static").out)
            figure("%s: ib40d plan rc %d (0: converged at boot); ib40's routes: %s"
                   % (vm.hostname, plan.rc, ", ".join("%s via %s dev %s metric %s" % (
                       r["dst"], r.get("gateway"), r["dev"], r.get("metric", 0)) for r in routes)))

        for x, y in itertools.permutations("abc", 2):
            loss = scenario.ping(vms[x], end_address(y, x), 3, 50)
            figure("ping %s -> %s (%s, direct cable): %s" % (x.upper(), y.upper(), end_address(y, x), loss))
        for x, y in itertools.combinations("abc", 2):
            figure("iperf3 %s -> %s direct cable: %s" % (x.upper(), y.upper(),
                                                          iperf3(vms[x], end_address(y, x), vms[y])))
        routed = end_address("c", "b")  # C's end of the B-C cable: from A, through B
        loss = scenario.ping(vms["a"], routed, 3, 50)
        trace = vms["a"].run("ip route get %s" % routed).out.strip()
        figure("ping A -> %s over the route (%s): %s" % (routed, trace, loss))
        figure("iperf3 A -> %s over the route through B: %s" % (routed, iperf3(vms["a"], routed, vms["c"])))
        vms["a"].set_link("c1", False)
        vms["b"].set_link("c1", False)
        time.sleep(2)
        loss = scenario.ping(vms["a"], routed, 3, 50)
        trace = vms["a"].run("ip route get %s" % routed).out.strip()
        figure("A-B cable cut: ping A -> %s over the backup route (%s): %s" % (routed, trace, loss))
    finally:
        for vm in vms.values():
            vm.kill()
    print("\n".join(["", "lab-mesh figures:"] + figures))
    return 0


if __name__ == "__main__":
    sys.exit(main())
