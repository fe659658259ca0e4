# SPDX-License-Identifier: GPL-2.0-or-later
"""IB ports from ibstat, ibstat -p and ibstatus samples (every fixture), and
from fake sysfs trees built out of those samples."""

from fake_ib import BDF, FakeIBMachine, cx3_eth_mode, cx3_ib_mode, cx3_mixed_mode
from helpers import FIXTURES, fixture_output

import support_parsers

from ib40d.core import ibports
from ib40d.system import sysfs
from ib40d.system.sysroot import SysRoot


def test_every_fixture_is_covered_here():
    assert {p.name for p in (FIXTURES / "ibstat").iterdir()} == {
        "ibstat_cx3_mt4099_fdr56_both_ports_active.txt",
        "ibstat_cx3_mt4099_initializing_fdr10_port2_disabled.txt",
        # errors between CAs, redactions, no indentation: tests/unit/test_tool_outputs.py
        "ibstat_ibpanic_only_azure_an0.txt",
        "ibstat_mlx5_ib0_unindented_initializing_azure.txt",
        "ibstat_mlx5_redacted_then_ibpanic_gpud.txt",
        "ibstat_cx7_mt4129_rate200_ib_plus_broadcom_roce_down_disabled.txt",
        "ibstat_mt26428_qdr_active_no_link_layer.txt",
        "ibstat_p_cx3_two_port_guids.txt",
    }
    assert {p.name for p in (FIXTURES / "ibstatus").iterdir()} == {
        "ibstatus_cx3_qdr_single_port_active.txt",
        "ibstatus_err_sys_files_not_found.txt",
        "ibstatus_mlx5_roce_link_layer_ethernet_100g_edr.txt",
    }


def ports_of(rel):
    return [(p.device, p.port, p.guid, p.link_layer, p.state, p.phys_state, p.rate_gbps, p.sm_lid, p.lid)
            for ca in support_parsers.parse_ibstat(fixture_output(rel)) for p in ca["ports"]]


def test_ibstat_cx3_fdr56_tabs_both_active():
    [ca] = support_parsers.parse_ibstat(fixture_output("ibstat/ibstat_cx3_mt4099_fdr56_both_ports_active.txt"))
    assert (ca["ca"], ca["ca_type"], ca["num_ports"], ca["firmware"], ca["node_guid"]) == (
        "mlx4_0", "MT4099", 2, "2.42.5000", "0x0002c90300a4e720")
    assert ports_of("ibstat/ibstat_cx3_mt4099_fdr56_both_ports_active.txt") == [
        ("mlx4_0", 1, "0x0002c90300a4e721", "InfiniBand", "ACTIVE", "LinkUp", 56.0, 3, 3),
        ("mlx4_0", 2, "0x0002c90300a4e722", "InfiniBand", "ACTIVE", "LinkUp", 56.0, 2, 2),
    ]


def test_ibstat_initializing_no_sm_fdr10_suffix_and_disabled_port():
    assert ports_of("ibstat/ibstat_cx3_mt4099_initializing_fdr10_port2_disabled.txt") == [
        ("mlx4_0", 1, "0x5cf3fc000004ec03", "InfiniBand", "INIT", "LinkUp", 40.0, 0, 0),
        ("mlx4_0", 2, "0x5cf3fc000004ec04", "InfiniBand", "DOWN", "Disabled", 10.0, 0, 0),
    ]
    [ca] = support_parsers.parse_ibstat(fixture_output("ibstat/ibstat_cx3_mt4099_initializing_fdr10_port2_disabled.txt"))
    assert ca["ports"][0].rate == "40 (FDR10)"


def test_ibstat_cx7_plus_broadcom_roce_three_cas():
    cas = support_parsers.parse_ibstat(fixture_output(
        "ibstat/ibstat_cx7_mt4129_rate200_ib_plus_broadcom_roce_down_disabled.txt"))
    assert [c["ca"] for c in cas] == ["ibp23s0", "roceo1", "roceo2"]
    assert cas[1]["ca_type"] == "Broadcom NetXtreme-C/E RoCE Driver HCA"
    assert ports_of("ibstat/ibstat_cx7_mt4129_rate200_ib_plus_broadcom_roce_down_disabled.txt") == [
        ("ibp23s0", 1, "0x58a2e10300086f3c", "InfiniBand", "ACTIVE", "LinkUp", 200.0, 2, 2),
        ("roceo1", 1, "0x7ec255fffe871f04", "Ethernet", "ACTIVE", "LinkUp", 2.5, 0, 0),
        ("roceo2", 1, "0x7ec255fffe871f05", "Ethernet", "DOWN", "Disabled", 2.5, 0, 0),
    ]
    assert [p.is_infiniband for c in cas for p in c["ports"]] == [True, False, False]


def test_ibstat_old_without_link_layer_counts_as_infiniband():
    [ca] = support_parsers.parse_ibstat(fixture_output("ibstat/ibstat_mt26428_qdr_active_no_link_layer.txt"))
    assert ca["hardware"] == "b0"
    [p] = ca["ports"]
    assert (p.guid, p.link_layer, p.state, p.rate_gbps, p.sm_lid, p.lid) == (
        "0x002590ffff2e4f71", None, "ACTIVE", 40.0, 1, 2)
    assert p.is_infiniband


def test_ibstat_p_guids():
    assert support_parsers.parse_ibstat_guids(fixture_output("ibstat/ibstat_p_cx3_two_port_guids.txt")) == [
        "0x248a070300d2c691", "0x248a070300d2c692"]


def test_ibstatus_cx3_qdr_sysfs_texts():
    ports, errors = support_parsers.parse_ibstatus(fixture_output("ibstatus/ibstatus_cx3_qdr_single_port_active.txt"))
    assert errors == []
    [p] = ports
    assert (p.device, p.port, p.guid, p.link_layer, p.state, p.phys_state, p.rate, p.rate_gbps, p.sm_lid, p.lid) == (
        "mlx4_0", 1, "0x7cfe900300993001", "InfiniBand", "ACTIVE", "LinkUp", "40 Gb/sec (4X QDR)", 40.0, 2, 1)


def test_ibstatus_mlx5_roce_ethernet():
    ports, errors = support_parsers.parse_ibstatus(
        fixture_output("ibstatus/ibstatus_mlx5_roce_link_layer_ethernet_100g_edr.txt"))
    assert errors == []
    assert [(p.device, p.link_layer, p.rate_gbps, p.sm_lid, p.guid) for p in ports] == [
        ("mlx5_0", "Ethernet", 100.0, 0, "0x8ae9a4fffe9c7f1a"),
        ("mlx5_1", "Ethernet", 100.0, 0, "0x8ae9a4fffe9c7f1b"),
    ]


def test_ibstatus_no_devices_error():
    ports, errors = support_parsers.parse_ibstatus(fixture_output("ibstatus/ibstatus_err_sys_files_not_found.txt"))
    assert ports == []
    assert errors == ["device '*': sys files not found (/sys/class/infiniband/*/ports)"]


def test_sysfs_texts():
    assert ibports.parse_state("4: ACTIVE") == "ACTIVE"
    assert ibports.parse_state("2: INIT") == "INIT"
    assert ibports.parse_state("5: LinkUp", ibports.PHYS_STATES) == "LinkUp"
    assert ibports.parse_state("7: Phy Test", ibports.PHYS_STATES) == "Phy Test"
    assert ibports.parse_lid("0x1a") == 26
    assert ibports.guid_from_gid("fe80:0000:0000:0000:0002:c903:00a4:e721") == "0x0002c90300a4e721"
    assert ibports.guid_from_gid("garbage") is None
    assert support_parsers.normalize_guid("0002:c903:003f:02f1") == "0x0002c903003f02f1"


# ---------------------------------------------------------------- sysfs trees


def test_sysfs_ib_mode_reads_back_the_ibstat_sample(tmp_path):
    cx3_ib_mode(tmp_path)
    root = SysRoot(tmp_path)
    from_sysfs = sysfs.read_ports(root)
    [ca] = support_parsers.parse_ibstat(fixture_output("ibstat/ibstat_cx3_mt4099_fdr56_both_ports_active.txt"))
    assert [(p.device, p.port, p.guid, p.link_layer, p.state, p.phys_state, p.rate_gbps, p.sm_lid, p.lid)
            for p in from_sysfs] == [
        (p.device, p.port, p.guid, p.link_layer, p.state, p.phys_state, p.rate_gbps, p.sm_lid, p.lid)
        for p in ca["ports"]]
    assert from_sysfs[0].rate == "56 Gb/sec (4X FDR)"
    assert sysfs.device_pci(root, "mlx4_0") == BDF


def test_sysfs_mixed_mode_init_port_and_ethernet_port(tmp_path):
    cx3_mixed_mode(tmp_path)
    p1, p2 = sysfs.read_ports(SysRoot(tmp_path))
    assert (p1.state, p1.phys_state, p1.sm_lid, p1.rate) == ("INIT", "LinkUp", 0, "40 Gb/sec (4X FDR10)")
    assert (p2.link_layer, p2.is_infiniband) == ("Ethernet", False)


def test_sysfs_eth_mode_and_empty_tree(tmp_path):
    cx3_eth_mode(tmp_path / "eth")
    assert [p.link_layer for p in sysfs.read_ports(SysRoot(tmp_path / "eth"))] == ["Ethernet", "Ethernet"]
    FakeIBMachine(tmp_path / "none")
    assert sysfs.read_ports(SysRoot(tmp_path / "none")) == []
