# SPDX-License-Identifier: GPL-2.0-or-later
"""mstconfig/mlxconfig output parser, on every sample in fixtures/mstconfig,
and the fake mstconfig program checked against the same parser."""

import subprocess

import pytest
from fake_ib import TESTS_BIN, FakeTools
from helpers import FIXTURES, fixture_output

from ib40d.core import mstconfig


def parse_fixture(name):
    return mstconfig.parse(fixture_output(f"mstconfig/{name}"))


def test_every_fixture_is_covered_here():
    tested = {
        "cx3_hp544qsfp_nextboot_eth_vpi.txt", "cx3_mlxconfig_err_failed_to_query_current_config.txt",
        "cx3_nextboot_vpi_vpi_sysfs_device.txt", "cx3_two_devices_grep_device_mstflint_4.25.txt",
        "cx3pro_hp544flr_mlxconfig_nextboot_eth_xfi.txt", "cx4_mlxconfig_eth_truncated.txt",
        "cx4lx_header_name_na_trimmed.txt", "err_unsupported_device_connectx2.txt",
    }
    assert {p.name for p in (FIXTURES / "mstconfig").iterdir()} == tested


def test_hp544_old_pci_device_header_eth_vpi():
    out = parse_fixture("cx3_hp544qsfp_nextboot_eth_vpi.txt")
    assert out.errors == []
    [dev] = out.devices
    assert dev.device_type == "ConnectX3"
    assert dev.device == "/sys/bus/pci/devices/0000:05:00.0/config"
    assert dev.pci == "0000:05:00.0"
    assert dev.columns == ["Next Boot"]
    assert dev.link_types() == {1: "eth", 2: "auto"}
    assert dev.value("LINK_TYPE_P1") == mstconfig.Value("ETH(2)", "ETH", 2)
    assert dev.value("NUM_OF_VFS").number == 16
    assert dev.value("SRIOV_EN") == mstconfig.Value("True(1)", "True", 1)
    assert len(dev.params) == 20 and "CQ_TIMESTAMP" in dev.params
    assert mstconfig.refusal(out, 0) is None


def test_debian12_sysfs_device_vpi_vpi():
    out = parse_fixture("cx3_nextboot_vpi_vpi_sysfs_device.txt")
    [dev] = out.devices
    assert dev.pci == "0000:01:00.0"
    assert dev.link_types() == {1: "auto", 2: "auto"}
    assert dev.value("BOOT_VLAN_P1").number == 1
    assert dev.value("NUM_OF_VFS").number == 8
    assert len(dev.params) == 19


def test_two_devices_grep_headers_only():
    out = parse_fixture("cx3_two_devices_grep_device_mstflint_4.25.txt")
    assert [(d.index, d.device_type, d.pci) for d in out.devices] == [
        (1, "ConnectX3", "0000:03:00.0"), (2, "ConnectX3", "0000:04:00.0")]
    assert all(d.params == {} and d.link_types() == {} for d in out.devices)


def test_cx3pro_mlxconfig_wider_columns():
    out = parse_fixture("cx3pro_hp544flr_mlxconfig_nextboot_eth_xfi.txt")
    [dev] = out.devices
    assert dev.device_type == "ConnectX3Pro"
    assert dev.device == "/dev/mst/mt4103_pci_cr0" and dev.pci is None
    assert dev.link_types() == {1: "eth", 2: "eth"}
    assert dev.value("XFI_MODE_P1") == mstconfig.Value("_10G(0)", "_10G", 0)
    assert dev.value("STEER_FORCE_VLAN").number == 0  # the last line, without trailing spaces
    assert len(dev.params) == 28


def test_cx4_truncated_listing():
    out = parse_fixture("cx4_mlxconfig_eth_truncated.txt")
    [dev] = out.devices
    assert dev.device_type == "ConnectX4"
    assert dev.name == "00KH925_Ax"
    assert dev.description == "Mellanox ConnectX-4 EDR IB VPI Single-port x16 PCIe 3.0 HCA"
    assert dev.truncated
    assert dev.link_types() == {1: "eth"}
    assert list(dev.params) == ["LINK_TYPE_P1", "SRIOV_EN", "NUM_OF_VFS"]


def test_cx4lx_header_only_with_na_names():
    out = parse_fixture("cx4lx_header_name_na_trimmed.txt")
    [dev] = out.devices
    assert (dev.device_type, dev.name, dev.description, dev.device) == ("ConnectX4LX", "N/A", "N/A", "0000:05:00.1")
    assert dev.pci == "0000:05:00.1"
    assert dev.params == {}


def test_failed_to_query_current_config_is_a_refusal():
    out = parse_fixture("cx3_mlxconfig_err_failed_to_query_current_config.txt")
    [dev] = out.devices
    assert dev.device == "/dev/mst/mt4099_pciconf0"
    assert dev.errors == ["Failed to query device current configuration"]
    assert dev.params == {}
    assert mstconfig.refusal(out, mstconfig.EXIT_ERROR) == ("query-failed", "Failed to query device current configuration")


def test_unsupported_device_is_a_refusal_with_a_clear_message():
    out = parse_fixture("err_unsupported_device_connectx2.txt")
    assert out.devices == [] and out.errors == ["Unsupported device"]
    kind, text = mstconfig.refusal(out, mstconfig.EXIT_ERROR)
    assert kind == "unsupported"
    msg = mstconfig.refusal_message(kind, text, "0000:06:00.0")
    assert "-E- Unsupported device" in msg and "mstflint 4.26+" in msg and "0000:06:00.0" in msg


def test_set_output_next_boot_new_columns_and_done():
    text = ("\nDevice #1:\n----------\n\nDevice type:    ConnectX3\nDevice:         09:00.0\n\n"
            "Configurations:                              Next Boot       New\n"
            "         LINK_TYPE_P1                        IB(1)           ETH(2)\n\n"
            " Apply new Configuration? (y/n) [n] : y\nApplying... Done!\n"
            "-I- Please reboot machine to load new configurations.\n")
    out = mstconfig.parse(text)
    [dev] = out.devices
    assert dev.columns == ["Next Boot", "New"]
    assert dev.link_types("Next Boot") == {1: "ib"} and dev.link_types("New") == {1: "eth"}
    assert out.prompted and out.applied
    assert out.infos == ["Please reboot machine to load new configurations."]
    assert dev.pci == "0000:09:00.0"


def test_verbose_columns_and_star_rows():
    text = ("Configurations:                                      Default         Current         Next Boot\n"
            "*        LINK_TYPE_P1                                VPI(3)          VPI(3)          ETH(2)\n"
            "         LINK_TYPE_P2                                VPI(3)          VPI(3)          VPI(3)\n")
    out = mstconfig.parse("Device #1:\n----------\n" + text)
    [dev] = out.devices
    assert dev.columns == ["Default", "Current", "Next Boot"]
    assert dev.link_types("Current") == {1: "auto", 2: "auto"}
    assert dev.link_types() == {1: "eth", 2: "auto"}
    assert dev.differs == {"LINK_TYPE_P1"}


@pytest.mark.parametrize("text,expected", [
    ("ETH(2)", ("ETH", 2)), ("VPI(3)", ("VPI", 3)), ("IB(1)", ("IB", 1)), ("16", (None, 16)),
    ("N/A", (None, None)), ("_10G(0)", ("_10G", 0)),
])
def test_parse_value(text, expected):
    v = mstconfig.parse_value(text)
    assert (v.label, v.number) == expected


# ---------------------------------------------------------------- the fake program


def run_fake(args, stdin=None):
    return subprocess.run([str(TESTS_BIN / "mstconfig"), *args], capture_output=True, text=True,
                          input=stdin, timeout=30)


def test_fake_query_reproduces_the_fixture_table(tmp_path, monkeypatch):
    tools = FakeTools(tmp_path, monkeypatch)
    tools.add_card("0000:05:00.0")
    done = run_fake(["-d", "0000:05:00.0", "query"])
    assert done.returncode == 0
    fake = mstconfig.parse(done.stdout).devices[0]
    real = parse_fixture("cx3_hp544qsfp_nextboot_eth_vpi.txt").devices[0]
    assert fake.params == real.params
    assert fake.device_type == real.device_type
    # Same row layout as the real one ("         %-36s%-16s").
    row = [line for line in done.stdout.splitlines() if "LINK_TYPE_P1" in line][0]
    real_row = [line for line in fixture_output("mstconfig/cx3_hp544qsfp_nextboot_eth_vpi.txt").splitlines()
                if "LINK_TYPE_P1" in line][0]
    assert row == real_row


def test_fake_set_without_yes_prompts_and_aborts(tmp_path, monkeypatch):
    tools = FakeTools(tmp_path, monkeypatch)
    tools.add_card()
    done = run_fake(["-d", "0000:05:00.0", "set", "LINK_TYPE_P1=1"], stdin="")
    assert done.returncode == mstconfig.EXIT_ABORTED
    out = mstconfig.parse(done.stdout)
    assert out.prompted and not out.applied
    assert mstconfig.refusal(out, done.returncode)[0] == "aborted"
    assert tools.next_boot()["LINK_TYPE_P1"] == "ETH(2)"


def test_fake_set_with_yes_changes_next_boot(tmp_path, monkeypatch):
    tools = FakeTools(tmp_path, monkeypatch)
    tools.add_card()
    done = run_fake(["-y", "-d", "05:00.0", "set", "LINK_TYPE_P1=1"])
    assert done.returncode == 0
    out = mstconfig.parse(done.stdout)
    assert out.applied and out.devices[0].link_types("New") == {1: "ib"}
    assert tools.next_boot() == {"LINK_TYPE_P1": "IB(1)", "LINK_TYPE_P2": "VPI(3)"}


@pytest.mark.parametrize("refuse,kind", [("unsupported", "unsupported"), ("query-failed", "query-failed"),
                                         ("open-failed", "open-failed")])
def test_fake_refusals_exit_3_with_the_real_errors(tmp_path, monkeypatch, refuse, kind):
    tools = FakeTools(tmp_path, monkeypatch)
    tools.add_card(refuse=refuse)
    for args in (["-d", "0000:05:00.0", "query"], ["-y", "-d", "0000:05:00.0", "set", "LINK_TYPE_P1=2"]):
        done = run_fake(args)
        assert done.returncode == mstconfig.EXIT_ERROR
        assert mstconfig.refusal(mstconfig.parse(done.stdout), done.returncode)[0] == kind
    assert tools.next_boot()["LINK_TYPE_P1"] == "ETH(2)"
