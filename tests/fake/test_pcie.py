# SPDX-License-Identifier: GPL-2.0-or-later
import pytest
from fake_pci import FakeMachine, downgraded_gen3_x4, healthy_gen3_x8
from helpers import fixture_output

from ib40d.core import pcie
from ib40d.system import sysfs
from ib40d.system.sysroot import SysRoot


def fixture(rel: str) -> str:
    return fixture_output(rel)


# Per-lane throughput as the PCIe specs state it (MB/s, one direction):
# Gen1 2.5 GT/s and Gen2 5 GT/s with 8b/10b -> 250 and 500 MB/s; Gen3 8 GT/s,
# Gen4 16 GT/s and Gen5 32 GT/s with 128b/130b -> 984.6, 1969.2, 3938.5 MB/s.
# These are the HOWTO's first table (which rounds Gen3 to 985 MB/s and Gen4
# to 1.97 GB/s) extended to Gen5.
#
# The HOWTO's second table contradicts its own per-lane table for PCIe 2.x: it
# gives x1 as 250 MB/s and x4 as 1 GB/s, but 5 GT/s x 8/10 = 500 MB/s per lane,
# so x1 is 500 MB/s and x4 is 2 GB/s (x8 is 4 GB/s, not 2). We follow the spec.
SPEC_LANE_MBYTE_S = {1: 250.0, 2: 500.0, 3: 984.6, 4: 1969.2, 5: 3938.5}
SPEC_GT_S = {1: 2.5, 2: 5.0, 3: 8.0, 4: 16.0, 5: 32.0}


@pytest.mark.parametrize("gen", sorted(SPEC_LANE_MBYTE_S))
@pytest.mark.parametrize("width", [1, 2, 4, 8, 12, 16, 32])
def test_bandwidth_every_generation_and_width(gen, width):
    expected_gbit_s = SPEC_LANE_MBYTE_S[gen] * width * 8 / 1000
    got = pcie.bandwidth_gbit_s(SPEC_GT_S[gen], width)
    assert got == pytest.approx(expected_gbit_s, rel=1e-4)
    assert pcie.generation(SPEC_GT_S[gen]) == gen
    assert pcie.describe(SPEC_GT_S[gen], width) == f"Gen{gen} x{width}"


def test_howto_second_table_gen3_rows_agree_with_spec():
    # 3.x x4 = 3.94 GB/s and x8 = 7.88 GB/s in the HOWTO: right.
    assert pcie.bandwidth_gbit_s(8.0, 4) / 8 == pytest.approx(3.94, abs=0.005)
    assert pcie.bandwidth_gbit_s(8.0, 8) / 8 == pytest.approx(7.88, abs=0.005)


def test_howto_second_table_gen2_rows_are_wrong_and_we_use_the_spec():
    # HOWTO: "2.x | 5 GT/sec | x8 | x4 | 1 GBytes/sec" -- spec says 2 GB/s.
    assert pcie.bandwidth_gbit_s(5.0, 4) / 8 == pytest.approx(2.0)
    assert pcie.bandwidth_gbit_s(5.0, 1) / 8 == pytest.approx(0.5)


def test_40g_port_needs_gen3_x8_or_gen2_x16():
    # What doctor relies on: the slots that carry a 40 Gbit/s port and those that don't.
    assert pcie.bandwidth_gbit_s(8.0, 8) > 40 > pcie.bandwidth_gbit_s(8.0, 4)
    assert pcie.bandwidth_gbit_s(5.0, 8) < 40 < pcie.bandwidth_gbit_s(5.0, 16)


def test_unknown_rate_has_no_bandwidth():
    assert pcie.bandwidth_gbit_s(None, 8) is None
    assert pcie.bandwidth_gbit_s(8.0, None) is None
    assert pcie.bandwidth_gbit_s(64.0, 8) is None  # Gen6 FLIT encoding: not claimed
    assert pcie.generation(3.0) is None


@pytest.mark.parametrize("text,expected", [
    ("8.0 GT/s PCIe", 8.0),      # kernel >= 4.19
    ("2.5 GT/s PCIe", 2.5),
    ("16.0 GT/s PCIe", 16.0),
    ("32.0 GT/s PCIe", 32.0),
    ("5 GT/s", 5.0),             # older kernels
    ("8 GT/s", 8.0),
    ("2.5 GT/s", 2.5),
    ("Unknown", None),           # link down / rate newer than the kernel
    ("Unknown speed", None),
    ("", None),
    (None, None),
])
def test_sysfs_speed_strings(text, expected):
    assert pcie.parse_sysfs_speed(text) == expected


@pytest.mark.parametrize("text,expected", [("8", 8), ("4\n", 4), ("0", None), ("", None), (None, None), ("x8", None)])
def test_sysfs_width(text, expected):
    assert pcie.parse_sysfs_width(text) == expected


def test_sysfs_downgraded_gen3_x4(tmp_path):
    downgraded_gen3_x4(tmp_path)
    link = sysfs.read_pcie_link(SysRoot(tmp_path), "/sys/bus/pci/devices/0000:05:00.0")
    assert (link.speed_gt_s, link.width, link.max_speed_gt_s, link.max_width) == (8.0, 4, 8.0, 8)
    assert link.downgraded
    assert link.bandwidth_gbit_s == pytest.approx(31.51, abs=0.01)
    assert link.max_bandwidth_gbit_s == pytest.approx(63.02, abs=0.01)
    d = link.as_dict()
    assert d["bandwidth_gbit_s"] == 31.51 and d["generation"] == 3 and d["source"] == "sysfs"


def test_sysfs_healthy_gen3_x8(tmp_path):
    healthy_gen3_x8(tmp_path)
    link = sysfs.read_pcie_link(SysRoot(tmp_path), "/sys/bus/pci/devices/0000:05:00.0")
    assert not link.downgraded
    assert link.bandwidth_gbit_s == pytest.approx(63.02, abs=0.01)


def test_sysfs_gen2_slot_old_kernel_strings(tmp_path):
    m = FakeMachine(tmp_path)
    m.add_connectx3("0000:81:00.0", speed="5 GT/s", width=8, max_speed="8 GT/s", max_width=8)
    link = sysfs.read_pcie_link(SysRoot(tmp_path), "/sys/bus/pci/devices/0000:81:00.0")
    assert link.downgraded and link.bandwidth_gbit_s == pytest.approx(32.0)


def test_sysfs_without_link_attributes(tmp_path):
    m = FakeMachine(tmp_path)
    m.add_other_pci("0000:00:1f.0")
    assert sysfs.read_pcie_link(SysRoot(tmp_path), "/sys/bus/pci/devices/0000:00:1f.0") is None


# --------------------------------------------------------------- lspci samples

def test_lspci_grep_only_lnksta_cx3():
    link = pcie.parse_lspci(fixture("lspci/cx3_hp544_lnksta_grep_only.txt"))
    assert (link.speed_gt_s, link.width) == (8.0, 8)
    assert (link.max_speed_gt_s, link.max_width) == (None, None)  # no LnkCap in a grep'd line
    assert not link.downgraded
    assert link.source == "lspci"


def test_lspci_full_vvv_cx3_gen3_x8():
    link = pcie.parse_lspci(fixture("lspci/cx3_mcx354a_fcbt_vvv_x_full_8gt_x8.txt"))
    # LnkCap "Port #8, Speed 8GT/s, Width x8" -- "Port #8" must not be read as a width.
    assert (link.speed_gt_s, link.width, link.max_speed_gt_s, link.max_width) == (8.0, 8, 8.0, 8)
    assert not link.downgraded
    assert link.bandwidth_gbit_s == pytest.approx(63.02, abs=0.01)


def test_lspci_cx4lx_width_downgraded_annotation():
    link = pcie.parse_lspci(fixture("lspci/cx4lx_mcx4121a_vvs_width_x4_downgraded.txt"))
    # LnkCap2 "Supported Link Speeds: 2.5-8GT/s" and LnkSta2 must not confuse it.
    assert (link.speed_gt_s, link.width, link.max_speed_gt_s, link.max_width) == (8.0, 4, 8.0, 8)
    assert link.downgraded
    assert link.bandwidth_gbit_s == pytest.approx(31.51, abs=0.01)


def test_lspci_cx6_speed_downgraded_width_ok():
    link = pcie.parse_lspci(fixture("lspci/cx6_ocp3_grep_width_speed_downgraded_x16.txt"))
    assert (link.speed_gt_s, link.width, link.max_speed_gt_s, link.max_width) == (8.0, 16, 16.0, 16)
    assert link.downgraded
    assert link.bandwidth_gbit_s == pytest.approx(126.03, abs=0.01)
    assert link.max_bandwidth_gbit_s == pytest.approx(252.06, abs=0.01)


def test_lspci_cx6_x4_slot_not_downgraded_since_lnkcap_says_x4():
    link = pcie.parse_lspci(fixture("lspci/cx6_ocp3_grep_width_x4_slot_ok.txt"))
    assert (link.speed_gt_s, link.width, link.max_speed_gt_s, link.max_width) == (8.0, 4, 8.0, 4)
    assert not link.downgraded


def test_lspci_speed_unknown_from_old_pciutils():
    text = "\t\tLnkCap:\tPort #0, Speed unknown, Width x16, ASPM L1\n\t\tLnkSta:\tSpeed unknown, Width x16\n"
    link = pcie.parse_lspci(text)
    assert (link.speed_gt_s, link.width, link.max_width) == (None, 16, 16)
    assert link.bandwidth_gbit_s is None


def test_lspci_access_denied_has_no_link():
    text = "81:00.0 Network controller: Mellanox Technologies MT27500 Family [ConnectX-3]\n" \
           "\tCapabilities: <access denied>\n\tKernel driver in use: mlx4_core\n"
    assert pcie.parse_lspci(text) is None
