# SPDX-License-Identifier: GPL-2.0-or-later
"""ConnectX-4 (mlx5) cards on fake trees, alone and beside a ConnectX-3:
what `ib40d porttype` (ib40-porttype.service, at boot) does to an mlx5
card, and which card's limits `check` applies to which [ipoib]."""

import json

import pytest

from fake_ib import BDF, FakeTools
from test_card_cli import tools_env
from test_cards import mlx5_ib_card

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
