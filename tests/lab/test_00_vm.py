# SPDX-License-Identifier: GPL-2.0-or-later
"""The bare lab, before ib40: two booted Debian machines whose NICs carry
the HOWTO's MACs and whose cables carry frames, checked from inside."""
import json

import pytest

pytestmark = [pytest.mark.lab, pytest.mark.both_releases]


def test_both_machines_boot_with_the_howto_macs(lab, figures):
    for vm in lab:
        assert vm.run("hostname").out.strip() == vm.hostname
        state = vm.run("systemctl is-system-running --wait", timeout=180, check=False).out.strip()
        macs = {l["address"] for l in json.loads(vm.run("ip -j link show").out)}
        assert set(vm.macs) <= macs, (vm.hostname, macs)
        uptime = float(vm.run("cat /proc/uptime").out.split()[0])
        figures("boot", "%s: %s at uptime %.1f s, NICs %s" % (vm.hostname, state, uptime, " ".join(vm.macs)))
        assert state in ("running", "degraded")
        # the bonding driver the product relies on ships with Debian's kernel
        vm.run("modinfo bonding >/dev/null")


def test_guest_versions(lab, figures):
    """What ib40 runs against on this release, for the record."""
    vm = lab.a
    pkgs = vm.run("dpkg-query -W -f '${Package} ${Version}\\n' python3 python3-pyroute2 python3-pyudev "
                  "python3-pystemd python3-sdnotify systemd udev iproute2").out.strip().splitlines()
    figures("versions", "%s, kernel %s: %s" % (vm.run(". /etc/os-release; echo $PRETTY_NAME").out.strip(),
                                               vm.run("uname -r").out.strip(), ", ".join(pkgs)))
    assert len(pkgs) == 8, pkgs


def test_cables_carry_frames_port_to_port(lab, figures):
    """Each cable joins port N of A to port N of B and nothing else: a
    link-local ping over port 1 of A reaches B only through B's port 1."""
    def nic_of(vm, mac):
        return next(l["ifname"] for l in json.loads(vm.run("ip -j link show").out)
                    if l["address"] == mac)
    for i in (0, 1):
        a_if, b_if = nic_of(lab.a, lab.a.macs[i]), nic_of(lab.b, lab.b.macs[i])
        for vm, ifname in ((lab.a, a_if), (lab.b, b_if)):
            vm.run("ip link set %s up" % ifname)
        b_ll = "fe80::" + _eui64(lab.b.macs[i])
        # DAD and carrier take a moment under emulation: a few tries.
        res = lab.a.run("for n in 1 2 3 4 5 6 7 8 9 10; do ping -c 3 -i 0.2 -W 1 %s%%%s && exit 0; sleep 1; done; exit 1"
                        % (b_ll, a_if), timeout=60, check=False)
        assert res.rc == 0, res.out
        figures("cables", "cable %d: A %s <-> B %s ok (%s)" % (i + 1, a_if, b_if, res.out.strip().splitlines()[-1]))
        for vm, ifname in ((lab.a, a_if), (lab.b, b_if)):
            vm.run("ip link set %s down" % ifname)


def _eui64(mac):
    b = [int(x, 16) for x in mac.split(":")]
    b[0] ^= 0x02
    w = b[:3] + [0xFF, 0xFE] + b[3:]
    return ":".join("%x" % (w[i] << 8 | w[i + 1]) for i in range(0, 8, 2))
