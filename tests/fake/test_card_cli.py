# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d check/plan/apply/status --root <fake tree>` with the fake mstconfig
on PATH, for ConnectX-3 cards in IB, Ethernet and mixed modes.

The links of these configs do not exist on the build machine, so the
netlink side has nothing to do; what is checked here is the card side as a
user meets it through the main commands."""

import json

from fake_ib import BDF, FakeTools, cx3_eth_mode, cx3_ib_mode, cx3_mixed_mode
from helpers import run_ib40d

IPOIB = "[ipoib ib40t0]\nmode = connected\nmtu = 65520\naddress = 10.30.0.1/24\n"


def tools_env(tools):
    return {"PATH": f"{tools.bin}:/usr/bin:/bin", "IB40_FAKE_MSTCONFIG_STATE": str(tools.state_path)}


def test_ib_card_already_ib_plans_nothing_and_status_shows_ports(tmp_path, monkeypatch):
    m = cx3_ib_mode(tmp_path / "root")
    m.write_config("[card]\nport1 = ib\nport2 = ib\n" + IPOIB)
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "ib", 2: "ib"})
    root = str(tmp_path / "root")
    run_ib40d("check", "--root", root, env=tools_env(tools), check_rc=0)
    plan = run_ib40d("plan", "--root", root, "--json", env=tools_env(tools), check_rc=0)
    assert json.loads(plan.stdout)["actions"] == []
    assert tools.set_calls() == []
    run_ib40d("porttype", "--root", root, env=tools_env(tools), check_rc=0)
    status = json.loads(run_ib40d("status", "--root", root, "--json", env=tools_env(tools), check_rc=0).stdout)
    assert status["port_types"][0]["reboot_pending"] == []
    ports = {p["port"]: p for p in status["ib_ports"]}
    assert ports[1]["state"] == "ACTIVE" and ports[1]["link_layer"] == "InfiniBand" and ports[1]["rate_gbps"] == 56
    human = run_ib40d("status", "--root", root, env=tools_env(tools), check_rc=0).stdout
    assert "card 0000:05:00.0 (ConnectX-3): port1 ib, port2 ib" in human
    assert "mlx4_0/1" in human and "ACTIVE" in human


def apply_card(root: str, capsys) -> tuple[int, str]:
    """`ib40d apply` on the fake tree, in this process: the command line
    refuses --root for apply (it would write to this machine's kernel); the
    config here names no link, so only the card side runs."""
    from ib40d.commands import cli, apply as cmd_apply

    parser, subparsers = cli.build_parser(["apply"])
    cmd_apply.add_arguments(subparsers["apply"])
    rc = cmd_apply.run(parser.parse_args(["apply", "--root", root]))
    return rc, capsys.readouterr().out


def test_eth_card_to_ib_plan_apply_then_converged(tmp_path, monkeypatch, capsys):
    m = cx3_eth_mode(tmp_path / "root")
    m.write_config("[card]\nport1 = ib\nport2 = ib\n")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "eth", 2: "eth"})
    root = str(tmp_path / "root")
    plan = run_ib40d("plan", "--root", root, env=tools_env(tools), check_rc=1)
    lines = plan.stdout.splitlines()
    assert lines[0].startswith(f"porttype.firmware {BDF}: port1 next boot eth -> ib")
    assert tools.set_calls() == []  # plan changes nothing
    rc, out = apply_card(root, capsys)
    assert rc == 0, out
    assert "port types: 0000:05:00.0: port1 switched to ib now (mlx4_port1); links are re-applied" in out
    assert tools.next_boot() == {"LINK_TYPE_P1": "IB(1)", "LINK_TYPE_P2": "IB(1)"}
    assert m.mlx4_port(BDF, 1) == "ib\n"
    assert run_ib40d("plan", "--root", root, env=tools_env(tools)).returncode == 0


def test_mixed_card_to_eth_without_runtime_switch_says_reboot_pending(tmp_path, monkeypatch, capsys):
    m = cx3_mixed_mode(tmp_path / "root")
    m.write_config("[card]\nport1 = eth\nport2 = eth\n")
    # no mlx4_portN attributes (a driver that can't switch now): firmware only
    for port in (1, 2):
        (tmp_path / "root" / f"sys/bus/pci/devices/{BDF}/mlx4_port{port}").unlink()
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "ib", 2: "eth"})
    root = str(tmp_path / "root")
    plan = json.loads(run_ib40d("plan", "--root", root, "--json", env=tools_env(tools), check_rc=1).stdout)
    assert [a["kind"] for a in plan["actions"]] == ["porttype.firmware"]
    assert plan["actions"][0]["changes"][0] == {"attr": "port1 next boot", "old": "ib", "new": "eth"}
    assert apply_card(root, capsys)[0] == 0
    assert tools.next_boot()["LINK_TYPE_P1"] == "ETH(2)"
    status = json.loads(run_ib40d("status", "--root", root, "--json", env=tools_env(tools), check_rc=0).stdout)
    assert status["port_types"][0]["next_boot"] == {"1": "eth", "2": "eth"}


def test_check_several_cards_without_pci_lists_them(tmp_path, monkeypatch):
    m = cx3_eth_mode(tmp_path / "root")
    m.add_cx3("0000:81:00.0")
    m.write_config("\n[card]\nport1 = eth\nport2 = eth\n")
    proc = run_ib40d("check", "--root", str(tmp_path / "root"))
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert ":2: [card] pci: 2 ConnectX cards are present; choose one: pci = 0000:05:00.0 (ConnectX-3), " \
           "0000:81:00.0 (ConnectX-3), or write one [card PCI] section for each" in proc.stderr


def test_plan_without_any_card_is_a_note(tmp_path):
    (tmp_path / "root/sys/bus/pci/devices").mkdir(parents=True)
    (tmp_path / "root/etc").mkdir(parents=True)
    (tmp_path / "root/etc/ib40.conf").write_text("[card]\nport1 = eth\nport2 = eth\n")
    proc = run_ib40d("plan", "--root", str(tmp_path / "root"), check_rc=0)
    assert "note: [card]: no ConnectX card found" in proc.stdout


def test_commands_take_the_config_without_importing_the_cli():
    """cli imports the commands (through link-ready, apply): the commands
    get load_config/sysroot from cliargs, so no cycle leads back to cli."""
    import subprocess
    import sys

    from helpers import REPO

    code = ("import sys, ib40d.commands.porttype, ib40d.system.porttype_system, ib40d.commands.plan, ib40d.commands.apply, ib40d.commands.status;"
            "print('ib40d.commands.cli' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={"PYTHONPATH": str(REPO)}, check=True).stdout
    assert out.strip() == "False"
