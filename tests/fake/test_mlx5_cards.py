# SPDX-License-Identifier: GPL-2.0-or-later
"""ConnectX-4 (mlx5) cards on fake trees, alone and beside a ConnectX-3:
what `ib40d porttype` (ib40-porttype.service, at boot) does to an mlx5
card, and which card's limits `check` applies to which [ipoib]."""

import json

import pytest

from fake_ib import BDF, FakeTools
from test_card_cli import tools_env
from test_cards import CX4, cx3, mlx5_ib_card

from helpers import run_ib40d

MLX4_CONF = "etc/modprobe.d/ib40-mlx4.conf"


@pytest.mark.parametrize("mstconfig", ["missing", "present"])
def test_porttype_at_boot_on_mlx5_sets_only_the_vfs(tmp_path, monkeypatch, mstconfig):
    """The card runs what [card] asks (IB on both ports, as check wants on
    mlx5); its firmware boots port 1 as Ethernet. At boot the unit gives it
    its VFs back and nothing else: no mlx4 option file (mlx5 ignores it),
    no mstconfig set, no modprobe, no mlx4_portN."""
    m = mlx5_ib_card(tmp_path / "root")
    m.add_sriov(BDF, total=8, num=0)
    tools = FakeTools(tmp_path, monkeypatch, missing=mstconfig == "missing", root=tmp_path / "root")
    if mstconfig == "present":
        tools.add_card(link_types={1: "eth", 2: "ib"})
    m.write_config("[card]\nport1 = ib\nport2 = ib\nvfs = 4\n")
    root, env = str(tmp_path / "root"), tools_env(tools)
    run_ib40d("check", "--root", root, env=env, check_rc=0)
    dry = run_ib40d("porttype", "--root", root, "--dry-run", env=env, check_rc=0)
    assert dry.stdout.splitlines() == [f"sriov.numvfs {BDF}: sriov_numvfs 0 -> 4 (mlx5 creates them now)"]
    done = run_ib40d("porttype", "--root", root, env=env, check_rc=0)
    assert f"{BDF}: 4 virtual functions (sriov_numvfs)" in done.stdout
    assert (tmp_path / f"root/sys/bus/pci/devices/{BDF}/sriov_numvfs").read_text() == "4\n"
    assert not (tmp_path / "root" / MLX4_CONF).exists()
    assert tools.modprobed() == []
    assert tools.set_calls() == []
    assert not list((tmp_path / f"root/sys/bus/pci/devices/{BDF}/").glob("mlx4_port*"))


def test_plan_on_mlx5_without_mstconfig_writes_no_mlx4_option(tmp_path, monkeypatch):
    """port_type_array is mlx4_core's: an mlx5 card's types are not kept
    through it, whatever plan and apply do with the firmware."""
    m = mlx5_ib_card(tmp_path / "root")
    tools = FakeTools(tmp_path, monkeypatch, missing=True, root=tmp_path / "root")
    m.write_config("[card]\nport1 = ib\nport2 = ib\n")
    plan = run_ib40d("plan", "--root", str(tmp_path / "root"), "--json", env=tools_env(tools), check_rc=None)
    kinds = [a["kind"] for a in json.loads(plan.stdout)["actions"]]
    assert "porttype.persist" not in kinds and kinds == ["porttype.modprobe"]


# ---------------------------------------------------------------- a ConnectX-3 beside a ConnectX-4

CX3_PCI, CX4_PCI = BDF, "0000:81:00.0"
CX4_GUIDS = {1: "0x7cfe900300a1b2c1", 2: "0x7cfe900300a1b2c2"}


def cx3_and_cx4(root):
    """The ConnectX-3 of test_cards (mlx4, both ports IB, the ibstat
    sample's GUIDs) and a ConnectX-4 on mlx5_core built as mlx5_ib_card
    does, with GUIDs of its own; ib0 on the first, ib2 on the second."""
    m = cx3(root, psid="MT_1090120019")
    m.add_ipoib("ib0", pci=CX3_PCI, mode="connected", mtu=65520,
                mac="80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:a4:e7:21")
    m.add_connectx3(CX4_PCI, device_id=CX4, driver="mlx5_core")
    m.load_modules("mlx5_core")
    m.add_ib_ports_from_ibstat(CX4_PCI, device="mlx5_0", psid="LNV2180110032", fw_ver="12.28.2006",
                               override={p: {"guid": g} for p, g in CX4_GUIDS.items()})
    m.add_ipoib("ib2", pci=CX4_PCI, mode="datagram", mtu=4092,
                mac="80:00:02:08:fe:80:00:00:00:00:00:00:7c:fe:90:03:00:a1:b2:c1")
    return m


TWO_CARDS = f"""[card {CX3_PCI}]
port1 = ib
port2 = auto

[card {CX4_PCI}]
port1 = ib

[opensm]
start = never

[ipoib ib0]
guid = 0002:c903:00a4:e721
mode = connected
mtu = 65520

[ipoib ib0.8001]
parent = ib0
pkey = 0x8001
mode = connected
mtu = 65520

[ipoib ib2]
guid = 7cfe:9003:00a1:b2c1
mode = {{ib2_mode}}
mtu = {{ib2_mtu}}
"""


def test_check_judges_each_ipoib_by_the_card_it_is_on(tmp_path):
    """Connected mode, MTU 65520 and port2 = auto are the ConnectX-3's to
    have; only what is on the ConnectX-4 gets mlx5's limits."""
    m = cx3_and_cx4(tmp_path)
    m.write_config(TWO_CARDS.format(ib2_mode="datagram", ib2_mtu=4092))
    proc = run_ib40d("check", "--root", str(tmp_path), check_rc=0)
    assert proc.stderr == ""
    assert f"[ipoib ib2]: card {CX4_PCI} (ConnectX-4) port 1 (GUID of mlx5_0 port 1)" in proc.stdout
    path = m.write_config(TWO_CARDS.format(ib2_mode="connected", ib2_mtu=65520))
    lines = run_ib40d("check", "--root", str(tmp_path), check_rc=2).stderr.splitlines()
    assert lines == [
        f"{path}:24: [ipoib ib2] mode: ConnectX-4 at {CX4_PCI} (mlx5_core) runs enhanced IPoIB, which has no "
        "connected mode; use mode = datagram with mtu at most 4092",
        f"{path}:25: [ipoib ib2] mtu: ConnectX-4 at {CX4_PCI} (mlx5_core): enhanced IPoIB is datagram only, MTU at "
        "most 4092; use mtu = 4092 (and opensm's partition mtu=5)",
        "ib40d: 2 problems in the configuration; nothing was changed"]


def test_an_ipoib_whose_card_cannot_be_told_gets_the_limits_only_if_every_card_has_them(tmp_path):
    m = cx3_and_cx4(tmp_path)
    m.write_config("[ipoib ib9]\nmode = connected\n" + f"[card {CX3_PCI}]\nport1 = ib\n[card {CX4_PCI}]\nport1 = ib\n")
    assert run_ib40d("check", "--root", str(tmp_path), check_rc=0).stderr == ""  # it may be the ConnectX-3's


def test_porttype_on_mlx5_without_vfs_reads_no_firmware(tmp_path, monkeypatch):
    """Port types in [card] but no vfs: on mlx5 ib40-porttype.service has
    nothing to do, so it does not spend seconds in `mstconfig query` while
    ib40d.service, ordered after it, waits."""
    m = mlx5_ib_card(tmp_path / "root")
    m.add_sriov(BDF, total=8, num=0)
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "ib", 2: "ib"})
    m.write_config("[card]\nport1 = ib\nport2 = ib\n")
    done = run_ib40d("porttype", "--root", str(tmp_path / "root"), env=tools_env(tools), check_rc=0)
    assert "no vfs are asked for: nothing to do" in done.stdout, done.stdout
    assert tools.calls() == []
