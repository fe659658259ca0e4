# SPDX-License-Identifier: GPL-2.0-or-later
"""Scenario 1, boot: after `apt install ./ib40.deb`, /etc/ib40.conf,
`systemctl enable` and a reboot, both machines come up with the HOWTO's
dual-port setup and nothing else to do."""
import json

import pytest

from lab import scenario

pytestmark = pytest.mark.lab


@pytest.mark.parametrize("key", ["a", "b"])
def test_boot_brings_up_the_configured_bond(ib40_lab, figures, key):
    vm = ib40_lab.vms[key]
    links = scenario.links(vm)
    for name, mac in zip(("eth40a", "eth40b"), vm.macs):
        assert name in links, "%s missing; links: %s" % (name, sorted(links))
        # a balance-rr slave carries bond0's MAC; its own stays in permaddr
        assert links[name].get("permaddr", links[name]["address"]) == mac
        assert links[name]["txqlen"] == 10000, (name, links[name]["txqlen"])
        assert links[name].get("master") == "bond0", (name, links[name].get("master"))
        assert scenario.addresses(vm, name) == [], "address on slave %s" % name

    bond = scenario.bond_state(vm)
    assert bond is not None, "no /proc/net/bonding/bond0"
    assert (bond["mode"], bond["miimon"], bond["updelay"], bond["downdelay"]) == ("balance-rr", 100, 200, 200)
    assert sorted((s["name"], s["mii_status"]) for s in bond["slaves"]) == [("eth40a", "up"), ("eth40b", "up")]
    assert scenario.addresses(vm, "bond0") == [(vm.address, 16)]
    assert links["bond0"]["operstate"] == "UP"

    state, failed = scenario.wait_running(vm)
    assert failed == "", "failed units:\n" + failed
    assert state == "running", state
    errors = vm.run("journalctl -b -q --no-pager -p err -u 'ib40*'", check=False).out.strip()
    assert errors == "", "error lines from ib40 units:\n" + errors

    ready = vm.bondready()
    finished_us = int(vm.run("systemctl show -P FinishTimestampMonotonic").out.strip() or 0)
    figures("boot", "%s: bond0 ready at uptime %.1f s (bond0 first seen %.1f s), boot finished %.1f s"
            % (vm.hostname, ready["ready_at"] or -1, ready["first_seen"] or -1, finished_us / 1e6))


@pytest.mark.parametrize("key", ["a", "b"])
def test_status_json_agrees_with_the_kernel(ib40_lab, figures, key):
    vm = ib40_lab.vms[key]
    status = json.loads(vm.run("ib40d status --json").out)
    kernel = scenario.links(vm)
    by_name = {l["name"]: l for l in status["links"]}
    for name in ("eth40a", "eth40b", "bond0"):
        mine, theirs = by_name[name], kernel[name]
        assert mine["exists"]
        assert (mine["mac"], mine["mtu"], mine["txqueuelen"]) == (theirs["address"], theirs["mtu"], theirs["txqlen"])
        assert mine["mismatches"] == [], (name, mine["mismatches"])
    assert [a["cidr"] for a in by_name["bond0"]["addresses"] if ":" not in a["cidr"]] == ["%s/16" % vm.address]
    bond = next(b for b in status["bonds"] if b["name"] == "bond0")
    assert bond == dict(scenario.bond_state(vm), name="bond0", exists=True)
    figures("status", "%s: ib40d status --json matches ip -d link and /proc/net/bonding" % vm.hostname)
