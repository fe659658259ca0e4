# SPDX-License-Identifier: GPL-2.0-or-later
"""SR-IOV virtual functions ([card] vfs, vfs_port1/2, probe_vfs) on fake
cards: a ConnectX-3 on mlx4 (module options in ib40's modprobe.d file, the
firmware's SRIOV_EN/NUM_OF_VFS from real `mstconfig query` samples) and a
ConnectX-4 on mlx5 (sriov_numvfs), through check, plan, apply and status."""

import json

import pytest

from fake_ib import BDF, FakeTools, cx3_ib_mode
from test_card_cli import apply_card, tools_env
from test_cards import mlx5_ib_card

from ib40d.core.config import ConfigError, parse_text
from helpers import fixture_output, run_ib40d

CONF = "/etc/modprobe.d/ib40-mlx4.conf"


def mlx4_card(tmp_path, monkeypatch, rel=None, missing=False):
    m = cx3_ib_mode(tmp_path / "root")
    m.add_sriov(BDF, total=16)
    tools = FakeTools(tmp_path, monkeypatch, missing=missing, root=tmp_path / "root")
    if not missing:
        tools.add_card(**({"rel": rel} if rel else {}), link_types={1: "ib", 2: "ib"})
    return m, tools


def test_mlx4_vfs_go_to_the_module_options_and_wait_for_a_reload(tmp_path, monkeypatch, capsys):
    m, tools = mlx4_card(tmp_path, monkeypatch)
    m.write_config("[card]\nport1 = ib\nport2 = ib\nvfs = 8\nprobe_vfs = 1\n")
    root, env = str(tmp_path / "root"), tools_env(tools)
    run_ib40d("check", "--root", root, env=env, check_rc=0)
    plan = json.loads(run_ib40d("plan", "--root", root, "--json", env=env, check_rc=1).stdout)
    assert [(a["kind"], a["changes"][0]["new"]) for a in plan["actions"]] == [
        ("sriov.modprobe", "options mlx4_core num_vfs=8 probe_vf=1")]
    assert any("mlx4 makes virtual functions only when mlx4_core loads: reboot, or reload the mlx4 modules"
               in n for n in plan["notes"])
    assert not any("SRIOV_EN" in n for n in plan["notes"])  # the sample's firmware: True(1), 16 VFs

    rc, out = apply_card(root, capsys)
    assert rc == 0, out
    assert "options mlx4_core num_vfs=8 probe_vf=1\n" in (tmp_path / "root" / CONF.lstrip("/")).read_text()
    again = json.loads(run_ib40d("plan", "--root", root, "--json", env=env, check_rc=0).stdout)
    assert again["actions"] == []
    assert any("(sriov_numvfs is 0 now)" in n for n in again["notes"])  # still waiting for the reload
    human = run_ib40d("status", "--root", root, env=env, check_rc=0).stdout
    assert f"virtual functions: 0 now (sriov_totalvfs 16); `num_vfs=8 probe_vf=1` in {CONF}: reboot or " \
           "reload the mlx4 modules to apply it" in human
    # after the reload, mlx4 has made them: nothing pending
    (tmp_path / f"root/sys/bus/pci/devices/{BDF}/sriov_numvfs").write_text("8\n")
    status = json.loads(run_ib40d("status", "--root", root, "--json", env=env, check_rc=0).stdout)
    assert status["port_types"][0]["numvfs"] == 8
    assert "reload" not in run_ib40d("status", "--root", root, env=env, check_rc=0).stdout


def test_single_port_vfs_take_mlx4s_three_value_form():
    from ib40d.core import sriov

    cfg = parse_text("[card]\nvfs = 4\nvfs_port1 = 2\nvfs_port2 = 3\nprobe_vfs = 1\n").card
    assert sriov.modprobe_line(cfg) == "options mlx4_core num_vfs=2,3,4 probe_vf=0,0,1"
    assert sriov.modprobe_total(sriov.modprobe_line(cfg)) == 9


@pytest.mark.parametrize("rel, vfs, says", [
    ("mstconfig/cx3_nextboot_vpi_vpi_sysfs_device.txt", 4,
     f"{BDF}: the firmware has SR-IOV off (SRIOV_EN False(0)): `mstconfig -d {BDF} set SRIOV_EN=1 NUM_OF_VFS=4`"),
    (None, 20, f"{BDF}: the firmware offers 16 virtual functions (NUM_OF_VFS), 20 asked for"),
])
def test_the_firmware_must_allow_the_vfs(tmp_path, monkeypatch, rel, vfs, says):
    m, tools = mlx4_card(tmp_path, monkeypatch, rel=rel)
    m.write_config(f"[card]\nvfs = {vfs}\n")
    plan = json.loads(run_ib40d("plan", "--root", str(tmp_path / "root"), "--json", env=tools_env(tools),
                                check_rc=1).stdout)
    assert any(says in n for n in plan["notes"]), plan["notes"]


def test_port_types_and_vfs_share_ibs_modprobe_file(tmp_path, monkeypatch, capsys):
    """Without mstconfig the port types persist through port_type_array in
    the same file: each writer keeps the other's line."""
    m, tools = mlx4_card(tmp_path, monkeypatch, missing=True)
    m.write_config("[card]\nport1 = ib\nport2 = ib\nvfs = 4\n")
    root = str(tmp_path / "root")
    rc, out = apply_card(root, capsys)
    assert rc == 0, out
    text = (tmp_path / "root" / CONF.lstrip("/")).read_text()
    assert "options mlx4_core port_type_array=1,1\n" in text and "options mlx4_core num_vfs=4 probe_vf=0\n" in text
    m.write_config("[card]\nport1 = ib\nport2 = ib\nvfs = 2\n")
    assert apply_card(root, capsys)[0] == 0
    text = (tmp_path / "root" / CONF.lstrip("/")).read_text()
    assert "port_type_array=1,1\n" in text and "num_vfs=2 probe_vf=0\n" in text and "num_vfs=4" not in text
    plan = json.loads(run_ib40d("plan", "--root", root, "--json", env=tools_env(tools), check_rc=0).stdout)
    assert plan["actions"] == []


def test_mlx5_vfs_through_sriov_numvfs_up_to_totalvfs(tmp_path, monkeypatch, capsys):
    m = mlx5_ib_card(tmp_path / "root")
    m.add_sriov(BDF, total=8, num=2)
    tools = FakeTools(tmp_path, monkeypatch, missing=True, root=tmp_path / "root")
    root, env = str(tmp_path / "root"), tools_env(tools)
    m.write_config("[card]\nvfs = 16\n")
    plan = json.loads(run_ib40d("plan", "--root", root, "--json", env=env, check_rc=0).stdout)
    assert plan["actions"] == [] and any("16 virtual functions asked for, sriov_totalvfs is 8: none set" in n
                                         for n in plan["notes"])
    m.write_config("[card]\nvfs = 4\n")
    plan = json.loads(run_ib40d("plan", "--root", root, "--json", env=env, check_rc=1).stdout)
    assert [(a["kind"], a["changes"][0]) for a in plan["actions"]] == [
        ("sriov.numvfs", {"attr": "sriov_numvfs", "old": 2, "new": 4})]
    rc, out = apply_card(root, capsys)
    assert rc == 0 and f"{BDF}: 4 virtual functions (sriov_numvfs)" in out
    assert (tmp_path / f"root/sys/bus/pci/devices/{BDF}/sriov_numvfs").read_text() == "4\n"
    assert not (tmp_path / "root" / CONF.lstrip("/")).exists()
    assert json.loads(run_ib40d("plan", "--root", root, "--json", env=env, check_rc=0).stdout)["actions"] == []
    assert "virtual functions: 4 now (sriov_totalvfs 8)" in run_ib40d("status", "--root", root, env=env).stdout


@pytest.mark.parametrize("text, message", [
    ("[card]\nvfs = 2\nprobe_vfs = 3\n", ":3: [card] probe_vfs: 3 is more than vfs = 2"),
    ("[card]\nvfs = 100\nvfs_port1 = 30\n", ":1: [card]: 130 virtual functions in all; mlx4 has at most 126"),
    ("[card]\nvfs_port1 = 65\n", ":2: [card] vfs_port1: 65 is out of range 0..64"),
])
def test_vf_counts_the_driver_cannot_take(text, message):
    with pytest.raises(ConfigError) as e:
        parse_text(text, "/etc/ib40.conf")
    assert any(message in str(p) for p in e.value.problems), [str(p) for p in e.value.problems]


def test_porttype_at_boot_gives_mlx5_its_vfs_again(tmp_path, monkeypatch):
    """sriov_numvfs does not survive a reboot: ib40-porttype.service's
    `ib40d porttype` sets it again, and a second run changes nothing."""
    m = mlx5_ib_card(tmp_path / "root")
    m.add_sriov(BDF, total=8, num=0)
    tools = FakeTools(tmp_path, monkeypatch, missing=True, root=tmp_path / "root")
    m.write_config("[card]\nvfs = 4\n")
    root, env = str(tmp_path / "root"), tools_env(tools)
    first = run_ib40d("porttype", "--root", root, env=env, check_rc=0)
    assert f"{BDF}: 4 virtual functions (sriov_numvfs)" in first.stdout
    assert (tmp_path / f"root/sys/bus/pci/devices/{BDF}/sriov_numvfs").read_text() == "4\n"
    again = run_ib40d("porttype", "--root", root, "--dry-run", env=env, check_rc=0)
    assert "sriov" not in again.stdout and "already as configured" in again.stdout


# ---------------------------------------------------------------- IB VFs' GUIDs, on the fake netlink

ZERO = "00:00:00:00:00:00:00:00"
VF_CONF = "[card]\nvfs = 4\n[ipoib ib0]\nmode = datagram\n"
# `ip link show` of an mlx5 PF with one VF, before and after its GUIDs were set
IP_LINK_BEFORE = fixture_output("ip_link/ib0_vf0_guids_mlx5_before.txt")
IP_LINK_AFTER = fixture_output("ip_link/ib0_vf0_guids_mlx5_after.txt")
PF_GUID = "52:54:00:c0:fe:12:34:55"  # the last 8 bytes of the sample's link/infiniband address


def pf_with_vfs(shown=True, count=4, text=IP_LINK_BEFORE):
    """The sample's PF, with COUNT VFs like its VF 0; SHOWN False: as a
    kernel that prints (and dumps) no VF GUIDs."""
    from fakenl import FakeNetlink, pf_from_ip_link
    from ib40d.core.model import VfObs

    pf = pf_from_ip_link(text)
    first = pf.vfs[0]
    pf.vfs = [VfObs(n, first.node_guid if shown else None, first.port_guid if shown else None) for n in range(count)]
    nl = FakeNetlink([pf])
    nl.shows_vf_guids = shown
    return nl


def test_the_fake_pf_is_the_samples():
    from fakenl import pf_from_ip_link

    before, after = pf_from_ip_link(IP_LINK_BEFORE), pf_from_ip_link(IP_LINK_AFTER)
    assert before.name == "ib0" and before.mac.endswith(PF_GUID) and before.mtu == 4092
    assert [(v.vf, v.node_guid, v.port_guid) for v in before.vfs] == [(0, ZERO, ZERO)]
    assert [(v.vf, v.node_guid, v.port_guid) for v in after.vfs] == [
        (0, "11:00:af:21:cb:05:11:00", "22:11:af:21:cb:05:11:00")]


def test_guids_someone_else_set_are_put_back_to_ours(tmp_path):
    from fakenl import FakeNetlink, FakeRoot, pf_from_ip_link
    from ib40d.core.plan import make_plan
    from ib40d.system.observe import observe

    nl = FakeNetlink([pf_from_ip_link(IP_LINK_AFTER)])
    [action] = make_plan(parse_text(VF_CONF), observe(nl, FakeRoot(tmp_path, nl))).actions
    assert action.describe() == ("vf.guid ib0: vf 0 node_guid 11:00:af:21:cb:05:11:00 -> 52:54:00:40:00:12:34:55, "
                                 "vf 0 port_guid 22:11:af:21:cb:05:11:00 -> 52:54:00:80:00:12:34:55")


def test_vf_guids_plan_apply_and_a_second_apply_sends_nothing(tmp_path):
    from fakenl import FakeRoot
    from ib40d.core.plan import make_plan
    from ib40d.system.apply_engine import converge
    from ib40d.system.observe import observe

    cfg = parse_text(VF_CONF + "vf_guids = 3=0x0202c9ff03a4e7aa\n")
    nl = pf_with_vfs()
    lines = [a.describe() for a in make_plan(cfg, observe(nl, FakeRoot(tmp_path, nl))).actions]
    assert lines[0] == (f"vf.guid ib0: vf 0 node_guid {ZERO} -> 52:54:00:40:00:12:34:55, "
                        f"vf 0 port_guid {ZERO} -> 52:54:00:80:00:12:34:55")
    assert lines[3] == f"vf.guid ib0: vf 3 node_guid {ZERO} -> 02:02:c9:ff:03:a4:e7:aa, " \
                       f"vf 3 port_guid {ZERO} -> 02:02:c9:ff:03:a4:e7:aa"
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok, result.to_json()
    assert [c for c in nl.calls if c[0] == "set_vf_guids"] == [
        ("set_vf_guids", "ib0", (n, f"52:54:00:40:0{n}:12:34:55", f"52:54:00:80:0{n}:12:34:55")) for n in range(3)
    ] + [("set_vf_guids", "ib0", (3, "02:02:c9:ff:03:a4:e7:aa", "02:02:c9:ff:03:a4:e7:aa"))]
    before = nl.writes
    again = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert again.ok and again.done == [] and nl.writes == before


def test_a_kernel_that_does_not_show_vf_guids_gets_them_at_every_apply(tmp_path):
    """What can't be read back is sent by every apply, and is not a change
    plan counts: plan says so in a note and says converged."""
    from fakenl import FakeRoot
    from ib40d.core import sriov
    from ib40d.core.plan import make_plan
    from ib40d.system.apply_engine import converge
    from ib40d.system.observe import observe

    cfg = parse_text(VF_CONF)
    nl = pf_with_vfs(shown=False)
    for _ in range(2):
        before = nl.writes
        result = converge(cfg, nl, FakeRoot(tmp_path, nl))
        assert result.ok and result.not_converged == [], result.to_json()
        assert nl.writes - before == 4 and [a.kind for a in result.done] == ["vf.guid"] * 4
    plan = make_plan(cfg, observe(nl, FakeRoot(tmp_path, nl)))
    assert plan.actions == [] and not plan
    assert {a.reason for a in plan.resend} == {sriov.NOT_SHOWN} and len(plan.resend) == 4
    assert plan.resend[0].describe().endswith(f"({sriov.NOT_SHOWN})")
    assert plan.notes == ["ib0: the kernel does not show VF GUIDs (no ndo_get_vf_guid): those of VF 0, 1, 2, 3 "
                          "can't be read back, so they are not counted as changes; apply sends them again each time"]
    assert make_plan(cfg, observe(nl, FakeRoot(tmp_path, nl)), only="ib0").resend == plan.resend


@pytest.mark.parametrize("shown, rc", [(False, 0), (True, 1)])
def test_plan_exits_converged_when_only_unreadable_vf_guids_are_left(tmp_path, monkeypatch, capsys, shown, rc):
    """`ib40d plan` on the fake PF: GUIDs it can read and that differ are
    changes (exit 1); ones it can't read are a note, and exit 0."""
    from fakenl import FakeRoot
    from ib40d.commands import cli, plan as cmd_plan
    from ib40d.system import bundle

    nl = pf_with_vfs(shown=shown)
    conf = tmp_path / "ib40.conf"
    conf.write_text(VF_CONF)
    monkeypatch.setattr(bundle, "link_source", lambda root: nl)
    monkeypatch.setattr(cmd_plan, "sysroot", lambda args: FakeRoot(tmp_path, nl))
    parser, subparsers = cli.build_parser(["plan"])
    cmd_plan.add_arguments(subparsers["plan"])
    assert cmd_plan.run(parser.parse_args(["plan", "-c", str(conf)])) == rc
    out = capsys.readouterr().out
    assert ("nothing to do: the machine matches the configuration" in out) == (not shown)
    assert ("note: ib0: the kernel does not show VF GUIDs" in out) == (not shown)
    assert ("vf.guid ib0: vf 0 node_guid" in out) == shown


def test_no_vfs_on_the_card_no_vf_guids(tmp_path):
    from fakenl import FakeRoot
    from ib40d.core.plan import make_plan
    from ib40d.system.observe import observe

    nl = pf_with_vfs()
    assert make_plan(parse_text("[ipoib ib0]\nmode = datagram\n"), observe(nl, FakeRoot(tmp_path, nl))).actions == []


@pytest.mark.parametrize("conf, says", [
    (VF_CONF + "vf_guids = 4=0x0202c98000a4e721\n", "ib40.conf:5: [ipoib ib0] vf_guids: VF 4 does not exist: the "
                                                    "card has 4, numbered from 0 (vfs)"),
    ("[ipoib ib0]\nvf_guids = 1=0x0202c98000a4e721\n", "ib40.conf:2: [ipoib ib0] vf_guids: VF 1 does not exist: "
                                                       "no [card] has vfs"),
    (VF_CONF + "vf_guids = 1=0x0202c98000a4e721, 2=0202:c980:00a4:e721\n",
     "ib40.conf:5: [ipoib ib0] vf_guids: VFs 1 and 2 have the same GUID 0202:c980:00a4:e721"),
    (VF_CONF + "vf_guids = 1=0x0202c98000a4e721\n[ipoib ib1]\nvf_guids = 2=0x0202c98000a4e721\n",
     "ib40.conf:7: [ipoib ib1] vf_guids: VF 2's GUID is also VF 1 of ib0's"),
    (VF_CONF + "vf_guids = 1:0x0202c98000a4e721\n", "ib40.conf:5: [ipoib ib0] vf_guids: '1:0x0202c98000a4e721' "
                                                    "is not VF=GUID"),
    (VF_CONF + "vf_guids = 1=0x0202c980\n", "ib40.conf:5: [ipoib ib0] vf_guids: '0x0202c980' is not a port GUID"),
])
def test_vf_guids_are_checked(conf, says):
    with pytest.raises(ConfigError) as e:
        parse_text(conf)
    assert says in str(e.value), str(e.value)


def test_status_lists_each_vfs_guids_from_the_raw_dump(monkeypatch):
    """status's VF lines from the stdlib dump's parse of pyroute2-encoded
    link messages (the machine has no PF with VFs): one kernel that shows the
    GUIDs, and the same VFs as a kernel that does not."""
    from fakenl import encode_link_with_vfs

    from ib40d.commands import status
    from ib40d.system import netlink
    from ib40d.system.sysroot import SysRoot

    cfg = parse_text(VF_CONF)
    vfs = [(0, "02:02:c9:40:00:a4:e7:21", "02:02:c9:80:00:a4:e7:21"), (1, ZERO, ZERO)]
    for shown, want in ((True, [{"vf": n, "node_guid": node, "port_guid": port} for n, node, port in vfs]),
                        (False, [{"vf": n, "node_guid": None, "port_guid": None} for n, _, _ in vfs])):
        monkeypatch.setattr(netlink, "_raw_links", lambda: [netlink.parse_link(encode_link_with_vfs(vfs, shown))])
        links = [{"name": "ib0", "kind": "ipoib"}, {"name": "eth0", "kind": None}]
        status._add_vfs(cfg, SysRoot("/"), links)
        assert links[0]["vfs"] == want and "vfs" not in links[1]
    text = status.render({"config": [], "links": [dict(links[0], exists=True, role="ipoib", addresses=[], mac=None,
                                                        operstate="up", carrier=True, mtu=2044, txqueuelen=256,
                                                        ipoib_mode="datagram", mismatches=[])],
                          "bonds": [], "cards": [], "port_types": [], "ib_ports": []})
    assert "VF 1: GUIDs not shown by this kernel" in text
    # a tree that is not the live machine and recorded no links: no VF lines, no error
    links = [{"name": "ib0", "kind": "ipoib"}]
    status._add_vfs(cfg, SysRoot("/nonexistent-bundle"), links)
    assert "vfs" not in links[0]


def test_mlx4_vfs_get_a_note_not_a_request_it_would_refuse(tmp_path):
    """mlx4_ib has no set_vf_guid (the kernel answers EOPNOTSUPP) nor
    get_vf_guid: every apply would fail on ib0."""
    from fakenl import FakeRoot
    from ib40d.core.plan import make_plan
    from ib40d.system.apply_engine import converge
    from ib40d.system.observe import observe

    nl = pf_with_vfs(shown=False)
    (tmp_path / "sys/bus/pci/drivers/mlx4_core").mkdir(parents=True)
    (tmp_path / "sys/class/net/ib0/device").mkdir(parents=True)
    (tmp_path / "sys/class/net/ib0/device/driver").symlink_to(tmp_path / "sys/bus/pci/drivers/mlx4_core")
    result = converge(parse_text(VF_CONF), nl, FakeRoot(tmp_path, nl))
    assert result.ok and result.writes == 0, result.to_json()
    plan = make_plan(parse_text(VF_CONF), observe(nl, FakeRoot(tmp_path, nl)))
    assert plan.actions == [] and any(n.startswith("ib0: mlx4 cannot set its virtual functions' GUIDs")
                                      for n in plan.notes)
