# SPDX-License-Identifier: GPL-2.0-or-later
"""Scenario 4, hotplug: a port removed (`device_del`) and added back with
the same MAC (`device_add`) is renamed, configured and re-enslaved with no
manual step, while ping keeps running over the other port."""
import threading
import time

import pytest

from lab import scenario

pytestmark = [pytest.mark.lab, pytest.mark.both_releases]


def _absent(name):
    return lambda vm: vm.run("test -e /sys/class/net/%s" % name, check=False).rc != 0 or "still there"


def test_port_removed_and_added_back_is_reenslaved(ib40_lab, figures):
    lab = ib40_lab
    a = lab.a
    for vm in lab:
        scenario.wait_for(vm, scenario.bond_complete, 60, "bond0 whole before the hotplug")
    timings = {}

    def hotplug():
        timings["t_del"] = time.monotonic()
        a.device_del("c2")
        timings["gone"] = scenario.wait_for(a, _absent("eth40b"), 60, "eth40b removed")
        bond = scenario.bond_state(a)
        timings["slaves_after_del"] = [s["name"] for s in bond["slaves"]]
        t0 = time.monotonic()
        a.device_add("c2", a.macs[1])
        timings["back"] = scenario.wait_for(a, scenario.bond_complete, 120, "eth40b re-enslaved")
        timings["t_back"] = time.monotonic()
        timings["total"] = timings["t_back"] - t0

    # Resolve B's neighbour entry for A first: while the port is away, an
    # ARP request sent down the dead cable would hold back every ping behind
    # it and blur what the window below measures.
    before = scenario.ping(lab.b, a.address, 1, 20)
    errors = []

    def run():
        try:
            hotplug()
        except Exception as exc:
            errors.append(exc)
    # ping from B over the whole removal/addition, long enough to cover it
    t = threading.Thread(target=run)
    try:
        loss = scenario.ping(lab.b, a.address, 200, 20, during=lambda: (t.start(), t.join()),
                             stop_after_during=True)
    finally:
        if not a.device_present("c2"):  # leave the port plugged for the next scenarios
            a.device_add("c2", a.macs[1])
    if errors:
        raise errors[0]
    assert timings["slaves_after_del"] == ["eth40a"], timings
    link = scenario.links(a)["eth40b"]
    assert link.get("permaddr", link["address"]) == a.macs[1]
    assert link["txqlen"] == 10000 and link["master"] == "bond0", link
    # The daemon re-enslaves the port from the link event itself; the unit
    # udev started for it (link-ready asking the daemon) finishes right after.
    def unit_state(vm):
        return vm.run("systemctl is-active ib40-link@eth40b.service", check=False).out.strip()

    timings["unit"] = scenario.wait_for(a, lambda v: unit_state(v) == "active", 60,
                                        "ib40-link@eth40b active")
    unit = unit_state(a)
    # Once re-enslaved, both cables carry B's round-robin again: B->A
    # packets that arrive on A's eth40b reach bond0 only if it is a slave,
    # and one whose updelay (200 ms) still runs drops them: "after" starts
    # when the bond shows it MII up.
    scenario.wait_for(a, scenario.bond_complete, 15, "eth40b up in bond0 again")
    after = scenario.ping(lab.b, a.address, 3, 20)
    # While A's port is away, B still sees carrier on its port 2 (nothing
    # tells it the far end left), so balance-rr keeps sending every other
    # packet down that cable: about half the pings sent between device_del
    # and the re-enslave are lost, and no others. The window is measured on
    # the host, so it errs long; the slack covers packets in flight.
    window_pings = (timings["t_back"] - timings["t_del"]) * 1000 / 20
    figures("hotplug", "A port 2 device_del: eth40b gone in %.1f s; device_add: renamed, "
            "configured, re-enslaved in %.1f s; ib40-link@eth40b %s; ping B->A meanwhile: %s "
            "(floor: half of the ~%d sent while the port was away); before: %s; after: %s"
            % (timings["gone"], timings["total"], unit, loss, window_pings, before, after))
    assert unit == "active"
    assert loss.lost <= window_pings / 2 + 3, (str(loss), window_pings)
    assert after.sent >= 50 and after.lost == 0, str(after)
