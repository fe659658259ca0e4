# SPDX-License-Identifier: GPL-2.0-or-later
"""The package's own machinery in a booted guest: the units and udev rules
as installed by `apt install ./ib40.deb`, and ib40-sync.path regenerating
the rules when the file is saved by renaming a new one over it, also when
the save lands while a sync runs, and after a burst of writes to /etc. (The
CPU a boot pays: test_10_boot; hotplug and purge: test_40_hotplug,
test_80_purge.)"""
import os
import re

import pytest

from lab import scenario

pytestmark = pytest.mark.lab

LINKS = ("eth40a", "eth40b")
HOOKS = "/etc/udev/rules.d/90-ib40-hooks.rules"
NAMES = "/etc/udev/rules.d/70-ib40-names.rules"


def unit_state(vm, unit):
    return vm.run(["systemctl", "is-active", unit], check=False).out.strip()


def udev_props(vm, dev):
    out = vm.run(["udevadm", "info", "-q", "property", "/sys/class/net/" + dev]).out
    return dict(line.split("=", 1) for line in out.splitlines() if "=" in line)


@pytest.mark.both_releases
def test_systemd_analyze_verify_is_silent_on_the_installed_units(ib40_lab, figures):
    """The units as installed, checked by the guest's own systemd (252 on
    bookworm, 257 on trixie). opensm is a Recommends the offline guests
    skip: a stand-in /usr/sbin/opensm lets ib40-opensm@ be checked too.
    Any output is a finding (verify exits 0 on unknown keys)."""
    vm = ib40_lab.a
    units = vm.run("dpkg -L ib40 | grep -E '^/(usr/)?lib/systemd/system/[^/]+\\.(service|path)$'").out.split()
    names = [os.path.basename(u).replace("@.", "@eth40a." if "link@" in u else "@1.") for u in units]
    assert "ib40d.service" in names and "ib40-link@eth40a.service" in names, names
    shim = vm.run("test -e /usr/sbin/opensm", check=False).rc != 0
    if shim:
        vm.put("/usr/sbin/opensm", b"#!/bin/sh\nexit 0\n", mode="755")
    try:
        res = vm.run(["systemd-analyze", "verify", *names], check=False)
    finally:
        if shim:
            vm.run("rm -f /usr/sbin/opensm")
    systemd = vm.run("systemctl --version").out.split()[1]
    figures("units", "%s: systemd-analyze verify of %d units under systemd %s: %s"
            % (vm.hostname, len(names), systemd, (res.out + res.err).strip() or "silent"))
    assert (res.rc, (res.out + res.err).strip()) == (0, "")


@pytest.mark.both_releases
def test_opensm_gates_systemd_calls_work_with_this_releases_pystemd(ib40_lab, figures):
    """The gate lists, starts and stops units through pystemd (0.11 on
    bookworm, 0.13 on trixie). No card here, so the calls are made on a
    probe unit and compared with what systemctl says."""
    vm = ib40_lab.b
    probe = "lab-pystemd-probe.service"
    vm.put("/run/systemd/system/" + probe,
           "[Service]\nType=oneshot\nRemainAfterExit=yes\nExecStart=/bin/true\n")
    vm.run("systemctl daemon-reload")
    call = ("from ib40d.commands.opensm import SystemdUnits; u = SystemdUnits(); u.%s('%s');"
            "print(' '.join(sorted(u.active_units('lab-pystemd-*'))))")
    try:
        started = vm.run(["python3", "-c", call % ("start", probe)]).out.split()
        scenario.wait_for(vm, lambda v: unit_state(v, probe) == "active", 30, probe + " active")
        assert started == [probe], started
        active = vm.run(["python3", "-c", "from ib40d.commands.opensm import SystemdUnits;"
                         "print(' '.join(sorted(SystemdUnits().active_units('ib40*'))))"]).out.split()
        listed = vm.run("systemctl list-units --no-legend --plain --state=active,activating 'ib40*'"
                        " | awk '{print $1}'").out.split()
        assert sorted(listed) == active, (listed, active)
        vm.run(["python3", "-c", call % ("stop", probe)])
        scenario.wait_for(vm, lambda v: unit_state(v, probe) == "inactive", 30, probe + " stopped")
    finally:
        vm.run("systemctl stop %s; rm -f /run/systemd/system/%s; systemctl daemon-reload" % (probe, probe),
               check=False)
    version = vm.run("dpkg-query -W -f '${Version}' python3-pystemd").out
    figures("pystemd", "%s: python3-pystemd %s lists, starts and stops units (%d ib40 units active)"
            % (vm.hostname, version, len(active)))


@pytest.mark.parametrize("key", ["a", "b"])
def test_units_rules_and_marks_after_boot(ib40_lab, key):
    vm = ib40_lab.vms[key]
    for unit in ("ib40d.service", "ib40-sync.path", "ib40-sync-dropins.path",
                 "ib40-link@eth40a.service", "ib40-link@eth40b.service"):
        assert unit_state(vm, unit) == "active", unit
    # no mlx4 card, no RDMA device: the card's units are never started
    # (60-ib40-mlx4.rules pulls them in only when there is one)
    for unit in ("ib40-porttype.service", "ib40-opensm-gate.service"):
        assert unit_state(vm, unit) == "inactive", unit
    # READY=1 reached systemd, with the daemon's last STATUS=
    assert vm.run("systemctl show -P StatusText ib40d.service").out.strip() != ""
    rules = vm.run(["ls", "/etc/udev/rules.d"]).out.split()
    assert "70-ib40-names.rules" in rules and "90-ib40-hooks.rules" in rules
    renames = vm.run("journalctl -b -k -o cat --no-pager --grep 'renamed from'", check=False).out
    for name, mac in zip(LINKS, vm.macs):
        # the port got its name from the generated rule (udev named it ens*
        # first, the kernel's predictable name, as in the HOWTO)
        assert 'ATTR{address}=="%s"' % mac in vm.run(["cat", NAMES]).out
        assert re.search(r"\b%s: renamed from ens" % name, renames), renames
        # NM_UNMANAGED is in the udev database after every event (SYSTEMD_WANTS
        # only on "add", see the hotplug scenario)
        assert udev_props(vm, name).get("NM_UNMANAGED") == "1"


def test_editing_the_config_regenerates_the_rules(ib40_lab, figures):
    """ib40-sync.path sees the edit, `ib40d sync` rewrites the hooks and
    reloads udev; nothing is applied (the link units are not restarted)."""
    vm = ib40_lab.vms["a"]
    original = vm.get("/etc/ib40.conf").decode()
    starts_before = vm.run("systemctl show --value -p NRestarts -p ExecMainStartTimestampMonotonic "
                           "ib40-link@eth40a.service").out
    extra = "\n[link eth40z]\nmac = 02:00:00:00:40:7a\n"
    try:
        vm.put("/etc/ib40.conf", original + extra)
        secs = scenario.wait_for(vm, lambda v: "eth40z" in v.run(["cat", HOOKS]).out, 30,
                                 "hooks rules naming eth40z")
        figures("sync", "%s: config edit -> rules regenerated in %.1f s" % (vm.hostname, secs))
        assert 'ATTR{address}=="02:00:00:00:40:7a"' in vm.run(["cat", NAMES]).out
        # the files land (atomically) before sync reloads udev and logs it
        scenario.wait_for(vm, lambda v: "reloaded udev rules" in v.run(
            "journalctl -b -u ib40-sync.service --no-pager -o cat", check=False).out, 30,
            "ib40-sync.service logging 'reloaded udev rules'")
    finally:
        vm.put("/etc/ib40.conf", original)
        scenario.wait_for(vm, lambda v: "eth40z" not in v.run(["cat", HOOKS]).out, 30,
                          "hooks rules without eth40z")
    assert vm.run("systemctl show --value -p NRestarts -p ExecMainStartTimestampMonotonic "
                  "ib40-link@eth40a.service").out == starts_before


HOLD = "/run/systemd/system/ib40-sync.service.d/lab-hold.conf"


def test_a_save_while_sync_runs_is_synced_once_it_is_over(ib40_lab, figures):
    """systemd does not watch /etc while ib40-sync.service runs: a save
    landing after `ib40d sync` read the file is seen by no path unit.
    ib40-sync-check.service, started when the run is over, compares again
    and syncs it, with no daemon running (it used to be the daemon's job, 15
    s later). The run is held open after the sync by a drop-in, so that the
    save surely lands in it."""
    vm = ib40_lab.vms["a"]
    original = vm.get("/etc/ib40.conf").decode()
    extra = "\n[link eth40y]\nmac = 02:00:00:00:40:79\n"
    state = "systemctl show -P ActiveState ib40-sync.service"
    # when ib40-sync-check.service last ran its ExecStart, i.e. started a sync
    check_started = "systemctl show -P ExecMainStartTimestampMonotonic ib40-sync-check.service"
    vm.run(["mkdir", "-p", os.path.dirname(HOLD)])
    vm.put(HOLD, "[Service]\n# the lab holds the run open after the sync\nExecStartPost=/bin/sleep 8\n")
    vm.run("systemctl daemon-reload && systemctl stop ib40d.service", timeout=120)
    try:
        vm.put("/etc/ib40.conf", original + extra)
        scenario.wait_for(vm, lambda v: ("eth40y" in v.run(["cat", HOOKS]).out
                                         and v.run(state).out.strip() == "activating") or "not yet",
                          60, "the sync of eth40y done, its run held open")
        before = vm.run(check_started).out.strip()
        vm.put("/etc/ib40.conf", original)
        assert vm.run(state).out.strip() == "activating"  # the save landed while nothing watched
        secs = scenario.wait_for(vm, lambda v: "eth40y" not in v.run(["cat", HOOKS]).out or "not yet", 90,
                                 "hooks rules without eth40y")
        after = vm.run(check_started).out.strip()
        figures("sync", "%s: a save while ib40-sync.service ran (held 8 s), no daemon: synced %.1f s later"
                % (vm.hostname, secs))
    finally:
        vm.run(["rm", "-f", HOLD])
        vm.run("systemctl daemon-reload", timeout=120)
        vm.put("/etc/ib40.conf", original)
        vm.run("systemctl start ib40d.service", timeout=120)
        scenario.wait_for(vm, lambda v: "eth40y" not in v.run(["cat", HOOKS]).out or "not yet", 60,
                          "hooks rules without eth40y")
    assert vm.run("systemctl is-active ib40d.service", check=False).out.strip() == "active"
    assert after != before, vm.journal("-b -u ib40-sync.service -u ib40-sync-check.service --no-pager "
                                       "-o short-monotonic", lines=30)


def test_a_burst_of_writes_to_etc_leaves_the_sync_watching(ib40_lab, figures):
    """Every write to /etc starts ib40-sync.service (and ib40-sync-check):
    a burst (an apt run) must not hit systemd's start limit, which would
    fail them and the path units with them until the next boot."""
    vm = ib40_lab.vms["b"]
    original = vm.get("/etc/ib40.conf").decode()
    extra = "\n[link eth40x]\nmac = 02:00:00:00:40:78\n"
    vm.run("for i in $(seq 12); do echo $i > /etc/ib40-lab-burst; sleep 0.5; done; rm -f /etc/ib40-lab-burst",
           timeout=120)
    scenario.settle(vm)  # the last runs finish
    states = {unit: vm.run(["systemctl", "is-active", unit], check=False).out.strip()
              for unit in ("ib40-sync.path", "ib40-sync-dropins.path")}
    failed = vm.run("systemctl --failed --no-legend --plain 'ib40*'", check=False).out.strip()
    try:
        vm.put("/etc/ib40.conf", original + extra)
        secs = scenario.wait_for(vm, lambda v: "eth40x" in v.run(["cat", HOOKS]).out or "not yet", 60,
                                 "hooks rules naming eth40x after the burst")
    finally:
        vm.put("/etc/ib40.conf", original)
        scenario.wait_for(vm, lambda v: "eth40x" not in v.run(["cat", HOOKS]).out or "not yet", 60,
                          "hooks rules without eth40x")
    figures("sync", "%s: 12 writes to /etc in 6 s: path units %s, failed units [%s]; a save then synced in %.1f s"
            % (vm.hostname, ", ".join(sorted(set(states.values()))), failed, secs))
    assert states == {"ib40-sync.path": "active", "ib40-sync-dropins.path": "active"}, states
    assert failed == ""
