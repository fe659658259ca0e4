# SPDX-License-Identifier: GPL-2.0-or-later
"""Scenario: bond0 as a switch would want it, between the two machines:
802.3ad (two Linux bonds negotiate LACP with each other) with
xmit_hash_policy, lacp_rate, ad_select and min_links read back from
/proc/net/bonding, a VLAN on bond0 with its addresses, pings across it, and
a route through the peer. Applied by the running daemon (`systemctl reload
ib40d`), then once more by hand: nothing left to send. Runs before the
single-port scenario, which removes cable 2."""
import json
import re

import pytest

from lab import scenario

pytestmark = pytest.mark.lab

VLAN_ID = 30


def _last(vm):
    return vm.address.rsplit(".", 1)[1]


def lacp_conf(vm, peer):
    """A: route to 10.32.0.0/24 through B, which has an address there."""
    me, other = _last(vm), _last(peer)
    vlan_addresses = "10.31.0.%s/24" % me + ("" if vm.key == "a" else " 10.32.0.%s/24" % me)
    route = "routes = 10.32.0.0/24 via 10.31.0.%s\n" % other if vm.key == "a" else ""
    return (
        "# ib40 lab: LACP and a VLAN\n"
        "[link eth40a]\nmac = %s\ntxqueuelen = 10000\n\n"
        "[link eth40b]\nmac = %s\ntxqueuelen = 10000\n\n"
        "[bond bond0]\nslaves = eth40a eth40b\nmode = 802.3ad\nmiimon = 100\n"
        "xmit_hash_policy = layer3+4\nlacp_rate = fast\nad_select = bandwidth\nmin_links = 1\n"
        "address = %s/16\n\n"
        "[vlan bond0.%d]\nlink = bond0\nid = %d\naddress = %s\n%s"
    ) % (vm.macs[0], vm.macs[1], vm.address, VLAN_ID, VLAN_ID, vlan_addresses, route)


def lacp_partnered(vm):
    """Both ports in one aggregator whose partner is the other machine."""
    text = vm.run("cat /proc/net/bonding/bond0", check=False).out
    ports = re.search(r"Number of ports: (\d+)", text)
    partner = re.search(r"Partner Mac Address: (\S+)", text)
    if ports and partner and ports.group(1) == "2" and partner.group(1) != "00:00:00:00:00:00":
        return True
    return "ports %s, partner %s" % (ports and ports.group(1), partner and partner.group(1))


def test_lacp_bond_with_a_vlan_and_a_route(ib40_lab, figures):
    lab = ib40_lab
    vlan = "bond0.%d" % VLAN_ID
    try:
        for vm, peer in ((lab.a, lab.b), (lab.b, lab.a)):
            # virtio-net reports no duplex, which 802.3ad takes for half: each
            # port would stay an aggregator of its own. A switch port says full;
            # so does this (read at enslave time, which the mode change redoes).
            for port in ("eth40a", "eth40b"):
                vm.run("ethtool -s %s speed 10000 duplex full" % port)
            vm.put("/etc/ib40.conf", lacp_conf(vm, peer))
            vm.run("ib40d check")
            vm.run("systemctl reload ib40d.service", timeout=120)
        for vm in lab:
            waited = scenario.wait_for(vm, lacp_partnered, 60, "LACP partnered on both ports")
            bond = scenario.bond_state(vm)
            settings = {k: bond[k] for k in ("mode", "xmit_hash_policy", "lacp_rate", "ad_select", "min_links")}
            assert settings == {"mode": "802.3ad", "xmit_hash_policy": "layer3+4", "lacp_rate": "fast",
                                "ad_select": "bandwidth", "min_links": 1}, vm.run("cat /proc/net/bonding/bond0").out
            link = scenario.links(vm)[vlan]
            assert link["linkinfo"]["info_kind"] == "vlan" and link["linkinfo"]["info_data"]["id"] == VLAN_ID, link
            assert link["link"] == "bond0" and link["operstate"] == "UP", link
            figures("lacp", "%s: 802.3ad partnered %.1f s after reload; /proc/net/bonding: %s; %s up"
                    % (vm.hostname, waited, settings, vlan))
        a, b = lab.a, lab.b
        routes = json.loads(a.run("ip -j route show dev %s" % vlan).out)
        assert {"dst": "10.32.0.0/24", "gateway": "10.31.0.%s" % _last(b)} in [
            {k: r.get(k) for k in ("dst", "gateway")} for r in routes], routes
        for target in ("10.31.0.%s" % _last(b), "10.32.0.%s" % _last(b)):
            # "Partnered" can be read before both ports distribute, and the
            # VLAN's first packet waits for ARP: the window starts at the first answer.
            scenario.wait_for(a, lambda vm: vm.run("ping -n -c 1 -W 1 %s" % target, check=False).rc == 0
                              or "no answer yet", 30, "a first answer from %s over %s" % (target, vlan))
            loss = scenario.ping(a, target, 3, 50)
            figures("lacp", "ping A -> %s over %s: %s" % (target, vlan, loss))
            # It carries traffic; two emulated ports hashing layer3+4 lose the odd
            # packet (2 of 59 in two CI runs of three), which is no fault of ib40.
            assert loss.received >= 0.9 * loss.sent, str(loss)
        for vm in lab:
            again = json.loads(vm.run("ib40d apply --json", timeout=120).out)
            assert again["writes"] == 0 and again["ok"], again
    finally:
        for vm in lab:
            vm.put("/etc/ib40.conf", scenario.bond_conf(vm))
            vm.run("ip link del %s" % vlan, check=False)  # ib40 removes no VLAN it was told about
            vm.run("systemctl reload ib40d.service", timeout=120, check=False)
        for vm in lab:
            scenario.wait_for(vm, scenario.bond_complete, 30, "both slaves up after going back to balance-rr")
