# SPDX-License-Identifier: GPL-2.0-or-later
"""opensm: log and `systemctl status` parsers on every fixture, the gating
decision on fake trees for each case, the gate through a fake systemd."""

import json

import support_parsers
from helpers import run_ib40d
from fake_ib import BDF, FakeIBMachine, cx3_eth_mode, cx3_ib_mode, cx3_mixed_mode
from helpers import FIXTURES, fixture_output

from ib40d.system import sysfs
from ib40d.commands import opensm
from ib40d.core.config import parse_text
from ib40d.system.sysroot import SysRoot

INIT_GUID = "0x5cf3fc000004ec03"  # port 1 of the "Initializing, SM lid 0" sample
DISABLED_GUID = "0x5cf3fc000004ec04"


class FakeUnits:
    """systemd as the gate sees it: active units by name, start/stop recorded."""

    def __init__(self, active=()):
        self.active = set(active)
        self.started, self.stopped = [], []

    def active_units(self, pattern):
        prefix = pattern.rstrip("*")
        return {u for u in self.active if u.startswith(prefix)}

    def start(self, unit):
        self.started.append(unit)
        self.active.add(unit)

    def stop(self, unit):
        self.stopped.append(unit)
        self.active.discard(unit)


def test_every_fixture_is_covered_here():
    assert {p.name for p in (FIXTURES / "opensm").iterdir()} == {
        "syslog_opensm_3.2.6_discovering_sm_port_down.txt",
        "syslog_opensm_3.2.6_master_subnet_up.txt",
        "systemctl_status_opensm_launch_3.3.24_active_running.txt",
        "systemctl_status_opensm_lsb_standby.txt",
        "systemctl_status_opensm_systemd_native_active_exited_cx7.txt",
    }


# ---------------------------------------------------------------- parsers


def test_syslog_discovering_port_down_with_wrapped_line():
    events = support_parsers.parse_opensm_log(fixture_output("opensm/syslog_opensm_3.2.6_discovering_sm_port_down.txt"))
    assert [e.message for e in events] == [
        "/var/log/opensm.0x002590ffff2e4f6d.log log file opened", "OpenSM 3.2.6_20090317",
        "Entering DISCOVERING state", "SM port is down"]
    assert {(e.host, e.ident, e.pid) for e in events} == {("ts2", "OpenSM", 3527)}
    [inst] = support_parsers.sm_instances(events).values()
    assert (inst.pid, inst.guid, inst.version, inst.state, inst.port_down, inst.subnet_up) == (
        3527, "0x002590ffff2e4f6d", "3.2.6_20090317", "DISCOVERING", True, False)


def test_syslog_master_subnet_up():
    events = support_parsers.parse_opensm_log(fixture_output("opensm/syslog_opensm_3.2.6_master_subnet_up.txt"))
    assert [e.message for e in events] == ["Entering MASTER state", "SUBNET UP"]
    [inst] = support_parsers.sm_instances(events).values()
    assert (inst.pid, inst.state, inst.subnet_up, inst.guid) == (3527, "MASTER", True, None)


def test_systemctl_status_lsb_two_instances_one_standby():
    info = support_parsers.parse_systemctl_status(fixture_output("opensm/systemctl_status_opensm_lsb_standby.txt"))
    assert (info["unit"], info["description"], info["unit_file"], info["enabled"]) == (
        "opensm.service", "LSB: Start opensm subnet manager.", "/etc/init.d/opensm", "generated")
    assert (info["active"], info["sub"]) == ("active", "running")
    assert info["processes"] == [
        (3110, "/usr/sbin/opensm -g 0x0002c903003f02f2 -f /var/log/opensm.0x0002c903003f02f2.log")]
    assert info["guids"] == ["0x0002c903003f02f2", "0x0202c9fffe3f02f0"]
    inst = info["instances"]
    assert (inst[3110]["guid"], inst[3110]["state"], inst[3110]["version"]) == ("0x0002c903003f02f2", "STANDBY", "3.3.20")
    assert (inst[3107]["guid"], inst[3107]["state"]) == ("0x0202c9fffe3f02f0", "EXITED")


def test_systemctl_status_opensm_launch_running():
    info = support_parsers.parse_systemctl_status(
        fixture_output("opensm/systemctl_status_opensm_launch_3.3.24_active_running.txt"))
    assert (info["unit"], info["unit_file"], info["enabled"], info["active"], info["sub"], info["main_pid"]) == (
        "opensm.service", "/usr/lib/systemd/system/opensm.service", "disabled", "active", "running", 50757)
    assert info["processes"] == [(50757, "/usr/bin/bash /usr/libexec/opensm-launch"), (50769, "sleep 30")]
    assert info["guids"] == []
    assert info["instances"][50758]["log_file"] == "/var/log/opensm.log"
    assert info["instances"][50758]["version"] == "3.3.24"
    assert info["instances"][50758]["state"] is None


def test_systemctl_status_native_unit_active_exited():
    info = support_parsers.parse_systemctl_status(
        fixture_output("opensm/systemctl_status_opensm_systemd_native_active_exited_cx7.txt"))
    assert (info["description"], info["enabled"], info["active"], info["sub"], info["main_pid"]) == (
        "Starts the OpenSM InfiniBand fabric Subnet Managers", "enabled", "active", "exited", 7993)
    assert info["processes"] == []
    assert info["guids"] == ["0x58a2e10300086f3c"]
    assert info["instances"] == {}


# ---------------------------------------------------------------- decisions on fake trees


def decisions_for(root, start, ours=(), distro=()):
    ports = sysfs.read_ports(SysRoot(root))
    return [(d.port, d.action) for d in opensm.decide(start, ports, set(ours), set(distro))]


def test_auto_starts_only_on_the_linked_ib_port_without_sm(tmp_path):
    """Mixed card from the 'Initializing / SM lid 0' sample: port 1 IB,
    linked, no SM -> start; port 2 Ethernet -> nothing."""
    cx3_mixed_mode(tmp_path)
    ports = sysfs.read_ports(SysRoot(tmp_path))
    d1, d2 = opensm.decide("auto", ports, set())
    assert (d1.action, d1.guid, d1.unit) == ("start", INIT_GUID, f"ib40-opensm@{INIT_GUID}.service")
    assert "no subnet manager seen (sm_lid 0)" in d1.reason and "INIT" in d1.reason
    assert (d2.action, d2.reason) == ("none", "Ethernet port: no SM needed")


def test_auto_does_nothing_when_an_sm_is_seen(tmp_path):
    cx3_ib_mode(tmp_path)  # both ports Active with SM lids 3 and 2
    assert decisions_for(tmp_path, "auto") == [(1, "none"), (2, "none")]
    assert "a subnet manager is seen at lid 3" in opensm.decide("auto", sysfs.read_ports(SysRoot(tmp_path)), set())[0].reason


def test_auto_waits_while_the_port_has_no_link(tmp_path):
    m = FakeIBMachine(tmp_path)
    m.add_cx3(BDF)
    # The sample's port 2: Down / Disabled, SM lid 0.
    m.add_ib_ports_from_ibstat(BDF, "ibstat/ibstat_cx3_mt4099_initializing_fdr10_port2_disabled.txt", only=(2,))
    [d] = opensm.decide("auto", sysfs.read_ports(SysRoot(tmp_path)), set())
    assert (d.action, d.guid) == ("none", DISABLED_GUID)
    assert d.reason == "no link (physical state Disabled): waiting for a cable or peer"
    assert opensm.waiting_for_link(d)


def test_eth_card_never_gets_an_sm_and_ours_is_stopped(tmp_path):
    cx3_eth_mode(tmp_path)
    guid = sysfs.read_ports(SysRoot(tmp_path))[0].guid
    assert decisions_for(tmp_path, "always") == [(1, "none"), (2, "none")]
    assert decisions_for(tmp_path, "auto", ours={guid}) == [(1, "stop"), (2, "none")]


def test_running_sm_is_kept_even_when_an_sm_is_now_seen(tmp_path):
    cx3_ib_mode(tmp_path)  # sm_lid 3 == lid 3 on port 1: that SM is ours
    assert decisions_for(tmp_path, "auto", ours={"0x0002c90300a4e721"}) == [(1, "keep"), (2, "none")]


def test_always_and_never(tmp_path):
    cx3_ib_mode(tmp_path)
    assert decisions_for(tmp_path, "always") == [(1, "start"), (2, "start")]
    assert decisions_for(tmp_path, "never", ours={"0x0002c90300a4e722"}) == [(1, "none"), (2, "stop")]
    cx3_mixed_mode(tmp_path / "mixed")
    assert decisions_for(tmp_path / "mixed", "never") == [(1, "none"), (2, "none")]


def test_distro_opensm_for_the_port_counts_as_its_sm(tmp_path):
    cx3_mixed_mode(tmp_path)
    [d1, _] = opensm.decide("auto", sysfs.read_ports(SysRoot(tmp_path)), set(), {INIT_GUID})
    assert d1.action == "none"
    assert d1.reason == f"the opensm package already runs opensm@{INIT_GUID}.service for it"


# ---------------------------------------------------------------- the gate


def cfg(start="auto", priority=None):
    text = f"[opensm]\nstart = {start}\n" + (f"priority = {priority}\n" if priority is not None else "")
    return parse_text(text)


def test_gate_starts_our_unit_and_writes_the_priority(tmp_path):
    cx3_mixed_mode(tmp_path)
    root = SysRoot(tmp_path)
    units = FakeUnits()
    decisions, messages = opensm.gate(cfg(priority=7), root, units)
    assert units.started == [f"ib40-opensm@{INIT_GUID}.service"]
    assert (tmp_path / "run/ib40/opensm.env").read_text() == "IB40_OPENSM_PRIORITY=7\n"
    assert messages == [f"started ib40-opensm@{INIT_GUID}.service for mlx4_0 port 1: "
                        "linked, state INIT and no subnet manager seen (sm_lid 0)"]
    # Next run: it is ours and running: kept, not started twice.
    decisions, messages = opensm.gate(cfg(), root, units)
    assert [d.action for d in decisions] == ["keep", "none"] and messages == []
    assert units.started == [f"ib40-opensm@{INIT_GUID}.service"]


def test_gate_dry_run_changes_nothing(tmp_path):
    cx3_mixed_mode(tmp_path)
    units = FakeUnits()
    decisions, messages = opensm.gate(cfg(), SysRoot(tmp_path), units, dry_run=True)
    assert [d.action for d in decisions] == ["start", "none"]
    assert units.started == [] and messages == []
    assert not (tmp_path / "run/ib40/opensm.env").exists()


def test_gate_notes_the_distro_unit(tmp_path):
    cx3_mixed_mode(tmp_path)
    units = FakeUnits({f"opensm@{INIT_GUID}.service"})
    decisions, messages = opensm.gate(cfg(), SysRoot(tmp_path), units)
    assert units.started == []
    assert "PORTS=NONE" in messages[-1]


def test_gate_waits_for_the_link_then_starts(tmp_path):
    m = FakeIBMachine(tmp_path)
    m.add_cx3(BDF, port1="ib", port2="eth")
    m.add_ib_ports_from_ibstat(BDF, "ibstat/ibstat_cx3_mt4099_initializing_fdr10_port2_disabled.txt", only=(1,),
                               override={1: {"phys_state": "Polling", "state": "DOWN"}})
    port_dir = tmp_path / "sys/devices/pci0000:00/0000:00:01.0" / BDF / "infiniband/mlx4_0/ports/1"
    units = FakeUnits()
    now = [0.0]

    def sleep(seconds):  # the peer comes up while the gate waits
        now[0] += seconds
        if now[0] >= 4:
            (port_dir / "phys_state").write_text("5: LinkUp\n")
            (port_dir / "state").write_text("2: INIT\n")

    decisions, messages = opensm.gate_until_settled(cfg(), SysRoot(tmp_path), units, wait=30,
                                                    sleep=sleep, clock=lambda: now[0])
    assert units.started == [f"ib40-opensm@{INIT_GUID}.service"]
    assert now[0] == 4.0
    assert [d.action for d in decisions] == ["start"]


def test_gate_gives_up_waiting(tmp_path):
    m = FakeIBMachine(tmp_path)
    m.add_cx3(BDF)
    m.add_ib_ports_from_ibstat(BDF, "ibstat/ibstat_cx3_mt4099_initializing_fdr10_port2_disabled.txt", only=(2,))
    now = [0.0]
    units = FakeUnits()
    decisions, _ = opensm.gate_until_settled(cfg(), SysRoot(tmp_path), units, wait=10,
                                             sleep=lambda s: now.__setitem__(0, now[0] + s), clock=lambda: now[0])
    assert now[0] == 10.0 and units.started == []
    assert opensm.waiting_for_link(decisions[0])


def test_ports_status_rows(tmp_path):
    cx3_mixed_mode(tmp_path)
    rows = opensm.ports_status(SysRoot(tmp_path), units=FakeUnits({f"ib40-opensm@{INIT_GUID}.service"}))
    assert [(r["device"], r["port"], r["guid"], r["link_layer"], r["state"], r["phys_state"], r["rate"],
             r["sm_lid"], r["lid"], r["opensm_running"]) for r in rows] == [
        ("mlx4_0", 1, INIT_GUID, "InfiniBand", "INIT", "LinkUp", "40 Gb/sec (4X FDR10)", 0, 0, True),
        ("mlx4_0", 2, DISABLED_GUID, "Ethernet", "DOWN", "Disabled", "10 Gb/sec (4X SDR)", 0, 0, False),
    ]
    # A captured tree: systemd is not asked, so "running" is unknown.
    assert {r["opensm_running"] for r in opensm.ports_status(SysRoot(tmp_path))} == {None}


def test_cli_dry_run_json_on_a_captured_tree(tmp_path):
    m = cx3_mixed_mode(tmp_path / "root")
    m.write_config("[opensm]\nstart = auto\n")
    done = run_ib40d("opensm-gate", "--root", str(tmp_path / "root"), "--dry-run", "--json", check_rc=0)
    doc = json.loads(done.stdout)
    assert [(d["port"], d["action"], d["unit"]) for d in doc["decisions"]] == [
        (1, "start", f"ib40-opensm@{INIT_GUID}.service"), (2, "none", f"ib40-opensm@{DISABLED_GUID}.service")]
    refused = run_ib40d("opensm-gate", "--root", str(tmp_path / "root"), check_rc=1)
    assert "cannot reach systemd" in refused.stderr
