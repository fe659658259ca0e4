# SPDX-License-Identifier: GPL-2.0-or-later
"""doctor on fake machines: each fault gives its finding, a healthy one none."""

import json
import shutil

import pytest
from fake_pci import FakeMachine, downgraded_gen3_x4, healthy_gen3_x8
from helpers import HOWTO_BOND, fixture_output

from ib40d.commands import cli, doctor
from ib40d.core.config import parse_text
from ib40d.system.sysroot import SysRoot

BDF = "0000:05:00.0"

IB_CONFIG = """\
[card]
pci = 0000:05:00.0
port1 = ib
port2 = ib

[ipoib ib0]
mode = connected
mtu = 65520
address = 10.30.0.1/24
"""

BOND_CONFIG = """\
[card]
pci = 0000:05:00.0
port1 = eth
port2 = eth

""" + HOWTO_BOND


def ib_machine(tmp_path, *, port_state="4: ACTIVE", sm_lid="0x1", mode="connected", mtu=65520,
               builder=healthy_gen3_x8) -> FakeMachine:
    m = builder(tmp_path)
    m.add_ib_device(BDF, "mlx4_0", {1: {"state": port_state, "sm_lid": sm_lid},
                                    2: {"state": "4: ACTIVE"}})
    m.add_ipoib("ib0", pci=BDF, mode=mode, mtu=mtu, speed_mbps=None)
    m.tuned_sysctl()
    return m


def bond_machine(tmp_path, *, failures=None, down=(), proc_text=None) -> FakeMachine:
    m = healthy_gen3_x8(tmp_path)
    # slaves first: the bond's /proc/net/bonding text shows their own MACs
    m.add_netdev("eth40a", pci=BDF, mac="00:02:c9:3e:ca:b1", txqueuelen=10000, master="bond0")
    m.add_netdev("eth40b", pci=BDF, mac="00:02:c9:3e:ca:b0", txqueuelen=10000, master="bond0",
                 carrier="eth40b" not in down)
    m.add_bond("bond0", ["eth40a", "eth40b"], proc_text=proc_text, failures=failures, down=down)
    m.tuned_sysctl()
    return m


def findings(tmp_path, config_text=None):
    cfg = parse_text(config_text) if config_text else None
    obs = doctor.observe(SysRoot(tmp_path), cfg)
    return obs, doctor.diagnose(obs, cfg)


def not_ok(fs):
    return [f for f in fs if f.severity != "ok"]


def by_code(fs, code):
    found = [f for f in fs if f.code == code]
    assert found, f"no {code} finding in {[f.code for f in fs]}"
    return found


# ------------------------------------------------------------------ healthy

def test_healthy_ib_tree_has_no_finding(tmp_path):
    ib_machine(tmp_path)
    obs, fs = findings(tmp_path, IB_CONFIG)
    assert not_ok(fs) == []
    assert [c.pci for c in obs.cards] == [BDF]
    assert by_code(fs, "pcie")[0].message.startswith("ConnectX-3 at 0000:05:00.0: PCIe Gen3 x8 = 63.0 Gbit/s")
    assert len(by_code(fs, "ib-port")) == 2


def test_healthy_bond_tree_has_no_finding(tmp_path):
    bond_machine(tmp_path)
    obs, fs = findings(tmp_path, BOND_CONFIG)
    assert not_ok(fs) == []
    assert by_code(fs, "bond")[0].message == "bond0: balance-rr, 2 slave(s) up"
    # Both 40G ports up on a 63 Gbit/s link: said, but not a fault.
    assert "both ports together (80.0 Gbit/s)" in by_code(fs, "pcie")[0].message


def test_healthy_tree_exit_0_and_json_schema(tmp_path, capsys):
    ib_machine(tmp_path)
    conf = FakeMachine(tmp_path).write_config(IB_CONFIG)
    assert cli.main(["doctor", "--root", str(tmp_path), "--json"]) == 0
    rep = json.loads(capsys.readouterr().out)
    assert rep["config"] == conf
    card = rep["cards"][0]
    assert card["pci"] == BDF and card["numa_node"] == 0
    assert {k: card["pcie"][k] for k in ("speed_gt_s", "width", "max_speed_gt_s", "max_width",
                                         "bandwidth_gbit_s")} == {
        "speed_gt_s": 8.0, "width": 8, "max_speed_gt_s": 8.0, "max_width": 8, "bandwidth_gbit_s": 63.02}
    assert card["netdevs"] == ["ib0"] and card["ib_devices"] == ["mlx4_0"]
    for f in rep["findings"]:
        assert set(f) >= {"severity", "code", "message", "fix"}
        assert f["severity"] in ("ok", "warning", "problem")
    assert rep["problems"] == 0


# ------------------------------------------------------------------ PCIe

def test_downgraded_gen3_x4_is_one_problem_line_with_its_fix(tmp_path, capsys):
    m = ib_machine(tmp_path, builder=downgraded_gen3_x4)
    _, fs = findings(tmp_path, IB_CONFIG)
    (f,) = not_ok(fs)
    assert (f.severity, f.code) == ("problem", "pcie-downgraded")
    assert "\n" not in f.message
    assert "PCIe Gen3 x4 = 31.5 Gbit/s" in f.message and "x4 of x8 lanes" in f.message
    assert "below its 40.0 Gbit/s port" in f.message and "Gen3 x8 = 63.0 Gbit/s" in f.message
    assert "slot wired x8" in f.fix
    m.write_config(IB_CONFIG)
    assert cli.main(["doctor", "--root", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "PROBLEM  pcie-downgraded: ConnectX-3 at 0000:05:00.0 runs at PCIe Gen3 x4" in out
    assert "fix: move the card to a slot wired x8" in out


def test_gen2_speed_downgrade_names_the_bios(tmp_path):
    m = FakeMachine(tmp_path)
    m.add_connectx3(BDF, speed="5.0 GT/s PCIe", width=8, max_speed="8.0 GT/s PCIe", max_width=8)
    _, fs = findings(tmp_path)
    (f,) = by_code(fs, "pcie-downgraded")
    assert f.severity == "problem" and "Gen2 of Gen3" in f.message and "32.0 Gbit/s" in f.message
    assert "BIOS" in f.fix


def test_downgraded_but_enough_for_the_port_is_a_warning(tmp_path):
    # A Gen3 x16-capable card (ConnectX-4 class) in an x8 slot: 63 Gbit/s still feeds 40.
    m = FakeMachine(tmp_path)
    m.add_connectx3(BDF, width=8, max_width=16, device_id="0x1013")
    _, fs = findings(tmp_path)
    (f,) = by_code(fs, "pcie-downgraded")
    assert f.severity == "warning" and "still enough" in f.message
    assert "Mellanox device 0x1013" in f.message


def test_port_rate_from_ib_fdr_rate(tmp_path):
    # FDR 56 Gb/s port on a Gen2 x8 card link (32 Gbit/s, not downgraded).
    m = FakeMachine(tmp_path)
    m.add_connectx3(BDF, speed="5.0 GT/s PCIe", width=8, max_speed="5.0 GT/s PCIe", max_width=8)
    m.add_ib_device(BDF, "mlx4_0", {1: {"rate": "56 Gb/sec (4X FDR)"}})
    obs, fs = findings(tmp_path)
    (f,) = by_code(fs, "pcie-below-port-rate")
    assert f.severity == "problem" and "below its 56.0 Gbit/s port" in f.message
    assert obs.cards[0].limit_gbit_s == pytest.approx(32.0)


def test_numa_node_reported_on_multi_node_machines(tmp_path):
    m = FakeMachine(tmp_path)
    m.add_connectx3(BDF, numa_node=1)
    m._write("/sys/devices/system/node/node0/cpulist", "0-7")
    m._write("/sys/devices/system/node/node1/cpulist", "8-15")
    _, fs = findings(tmp_path)
    (f,) = by_code(fs, "numa")
    assert f.message == "ConnectX-3 at 0000:05:00.0 is on NUMA node 1 (CPUs 8-15)"
    assert "--cpunodebind=1" in f.fix


def test_vf_and_other_vendors_are_not_cards(tmp_path):
    m = healthy_gen3_x8(tmp_path)
    m.add_other_pci("0000:00:19.0")
    m.add_connectx3("0000:05:00.1", device_id="0x1004")
    m._write(m.device_dir("0000:05:00.1") + "/physfn/vendor", "0x15b3")
    obs, _ = findings(tmp_path)
    assert [c.pci for c in obs.cards] == [BDF]


def test_no_card(tmp_path):
    FakeMachine(tmp_path).tuned_sysctl()
    _, fs = findings(tmp_path)
    assert [(f.severity, f.code) for f in not_ok(fs)] == [("warning", "no-card")]
    _, fs = findings(tmp_path, IB_CONFIG)
    assert ("problem", "no-card") in [(f.severity, f.code) for f in fs]


# ------------------------------------------------------------------ InfiniBand

def test_no_subnet_manager(tmp_path):
    ib_machine(tmp_path, port_state="2: INIT", sm_lid="0x0")
    _, fs = findings(tmp_path, IB_CONFIG)
    (f,) = not_ok(fs)
    assert (f.severity, f.code) == ("problem", "ib-no-sm")
    assert f.message == "mlx4_0 port 1 is INIT and sees no subnet manager (sm_lid 0): IPoIB cannot come up"
    assert "opensm" in f.fix


def test_port_polling_is_a_warning(tmp_path):
    m = healthy_gen3_x8(tmp_path)
    m.add_ib_device(BDF, "mlx4_0", {1: {"state": "1: DOWN", "phys_state": "2: Polling",
                                        "rate": "10 Gb/sec (4X SDR)"}})
    obs, fs = findings(tmp_path)
    (f,) = by_code(fs, "ib-port-down")
    assert f.severity == "warning" and "Polling" in f.message
    assert obs.cards[0].port_gbit_s == 40.0  # a down port's rate is not the port's rate


def test_roce_port_is_not_an_ib_port(tmp_path):
    m = healthy_gen3_x8(tmp_path)
    m.add_ib_device(BDF, "mlx4_0", {1: {"state": "1: DOWN", "link_layer": "Ethernet"}})
    _, fs = findings(tmp_path)
    assert not [f for f in fs if f.code.startswith("ib-")]


def test_datagram_where_connected_is_configured(tmp_path):
    ib_machine(tmp_path, mode="datagram", mtu=2044)
    _, fs = findings(tmp_path, IB_CONFIG)
    codes = {(f.severity, f.code) for f in not_ok(fs)}
    assert codes == {("problem", "ipoib-mode"), ("problem", "ipoib-mtu")}
    (mode,) = by_code(fs, "ipoib-mode")
    assert mode.message == "ib0 runs in datagram mode, configured connected (datagram caps the MTU at 4092)"
    (mtu,) = by_code(fs, "ipoib-mtu")
    assert mtu.message == "ib0 MTU is 2044, configured 65520"


def test_datagram_without_config_is_a_warning(tmp_path):
    ib_machine(tmp_path, mode="datagram", mtu=2044)
    _, fs = findings(tmp_path)
    (f,) = not_ok(fs)
    assert (f.severity, f.code) == ("warning", "ipoib-datagram")
    assert "mode = connected" in f.fix
    assert by_code(fs, "no-config")[0].severity == "ok"


# ------------------------------------------------------------------ links and bond

def test_slave_down_with_failures(tmp_path):
    bond_machine(tmp_path, failures={"eth40b": 2}, down=("eth40b",))
    _, fs = findings(tmp_path, BOND_CONFIG)
    assert {(f.severity, f.code) for f in not_ok(fs)} == {("problem", "bond-slave-down"),
                                                          ("problem", "no-carrier")}
    (f,) = by_code(fs, "bond-slave-down")
    assert f.message == "bond0 slave eth40b: MII down, 2 link failures"


def test_slave_flapped_is_a_warning(tmp_path):
    bond_machine(tmp_path, failures={"eth40a": 1})
    _, fs = findings(tmp_path, BOND_CONFIG)
    (f,) = not_ok(fs)
    assert (f.severity, f.code) == ("warning", "bond-slave-flapped")
    assert f.message == "bond0 slave eth40a: up, but 1 link failure since the bond came up"


def test_real_proc_bonding_sample_slave_down(tmp_path):
    # telegraf's active-backup sample: eth3 down with 2 failures (real kernel text).
    text = fixture_output("bonding/active_backup_slave_down_failcount2_telegraf.txt")
    m = healthy_gen3_x8(tmp_path)
    m.add_bond("bond0", ["eth2", "eth3"], proc_text=text)
    _, fs = findings(tmp_path)
    downs = by_code(fs, "bond-slave-down")
    assert [f.message for f in downs] == ["bond0 slave eth3: MII down, 2 link failures"]


def test_configured_vs_actual_link_attributes(tmp_path):
    m = healthy_gen3_x8(tmp_path)
    m.add_netdev("eth40a", pci=BDF, mac="00:02:c9:3e:ca:b1", txqueuelen=1000, master="bond0")
    m.add_netdev("eth40b", pci=BDF, mac="00:02:c9:3e:ca:b0", txqueuelen=10000, up=False)
    m.add_bond("bond0", ["eth40a", "eth40b"], mode="active-backup")
    m.tuned_sysctl()
    _, fs = findings(tmp_path, BOND_CONFIG)
    got = {(f.code, f.message) for f in not_ok(fs)}
    assert got == {
        ("txqueuelen-mismatch", "eth40a txqueuelen is 1000, configured 10000"),
        ("link-admin-down", "eth40b is administratively down"),
        ("not-enslaved", "eth40b is not a slave of bond0"),
        ("bond-mode", "bond0 is active-backup, configured balance-rr"),
    }


def test_bond_settings_and_an_extra_slave_as_plan_sees_them(tmp_path):
    m = bond_machine(tmp_path)
    m._write("/sys/class/net/bond0/bonding/miimon", "50")
    m.add_netdev("eth9", mac="52:54:00:00:00:09", master="bond0")
    _, fs = findings(tmp_path, BOND_CONFIG)
    assert {(f.severity, f.code, f.message) for f in not_ok(fs)} == {
        ("warning", "bond-option", "bond0 miimon is 50, configured 100"),
        ("warning", "bond-extra-slave", "bond0 has slave eth9, which the config does not name")}


def test_a_bond_name_taken_by_a_plain_link(tmp_path):
    m = healthy_gen3_x8(tmp_path)
    m.add_netdev("eth40a", pci=BDF, mac="00:02:c9:3e:ca:b1", txqueuelen=10000)
    m.add_netdev("eth40b", pci=BDF, mac="00:02:c9:3e:ca:b0", txqueuelen=10000)
    m.add_netdev("bond0", mac="02:00:00:00:00:01")
    m.tuned_sysctl()
    _, fs = findings(tmp_path, BOND_CONFIG)
    (f,) = by_code(fs, "link-kind")
    assert f.message == "bond0 is of kind none (an Ethernet device), configured as [bond bond0]"
    assert not [f for f in fs if f.code in ("bond-mode", "bond-option", "link-missing")]


def test_missing_link(tmp_path):
    healthy_gen3_x8(tmp_path).tuned_sysctl()
    _, fs = findings(tmp_path, IB_CONFIG)
    (f,) = by_code(fs, "link-missing")
    assert f.severity == "problem" and f.message == "ib0 (configured) does not exist"


# ------------------------------------------------------------------ sysctl

def test_sysctl_untuned(tmp_path):
    m = ib_machine(tmp_path)
    m.untuned_sysctl()
    _, fs = findings(tmp_path, IB_CONFIG)
    (f,) = not_ok(fs)
    assert (f.severity, f.code) == ("warning", "sysctl")
    assert f.message.startswith("9 of 12 TCP/IP tuning values differ")
    assert "net.core.rmem_max = 212992 (want 4194304)" in f.details
    assert "net.ipv4.tcp_wmem = 4096 16384 4194304 (want 4096 65536 4194304)" in f.details
    # Debian's tcp_rmem (4096 131072 6291456) is at or above the HOWTO's in each
    # field, and tcp_sack / tcp_adv_win_scale already match: not flagged.
    flagged = {d.split(" = ")[0] for d in f.details}
    assert not flagged & {"net.ipv4.tcp_rmem", "net.ipv4.tcp_sack", "net.ipv4.tcp_adv_win_scale"}


def test_sysctl_larger_buffers_are_fine(tmp_path):
    m = ib_machine(tmp_path)
    m.set_sysctl("net.core.rmem_max", "67108864")
    m.set_sysctl("net.ipv4.tcp_rmem", "4096 131072 33554432")
    _, fs = findings(tmp_path, IB_CONFIG)
    assert not_ok(fs) == []


def test_sysctl_switched_off_in_config(tmp_path):
    m = ib_machine(tmp_path)
    m.untuned_sysctl()
    _, fs = findings(tmp_path, IB_CONFIG + "\n[sysctl]\ntuning = no\n")
    assert not_ok(fs) == []
    assert by_code(fs, "sysctl-off")[0].severity == "ok"


def test_captured_tree_without_proc_sys(tmp_path):
    ib_machine(tmp_path)
    shutil.rmtree(tmp_path / "proc/sys")
    _, fs = findings(tmp_path, IB_CONFIG)
    assert not_ok(fs) == [] and by_code(fs, "sysctl-unknown")


# ------------------------------------------------------------------ config handling

def test_invalid_config_is_exit_2(tmp_path, capsys):
    m = ib_machine(tmp_path)
    m.write_config("[ipoib ib0]\nmode = sideways\n")
    assert cli.main(["doctor", "--root", str(tmp_path)]) == 2
    assert "sideways" in capsys.readouterr().err


def test_explicit_missing_config_is_exit_2(tmp_path, capsys):
    ib_machine(tmp_path)
    assert cli.main(["doctor", "--root", str(tmp_path), "-c", str(tmp_path / "nope.conf")]) == 2


def test_no_config_still_runs(tmp_path, capsys):
    ib_machine(tmp_path)
    assert cli.main(["doctor", "--root", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ok       no-config: no /etc/ib40.conf: configured-vs-actual checks skipped" in out
    assert out.splitlines()[0].startswith("ConnectX-3 0000:05:00.0: PCIe Gen3 x8 = 63.0 Gbit/s (card: Gen3 x8)")


def test_local_limit_for_bench(tmp_path):
    downgraded_gen3_x4(tmp_path)
    limit, why = doctor.local_limit(SysRoot(tmp_path))
    assert limit == pytest.approx(31.51, abs=0.01)
    assert why == "ConnectX-3 at 0000:05:00.0: PCIe Gen3 x4 31.5 Gbit/s, port 40.0 Gbit/s"
    assert doctor.local_limit(SysRoot(tmp_path / "empty")) == (None, "no Mellanox card found here")


# ------------------------------------------------------------------ lspci fallback

class LiveLookingRoot(SysRoot):
    """A fake tree that doctor takes for the live machine (only then does it
    ask lspci, which would otherwise describe some other machine's bus)."""

    @property
    def is_live(self) -> bool:
        return True


def fake_lspci(bindir, bdf: str, sample: str) -> None:
    """Like the real lspci: `-vv -s SLOT` prints that device's block, and
    nothing (exit 0) for a slot that is not there."""
    bindir.mkdir(exist_ok=True)
    out = bindir / "lspci.out"
    out.write_text(fixture_output(f"lspci/{sample}"))
    script = bindir / "lspci"
    script.write_text(f'#!/bin/sh\n[ "$1 $2 $3" = "-vv -s {bdf}" ] && /bin/cat {out}\nexit 0\n')
    script.chmod(0o755)


def test_lspci_fallback_when_sysfs_has_no_link(tmp_path, monkeypatch):
    m = FakeMachine(tmp_path / "root")
    m.add_connectx3(BDF)
    dev = tmp_path / "root" / m.device_dir(BDF).lstrip("/")
    for attr in ("current_link_speed", "current_link_width", "max_link_speed", "max_link_width"):
        (dev / attr).unlink()
    fake_lspci(tmp_path / "bin", BDF, "cx4lx_mcx4121a_vvs_width_x4_downgraded.txt")
    monkeypatch.setenv("PATH", str(tmp_path / "bin"))
    obs = doctor.observe(LiveLookingRoot(tmp_path / "root"), None)
    link = obs.cards[0].pcie
    assert (link.source, link.speed_gt_s, link.width, link.max_width) == ("lspci", 8.0, 4, 8)
    (f,) = by_code(doctor.diagnose(obs, None), "pcie-downgraded")
    assert f.severity == "problem"
    # A captured tree never asks this machine's lspci.
    obs = doctor.observe(SysRoot(tmp_path / "root"), None)
    assert obs.cards[0].pcie is None
    assert obs.cards[0].as_dict()["pcie"]["bandwidth_gbit_s"] is None
    assert by_code(doctor.diagnose(obs, None), "pcie-unknown")[0].severity == "warning"


# ------------------------------------------------------------------ VLANs and card sections

@pytest.mark.parametrize("vid, device, wrong", [
    (31, "eth40a", "VLAN id 31, not 30"),
    (30, "eth40b", "on eth40b, not eth40a"),
    (31, "eth40b", "on eth40b, not eth40a and VLAN id 31, not 30"),
])
def test_a_vlan_on_another_link_or_with_another_id_says_what_and_how_to_fix_it(tmp_path, vid, device, wrong):
    """apply refuses to rewrite such a VLAN (the kernel changes neither);
    doctor says which differs and the fix, here and from a bundle of the
    machine (which keeps /proc/net/vlan, where the id and link are)."""
    from helpers import run_ib40d
    from test_status import fake_link, write

    root = tmp_path / "machine"
    for name in ("eth40a", "eth40b", "eth40a.30"):
        fake_link(root, name, "00:02:c9:3e:ca:b1")
    write(root, "/proc/net/vlan/eth40a.30", f"eth40a.30  VID: {vid}\t REORDER_HDR: 1  dev->priv_flags: 1021\n"
                                            f"Device: {device}\nINGRESS priority mappings: 0:0\n")
    conf = "[link eth40a]\n[link eth40b]\n[vlan eth40a.30]\nlink = eth40a\nid = 30\n"
    _, fs = findings(root, conf)
    (f,) = by_code(fs, "vlan-mismatch")
    assert (f.severity, f.message) == (
        "problem", f"eth40a.30 is VLAN {vid} on {device}; configured VLAN 30 on eth40a: {wrong}")
    assert f.fix.startswith("apply leaves it so (the kernel changes neither): `ip link del eth40a.30`, then "
                            "`ib40d apply`")
    write(root, "/etc/ib40.conf", conf)
    bundle = tmp_path / "b.tar.gz"
    run_ib40d("bundle", "--root", str(root), "-o", str(bundle), check_rc=0)
    rep = json.loads(run_ib40d("doctor", "--root", str(bundle), "--json").stdout)
    assert [x["message"] for x in rep["findings"] if x["code"] == "vlan-mismatch"] == [f.message]


@pytest.mark.parametrize("section, fix", [
    ("[card 0000:06:00.0]\n", "[card 0000:05:00.0]"),
    ("[card]\npci = 0000:06:00.0\n", "pci = 0000:05:00.0 in [card]"),
])
def test_a_card_section_for_an_address_where_no_card_is_names_the_cards_there(tmp_path, section, fix):
    ib_machine(tmp_path)
    _, fs = findings(tmp_path, section + "port1 = ib\nport2 = ib\n")
    (f,) = by_code(fs, "card-absent")
    label = section.split("\n")[0]
    assert (f.severity, f.message) == (
        "problem", f"{label}: no Mellanox card at 0000:06:00.0; present: 0000:05:00.0 (ConnectX-3)")
    assert f.fix == f"a typo, or the card moved to another slot: write {fix} for the card meant " \
                    "(`lspci -D -d 15b3:` lists them)"
    assert not [x for x in fs if x.code == "no-card"]
    # the card there is still judged; one named rightly gets no such finding
    assert by_code(fs, "pcie")[0].message.startswith("ConnectX-3 at 0000:05:00.0")
    _, fs = findings(tmp_path, IB_CONFIG)
    assert not [x for x in fs if x.code == "card-absent"]
