# SPDX-License-Identifier: GPL-2.0-or-later
"""Port types: the pure planner, then the state machine on fake trees with
the fake mstconfig on PATH: already right, firmware only (reboot pending),
runtime switch (links re-applied), mstconfig refused or missing (fallback)."""

import errno
import json

import pytest
from helpers import run_ib40d
from fake_ib import BDF, FakeIBMachine, FakeTools, cx3_eth_mode, cx3_ib_mode, cx3_mixed_mode

from ib40d.core import porttype_plan
from ib40d.system import porttype_system
from ib40d.core.actions import Change
from ib40d.core.config import CardConfig, parse_text
from ib40d.core.errors import UserError
from ib40d.system.observe import find_cards
from ib40d.system.sysroot import SysRoot


def card(port1, port2, pci=BDF):
    return CardConfig(pci, port1, port2)


def observed(**kw):
    base = dict(pci=BDF, model="ConnectX-3", running={1: "eth", 2: "eth"}, running_auto={1: False, 2: False},
                runtime_switch=True, next_boot={1: "eth", 2: "eth"}, mstconfig="ok",
                modules={"ib_ipoib": True, "ib_umad": True})
    base.update(kw)
    return porttype_plan.PortTypeState(**base)


def kinds(actions):
    return [(a.kind, a.changes[0].attr, a.changes[0].old, a.changes[0].new) for a in actions]


# ---------------------------------------------------------------- pure planning


def test_plan_nothing_when_already_right():
    assert porttype_plan.plan_port_types(card("eth", "eth"), observed()) == []
    assert porttype_plan.plan_port_types(None, observed()) == []
    # None leaves a port alone whatever it is.
    assert porttype_plan.plan_port_types(card(None, None), observed(next_boot={1: "ib", 2: "auto"})) == []


def test_plan_to_eth_sets_port2_first_everywhere():
    obs = observed(running={1: "ib", 2: "ib"}, next_boot={1: "ib", 2: "ib"})
    actions = porttype_plan.plan_port_types(card("eth", "eth"), obs)
    assert kinds(actions) == [
        ("porttype.firmware", "port2 next boot", "ib", "eth"),
        ("porttype.firmware", "port1 next boot", "ib", "eth"),
        ("porttype.runtime", "port2", "ib", "eth"),
        ("porttype.runtime", "port1", "ib", "eth"),
    ]
    assert actions[0].params["argv"] == ["mstconfig", "-y", "-d", BDF, "set", "LINK_TYPE_P2=2"]
    assert actions[2].params["path"] == f"/sys/bus/pci/devices/{BDF}/mlx4_port2"


def test_plan_to_ib_sets_port1_first_and_loads_ib_modules():
    obs = observed(modules={"ib_ipoib": False, "ib_umad": True})
    actions = porttype_plan.plan_port_types(card("ib", "ib"), obs)
    assert [(a.kind, a.params.get("port")) for a in actions] == [
        ("porttype.firmware", 1), ("porttype.firmware", 2), ("porttype.runtime", 1), ("porttype.runtime", 2),
        ("porttype.modprobe", None)]
    assert actions[-1].params["modules"] == ["ib_ipoib"]


def test_plan_auto_compares_with_auto_sensing_state():
    obs = observed(running={1: "ib", 2: "eth"}, running_auto={1: True, 2: False}, next_boot={1: "auto", 2: "auto"})
    actions = porttype_plan.plan_port_types(card("auto", "auto"), obs)
    assert kinds(actions) == [("porttype.runtime", "port2", "eth", "auto")]


@pytest.mark.parametrize("current,want,order", [
    ({1: "ib", 2: "ib"}, {1: "eth", 2: "eth"}, [2, 1]),
    ({1: "eth", 2: "eth"}, {1: "ib", 2: "ib"}, [1, 2]),
    ({1: "ib", 2: "eth"}, {1: "eth", 2: "ib"}, [1, 2]),  # refused by config check; no order is safe
    ({1: "eth", 2: "eth"}, {1: "eth", 2: "ib"}, [2]),
])
def test_safe_order(current, want, order):
    assert porttype_plan.safe_order(current, want, [p for p in (1, 2) if current[p] != want[p]]) == order


def test_plan_fallback_when_mstconfig_refuses():
    obs = observed(mstconfig="unsupported", next_boot={}, mstconfig_message="mstconfig -d x: \"-E- Unsupported device\"")
    actions = porttype_plan.plan_port_types(card("ib", "ib"), obs)
    assert [a.kind for a in actions] == ["porttype.runtime", "porttype.runtime", "porttype.persist"]
    persist = actions[-1]
    assert persist.changes[0].new == [1, 1]
    assert "options mlx4_core port_type_array=1,1\n" in persist.params["content"]
    assert "Unsupported device" in persist.reason and porttype_plan.MODPROBE_CONF in persist.reason


def test_pending_reboot_from_state_json():
    state = {"running": {"1": "eth", "2": "eth"}, "running_auto": {"1": False, "2": False},
             "next_boot": {"1": "ib", "2": "eth"}}
    assert porttype_plan.pending_reboot(state) == ["port1 eth->ib"]
    state["next_boot"] = {}
    state["modprobe_conf"] = {"1": 1, "2": 0}
    assert porttype_plan.pending_reboot(state) == ["port1 eth->ib"]


def test_status_before_porttype_ever_ran(tmp_path):
    cx3_eth_mode(tmp_path)
    assert porttype_system.status_json(SysRoot(tmp_path)) == []
    assert porttype_system.status_lines(SysRoot(tmp_path)) == []


def test_parse_mlx4_port_texts():
    assert porttype_plan.parse_mlx4_port("eth") == ("eth", False)
    assert porttype_plan.parse_mlx4_port("auto (ib)") == ("ib", True)
    assert porttype_plan.parse_mlx4_port("auto (not detected)") == (None, True)
    assert porttype_plan.parse_modprobe_conf("# x\noptions mlx4_core port_type_array=2,1 log_num_mgm_entry_size=-1\n") == {
        1: 2, 2: 1}


# ---------------------------------------------------------------- finding the card


def test_select_card_single_several_and_named(tmp_path):
    m = FakeIBMachine(tmp_path)
    m.add_cx3(BDF)
    m.add_other_pci("0000:00:19.0")
    root = SysRoot(tmp_path)
    [only] = find_cards(root)
    assert (only.pci, only.model, only.mlx4_ports) == (BDF, "ConnectX-3", (1, 2))
    assert porttype_plan.select_card(card("ib", "ib", pci=None), find_cards(root)).pci == BDF

    m.add_cx3("0000:81:00.0")
    with pytest.raises(UserError) as e:
        porttype_plan.select_card(card("ib", "ib", pci=None), find_cards(root))
    assert "0000:05:00.0 (ConnectX-3)" in str(e.value) and "0000:81:00.0 (ConnectX-3)" in str(e.value)
    assert porttype_plan.select_card(card("ib", "ib", pci="0000:81:00.0"), find_cards(root)).pci == "0000:81:00.0"
    with pytest.raises(UserError, match="no Mellanox card there"):
        porttype_plan.select_card(card("ib", "ib", pci="0000:09:00.0"), find_cards(root))


@pytest.mark.parametrize("pci_class", ["0x020000", "0x020700", "0x028000", "0x0c0600"])
def test_a_card_in_any_port_type_is_the_same_card_for_porttype_and_doctor(tmp_path, pci_class):
    """What class a VPI card shows depends on its firmware's port types:
    Ethernet 0x0200, InfiniBand 0x0207 or 0x0c06 (the fixture's MCX354A is
    an "Infiniband controller"), or network 0x0280. Every one is the card,
    for porttype as for doctor; a Mellanox PCI bridge (BlueField) is not."""
    from ib40d.commands import doctor

    m = FakeIBMachine(tmp_path)
    m.add_connectx3(BDF, pci_class=pci_class)
    m.add_other_pci("0000:06:00.0", vendor="0x15b3", device="0xa2d6", pci_class="0x060400")
    root = SysRoot(tmp_path)
    assert [c.pci for c in find_cards(root)] == [BDF]
    assert porttype_plan.select_card(card("ib", "ib", pci=None), find_cards(root)).pci == BDF
    assert [c.pci for c in doctor.observe(root, None).cards] == [BDF]


def test_no_card_is_a_clear_error(tmp_path):
    FakeIBMachine(tmp_path).add_other_pci("0000:00:19.0")
    with pytest.raises(UserError, match="no Mellanox ConnectX card"):
        porttype_plan.select_card(card("ib", "ib", pci=None), find_cards(SysRoot(tmp_path)))


# ---------------------------------------------------------------- state machine with the fake mstconfig


def config(port1, port2):
    return parse_text(f"[card]\nport1 = {port1}\nport2 = {port2}\n")


def test_already_right_calls_no_set(tmp_path, monkeypatch):
    cx3_eth_mode(tmp_path / "root")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "eth", 2: "eth"})
    root = SysRoot(tmp_path / "root")
    assert porttype_system.plan_actions(config("eth", "eth"), root) == []
    assert tools.calls() == [["-d", BDF, "query"]]
    assert tools.set_calls() == []


def test_runtime_switch_eth_to_ib_then_nothing_pending(tmp_path, monkeypatch):
    m = cx3_eth_mode(tmp_path / "root")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "eth", 2: "eth"})
    root = SysRoot(tmp_path / "root")
    actions = porttype_system.plan_actions(config("ib", "ib"), root)
    result = porttype_system.apply_port_actions(actions, root)
    assert not result.failed
    assert result.reapply_links
    assert [c[-1] for c in tools.set_calls()] == ["LINK_TYPE_P1=1", "LINK_TYPE_P2=1"]
    assert all("-y" in c for c in tools.set_calls())
    assert tools.next_boot() == {"LINK_TYPE_P1": "IB(1)", "LINK_TYPE_P2": "IB(1)"}
    assert m.mlx4_port(BDF, 1) == "ib\n" and m.mlx4_port(BDF, 2) == "ib\n"
    assert sorted(tools.modprobed()) == ["ib_ipoib", "ib_umad"]
    assert any("links are re-applied" in msg for msg in result.messages)
    [state] = porttype_system.status_json(root)
    assert state["reapply_links"] is True and state["reboot_pending"] == []
    assert porttype_system.status_lines(root) == ["card 0000:05:00.0 (ConnectX-3): port1 ib, port2 ib"]
    # A second run finds nothing to do.
    assert porttype_system.plan_actions(config("ib", "ib"), root) == []


def test_ib_to_eth_switches_port2_first(tmp_path, monkeypatch):
    m = cx3_ib_mode(tmp_path / "root")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "ib", 2: "ib"})
    root = SysRoot(tmp_path / "root")
    written = []
    real_write = SysRoot.write_sysfs
    monkeypatch.setattr(SysRoot, "write_sysfs", lambda self, p, v: (written.append((p, v)), real_write(self, p, v)))
    porttype_system.apply_port_actions(porttype_system.plan_actions(config("eth", "eth"), root), root)
    assert [c[-1] for c in tools.set_calls()] == ["LINK_TYPE_P2=2", "LINK_TYPE_P1=2"]
    assert written == [(f"/sys/bus/pci/devices/{BDF}/mlx4_port2", "eth\n"),
                       (f"/sys/bus/pci/devices/{BDF}/mlx4_port1", "eth\n")]
    assert m.mlx4_port(BDF, 1) == "eth\n"
    assert tools.modprobed() == []  # no IB port left: nothing to load


def test_firmware_only_when_mlx4_refuses_the_switch_reboot_pending(tmp_path, monkeypatch):
    m = cx3_eth_mode(tmp_path / "root")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "eth", 2: "eth"})
    root = SysRoot(tmp_path / "root")

    def refuse(self, path, value):
        raise OSError(errno.EINVAL, "Invalid argument")

    monkeypatch.setattr(SysRoot, "write_sysfs", refuse)
    result = porttype_system.apply_port_actions(porttype_system.plan_actions(config("ib", "eth"), root), root)
    assert result.failed and not result.reapply_links
    assert any("mlx4 refused port1 -> ib now (Invalid argument); it takes effect at next boot" in msg
               for msg in result.messages)
    assert tools.next_boot()["LINK_TYPE_P1"] == "IB(1)"
    assert m.mlx4_port(BDF, 1) == "eth\n"
    lines = porttype_system.status_lines(root)
    assert "reboot pending: port1 eth->ib at next boot" in lines


def test_firmware_only_card_without_mlx4_switch(tmp_path, monkeypatch):
    """A card not driven by mlx4 (no mlx4_portN): what runs comes from the
    RDMA ports' link layer, the change waits for the reboot."""
    m = FakeIBMachine(tmp_path / "root")
    m.add_cx3(BDF, port1=None, port2=None, device_id="0x1013")
    m.add_ib_ports_from_ibstat(BDF)
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "ib", 2: "ib"})
    root = SysRoot(tmp_path / "root")
    actions = porttype_system.plan_actions(config("eth", "eth"), root)
    assert [a.kind for a in actions] == ["porttype.firmware", "porttype.firmware"]
    result = porttype_system.apply_port_actions(actions, root)
    assert not result.failed and not result.reapply_links
    assert porttype_system.status_lines(root) == [
        "card 0000:05:00.0 (ConnectX-4): port1 ib, port2 ib",
        "reboot pending: port1 ib->eth, port2 ib->eth at next boot",
    ]


@pytest.mark.parametrize("refuse", ["unsupported", "query-failed", "open-failed"])
def test_mstconfig_refuses_falls_back_to_sysfs_and_modprobe_conf(tmp_path, monkeypatch, refuse):
    m = cx3_eth_mode(tmp_path / "root")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(refuse=refuse)
    root = SysRoot(tmp_path / "root")
    actions = porttype_system.plan_actions(config("ib", "ib"), root)
    assert [a.kind for a in actions] == ["porttype.runtime", "porttype.runtime", "porttype.persist",
                                         "porttype.modprobe"]
    result = porttype_system.apply_port_actions(actions, root)
    assert tools.set_calls() == []
    assert m.mlx4_port(BDF, 1) == "ib\n"
    conf = (tmp_path / "root/etc/modprobe.d/ib40-mlx4.conf").read_text()
    assert "options mlx4_core port_type_array=1,1\n" in conf
    assert any(msg.startswith("wrote /etc/modprobe.d/ib40-mlx4.conf") for msg in result.messages)
    [fallback_line] = porttype_system.status_lines(root)[1:]
    assert fallback_line.startswith(f"mstconfig -d {BDF}: \"-E- ")
    assert fallback_line.endswith("port types persist through /etc/modprobe.d/ib40-mlx4.conf")
    if refuse == "unsupported":
        # what a Debian 13 machine says: its mstflint 4.31 refuses every ConnectX-3
        assert "Debian 13" in fallback_line and "ib40 uses the mlx4 driver instead" in fallback_line
    # Second run: the file is in step, the ports too.
    assert porttype_system.plan_actions(config("ib", "ib"), root) == []


def test_mstconfig_missing_falls_back_and_says_so(tmp_path, monkeypatch):
    cx3_mixed_mode(tmp_path / "root")
    FakeTools(tmp_path, monkeypatch, missing=True)
    root = SysRoot(tmp_path / "root")
    obs = porttype_system.read_state(root, find_cards(root)[0])
    assert obs.mstconfig == "missing"
    assert obs.mstconfig_message == "mstconfig: it is not installed (apt install mstflint)"
    assert obs.running == {1: "ib", 2: "eth"}
    actions = porttype_plan.plan_port_types(card("ib", "ib"), obs)
    assert [a.kind for a in actions] == ["porttype.runtime", "porttype.persist"]
    assert actions[0].changes[0] == Change("port2", "eth", "ib")


def test_set_failure_after_a_good_query_persists_through_modprobe_conf(tmp_path, monkeypatch):
    cx3_eth_mode(tmp_path / "root")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "eth", 2: "eth"})
    root = SysRoot(tmp_path / "root")
    actions = porttype_system.plan_actions(config("ib", "ib"), root)
    tools.state = tools.load()
    tools.state["devices"][BDF]["refuse"] = "unsupported"  # the card goes away between query and set
    tools.save()
    result = porttype_system.apply_port_actions(actions, root)
    assert result.failed
    assert any("Unsupported device" in msg for msg in result.messages)
    assert (tmp_path / "root/etc/modprobe.d/ib40-mlx4.conf").exists()


# ---------------------------------------------------------------- the subcommand


def test_cli_dry_run_json_and_apply(tmp_path, monkeypatch):
    m = cx3_eth_mode(tmp_path / "root")
    m.write_config("[card]\nport1 = ib\nport2 = eth\n")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "eth", 2: "eth"})
    env = {"PATH": str(tools.bin), "IB40_FAKE_MSTCONFIG_STATE": str(tools.state_path)}
    root = str(tmp_path / "root")

    dry = run_ib40d("porttype", "--root", root, "--dry-run", "--json", env=env, check_rc=0)
    [doc] = json.loads(dry.stdout)["cards"]
    assert doc["pci"] == BDF and doc["observed"]["next_boot"] == {"1": "eth", "2": "eth"}
    assert [a["kind"] for a in doc["actions"]] == ["porttype.firmware", "porttype.runtime", "porttype.modprobe"]
    assert tools.set_calls() == []

    done = run_ib40d("porttype", "--root", root, env=env, check_rc=0)
    assert "port1 set to ib at next boot (mstconfig; was eth)" in done.stdout
    assert "port1 switched to ib now (mlx4_port1); links are re-applied" in done.stdout
    assert m.mlx4_port(BDF, 1) == "ib\n"

    again = run_ib40d("porttype", "--root", root, env=env, check_rc=0)
    assert "port types already as configured" in again.stdout


def test_cli_json_is_one_document_for_several_cards(tmp_path, monkeypatch):
    """Two card sections: one JSON document on stdout (a list of cards),
    whether the run is dry or real; the words go to stderr."""
    second = "0000:81:00.0"
    m = cx3_eth_mode(tmp_path / "root")
    m.add_cx3(second)
    m.write_config(f"[card {BDF}]\nport1 = eth\nport2 = eth\n[card {second}]\nport1 = eth\nport2 = eth\n")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "eth", 2: "eth"})
    tools.add_card(second, link_types={1: "eth", 2: "eth"})
    env = {"PATH": str(tools.bin), "IB40_FAKE_MSTCONFIG_STATE": str(tools.state_path)}
    for dry in (["--dry-run"], []):
        done = run_ib40d("porttype", "--root", str(tmp_path / "root"), "--json", *dry, env=env, check_rc=0)
        assert [c["pci"] for c in json.loads(done.stdout)["cards"]] == [BDF, second], done.stdout
        assert "port types already as configured" in done.stderr


def test_cli_several_cards_without_pci_is_one_line_error(tmp_path, monkeypatch):
    m = cx3_eth_mode(tmp_path / "root")
    m.add_cx3("0000:81:00.0")
    m.write_config("[card]\nport1 = eth\nport2 = eth\n")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    env = {"PATH": str(tools.bin), "IB40_FAKE_MSTCONFIG_STATE": str(tools.state_path)}
    done = run_ib40d("porttype", "--root", str(tmp_path / "root"), env=env, check_rc=1)
    assert done.stderr.strip().splitlines() == [
        "ib40d porttype: 2 ConnectX cards are present: set [card] pci = one of "
        "0000:05:00.0 (ConnectX-3), 0000:81:00.0 (ConnectX-3)"]


def test_the_planning_half_does_no_io():
    """porttype_plan (like diff and plan) is pure: it imports nothing that
    runs programs or reads the system."""
    import subprocess
    import sys

    from helpers import REPO

    code = ("import sys, ib40d.core.porttype_plan, ib40d.core.diff, ib40d.core.plan;"
            "print(sorted(m for m in ('ib40d.system.runner', 'ib40d.system.sysroot', 'ib40d.system.rtnl', 'subprocess', 'socket')"
            " if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO)}, check=True).stdout
    assert out.strip() == "[]"
