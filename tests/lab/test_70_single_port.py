# SPDX-License-Identifier: GPL-2.0-or-later
"""Scenario 6, the HOWTO's single-port variant: one cable only (port 2
removed from both machines), `[link eth40a]` with its own address and no
bond, applied at boot."""
import pytest

from lab import guestconf, scenario

pytestmark = pytest.mark.lab


def test_single_port_comes_up_without_a_bond(ib40_lab, figures):
    lab = ib40_lab
    for vm in lab:
        vm.device_del("c2")
        scenario.wait_for(vm, lambda v: v.run("test -e /sys/class/net/eth40b", check=False).rc != 0
                          or "eth40b still there", 60, "port 2 removed")
        vm.put("/etc/ib40.conf", guestconf.ib40_single(vm.macs[0], vm.address))
        vm.run("ib40d check")
        vm.run("systemctl disable ib40-link@eth40b.service")
    ta, tb = lab.reboot()
    for vm in lab:
        state, failed = scenario.wait_running(vm)
        links = scenario.links(vm)
        assert "bond0" not in links and "eth40b" not in links, sorted(links)
        eth = links["eth40a"]
        assert eth["address"] == vm.macs[0] and eth["txqlen"] == 10000 and eth["operstate"] == "UP", eth
        assert scenario.addresses(vm, "eth40a") == [(vm.address, 24)]
        assert failed == "", failed
        figures("single", "%s: eth40a %s/24 txqueuelen 10000, no bond0, boot %s (reboot to agent %.0f s)"
                % (vm.hostname, vm.address, state, ta if vm is lab.a else tb))
    for src, dst in ((lab.a, lab.b), (lab.b, lab.a)):
        loss = scenario.ping(src, dst.address, 3, 50)
        figures("single", "ping %s -> %s over the one cable: %s" % (src.hostname, dst.hostname, loss))
        assert loss.lost <= 1, str(loss)
