# SPDX-License-Identifier: GPL-2.0-or-later
"""Two ConnectX-3 cards in one machine (fake sysfs of two mlx4 PCI
functions, the fake mstconfig answering for both): one [card PCI] section
each, through check, plan, apply, porttype and status."""

import json

import pytest

from fake_ib import FakeTools, cx3_ib_mode
from fake_pci import CONNECTX3
from helpers import fixture_output
from support_parsers import parse_ibstat
from test_card_cli import apply_card, tools_env

from ib40d.core.config import ConfigError, parse_text
from helpers import run_ib40d

FIRST, SECOND = "0000:05:00.0", "0000:81:00.0"

CONFIG = f"""[card {FIRST}]
port1 = ib
port2 = ib

[card 81:00.0]
port1 = eth
port2 = eth

[ipoib ib40t1]
guid = 0002:c903:00a4:e722
mode = connected

[link eth81a]
mac = 00:02:c9:aa:bb:01
"""


def two_cards(tmp_path, monkeypatch):
    """The first card InfiniBand on both ports (the ibstat sample's); the
    second runs Ethernet on both ports but its firmware boots them as IB."""
    m = cx3_ib_mode(tmp_path / "root")
    m.add_cx3(SECOND, port1="eth", port2="eth", device_id=CONNECTX3)
    ports = parse_ibstat(fixture_output("ibstat/ibstat_cx3_mt4099_fdr56_both_ports_active.txt"))[0]["ports"]
    for p, guid in zip(ports, ("0x0202c9fffeaabb01", "0x0202c9fffeaabb02")):
        p.link_layer, p.sm_lid, p.lid, p.rate, p.guid = "Ethernet", 0, 0, "40 Gb/sec (4X QDR)", guid
    m.add_ib_ports(SECOND, ports, device="mlx4_1")
    m.add_netdev("eth81a", pci=SECOND, mac="00:02:c9:aa:bb:01", dev_port=0)
    m.add_netdev("eth81b", pci=SECOND, mac="00:02:c9:aa:bb:02", dev_port=1)
    m.load_modules("mlx4_en")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(FIRST, link_types={1: "ib", 2: "ib"})
    tools.add_card(SECOND, link_types={1: "ib", 2: "ib"})
    return m, tools


def test_two_cards_each_with_its_port_types_check_plan_apply_status(tmp_path, monkeypatch, capsys):
    m, tools = two_cards(tmp_path, monkeypatch)
    m.write_config(CONFIG)
    root = str(tmp_path / "root")
    env = tools_env(tools)

    check = run_ib40d("check", "--root", root, env=env, check_rc=0).stdout
    assert f"card {FIRST} port1=ib port2=ib, card {SECOND} port1=eth port2=eth" in check
    assert f"[ipoib ib40t1]: card {FIRST} (ConnectX-3) port 2 (GUID of mlx4_0 port 2)" in check
    assert f"[link eth81a]: card {SECOND} (ConnectX-3) port 1 (MAC of eth81a)" in check

    plan = json.loads(run_ib40d("plan", "--root", root, "--json", env=env, check_rc=1).stdout)
    card_actions = [(a["kind"], a["target"], a["changes"][0]["attr"]) for a in plan["actions"]
                    if a["kind"].startswith("porttype.")]
    # the first card already runs and boots what it is asked for: only the second's firmware changes
    assert card_actions == [("porttype.firmware", SECOND, "port2 next boot"),
                            ("porttype.firmware", SECOND, "port1 next boot")]
    assert tools.set_calls() == []

    rc, out = apply_card(root, capsys)
    assert rc == 0, out
    assert {c[c.index("-d") + 1] for c in tools.set_calls()} == {SECOND}
    assert tools.next_boot(SECOND) == {"LINK_TYPE_P1": "ETH(2)", "LINK_TYPE_P2": "ETH(2)"}
    assert tools.next_boot(FIRST) == {"LINK_TYPE_P1": "IB(1)", "LINK_TYPE_P2": "IB(1)"}
    assert m.mlx4_port(FIRST, 1).strip() == "ib" and m.mlx4_port(SECOND, 1).strip() == "eth"
    again = json.loads(run_ib40d("plan", "--root", root, "--json", env=env).stdout)
    assert [a for a in again["actions"] if a["kind"].startswith("porttype.")] == []

    # porttype at boot records both cards; apply recorded the one it changed
    run_ib40d("porttype", "--root", root, env=env, check_rc=0)
    state_file = json.loads((tmp_path / "root/run/ib40/porttype.json").read_text())
    assert sorted(state_file["cards"]) == [FIRST, SECOND]
    status = json.loads(run_ib40d("status", "--root", root, "--json", env=env, check_rc=0).stdout)
    assert [(s["pci"], s["next_boot"], s["reboot_pending"]) for s in status["port_types"]] == [
        (FIRST, {"1": "ib", "2": "ib"}, []), (SECOND, {"1": "eth", "2": "eth"}, [])]
    assert sorted(c["pci"] for c in status["cards"]) == [FIRST, SECOND]
    human = run_ib40d("status", "--root", root, env=env, check_rc=0).stdout
    assert f"card {FIRST} (ConnectX-3): port1 ib, port2 ib" in human
    assert f"card {SECOND} (ConnectX-3): port1 eth, port2 eth" in human


def test_a_bare_card_on_two_cards_names_both_addresses(tmp_path, monkeypatch):
    m, tools = two_cards(tmp_path, monkeypatch)
    m.write_config("[card]\nport1 = ib\nport2 = ib\n")
    root = str(tmp_path / "root")
    check = run_ib40d("check", "--root", root, env=tools_env(tools), check_rc=2)
    assert f":1: [card] pci: 2 ConnectX cards are present; choose one: pci = {FIRST} (ConnectX-3), " \
           f"{SECOND} (ConnectX-3), or write one [card PCI] section for each" in check.stderr
    for command in ("plan", "porttype"):
        proc = run_ib40d(command, "--root", root, env=tools_env(tools))
        assert proc.returncode != 0 and "Traceback" not in proc.stderr
        assert f"{FIRST} (ConnectX-3), {SECOND} (ConnectX-3)" in proc.stderr
    assert tools.set_calls() == []


def test_a_card_section_for_a_card_not_there_is_one_line_and_touches_neither(tmp_path, monkeypatch):
    m, tools = two_cards(tmp_path, monkeypatch)
    m.write_config(CONFIG + "\n[card 0000:06:00.0]\nport1 = ib\n")
    proc = run_ib40d("porttype", "--root", str(tmp_path / "root"), env=tools_env(tools))
    assert proc.returncode != 0 and "Traceback" not in proc.stderr
    assert "[card 0000:06:00.0]: no Mellanox card there (present: " in proc.stderr
    assert tools.set_calls() == []  # every section resolves before the first change


def test_the_state_file_of_one_card_before_several_is_still_read(tmp_path, monkeypatch):
    from ib40d.system import porttype_system
    from ib40d.system.sysroot import SysRoot

    m, _ = two_cards(tmp_path, monkeypatch)
    old = {"pci": FIRST, "model": "ConnectX-3", "running": {"1": "ib", "2": "ib"}, "running_auto": {},
           "next_boot": {"1": "eth", "2": "ib"}, "want": {"1": "eth", "2": "ib"}, "mstconfig": "ok"}
    (tmp_path / "root/run/ib40").mkdir(parents=True)
    (tmp_path / "root/run/ib40/porttype.json").write_text(json.dumps(old))
    [state] = porttype_system.status_json(SysRoot(tmp_path / "root"))
    assert state["pci"] == FIRST and state["reboot_pending"] == ["port1 ib->eth"]


@pytest.mark.parametrize("text, line, message", [
    (f"[card {FIRST}]\nport1 = ib\n[card]\nport1 = eth\n", 3,
     "[card]: [card] without pci = means the only card, so it cannot stand beside other card sections"),
    (f"[card]\npci = {FIRST}\n[card 05:00.0]\nport1 = eth\n", 3,
     f"[card 05:00.0]: card {FIRST} is already configured by [card]"),
    (f"[card {FIRST}]\npci = {SECOND}\n", 2, "pci: the section's name is the card's PCI address already"),
    ("[card mycard]\nport1 = ib\n", 1, "'mycard' is not a PCI address like 0000:05:00.0"),
])
def test_card_sections_that_contradict_each_other(text, line, message):
    with pytest.raises(ConfigError) as e:
        parse_text(text, "/etc/ib40.conf")
    rendered = [str(p) for p in e.value.problems]
    assert any(r.startswith(f"/etc/ib40.conf:{line}: ") and message in r for r in rendered), rendered


def test_a_named_card_and_a_bare_one_parse_to_the_same_address():
    named = parse_text("[card 81:00.0]\nport1 = eth\nport2 = eth\n")
    bare = parse_text(f"[card]\npci = {SECOND}\nport1 = eth\nport2 = eth\n")
    assert named.card.pci == bare.card.pci == SECOND
    assert (named.card.label, bare.card.label) == ("[card 81:00.0]", "[card]")
    two = parse_text(f"[card {FIRST}]\nport1 = ib\n[card {SECOND}]\nport2 = eth\n")
    assert [c.pci for c in two.cards] == [FIRST, SECOND] and two.card is None


def without_mstconfig(tmp_path, monkeypatch):
    """The two cards as above, but no mstconfig (mstflint not installed):
    persistence only through mlx4_core's one port_type_array."""
    m, _ = two_cards(tmp_path, monkeypatch)
    tools = FakeTools(tmp_path / "nomst", monkeypatch, missing=True, root=tmp_path / "root")
    return m, tools


def test_cards_wanting_different_types_do_not_share_mlx4s_one_module_option(tmp_path, monkeypatch, capsys):
    m, tools = without_mstconfig(tmp_path, monkeypatch)
    m.write_config(CONFIG)
    root = str(tmp_path / "root")
    plan = run_ib40d("plan", "--root", root, env=tools_env(tools), check_rc=0)
    assert "note: /etc/modprobe.d/ib40-mlx4.conf not written: mlx4_core's port_type_array applies to every " \
           f"mlx4 card, and cards {FIRST}, {SECOND} want different port types" in plan.stdout
    assert "porttype.persist" not in plan.stdout
    porttype = run_ib40d("porttype", "--root", root, env=tools_env(tools), check_rc=0)
    assert "not written" in porttype.stderr
    assert not (tmp_path / "root/etc/modprobe.d/ib40-mlx4.conf").exists()


def test_cards_wanting_the_same_types_share_one_module_option(tmp_path, monkeypatch):
    m, tools = without_mstconfig(tmp_path, monkeypatch)
    m.write_config(CONFIG.replace("port1 = ib\nport2 = ib", "port1 = eth\nport2 = eth"))
    root = str(tmp_path / "root")
    plan = json.loads(run_ib40d("plan", "--root", root, "--json", env=tools_env(tools), check_rc=1).stdout)
    assert [a["kind"] for a in plan["actions"] if a["kind"] == "porttype.persist"] == ["porttype.persist"]
    run_ib40d("porttype", "--root", root, env=tools_env(tools), check_rc=0)
    conf = (tmp_path / "root/etc/modprobe.d/ib40-mlx4.conf").read_text()
    assert "options mlx4_core port_type_array=2,2\n" in conf


def test_check_says_when_a_configured_port_is_on_a_card_without_a_section(tmp_path, monkeypatch):
    m, tools = two_cards(tmp_path, monkeypatch)
    m.write_config(f"[card {FIRST}]\nport1 = ib\nport2 = ib\n\n[link eth81a]\nmac = 00:02:c9:aa:bb:01\n")
    check = run_ib40d("check", "--root", str(tmp_path / "root"), env=tools_env(tools), check_rc=0).stdout
    assert f"[link eth81a]: card {SECOND} (ConnectX-3) port 1 (MAC of eth81a) (no card section for it: " \
           "its port types are left as they are)" in check


def test_doctor_judges_each_card_against_its_own_section():
    from ib40d.commands.doctor import cardinfo_want

    cfg = parse_text(CONFIG)
    assert cardinfo_want(cfg, FIRST) == {1: "ib", 2: "ib"}
    assert cardinfo_want(cfg, SECOND) == {1: "eth", 2: "eth"}
    assert cardinfo_want(cfg, "0000:06:00.0") == {}
    assert cardinfo_want(parse_text("[card]\nport1 = eth\nport2 = eth\n"), SECOND) == {1: "eth", 2: "eth"}
