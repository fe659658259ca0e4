# SPDX-License-Identifier: GPL-2.0-or-later
"""Card identity, generation-aware check/plan and link rates on fake trees.

The trees are the kernel's layout (fake_pci/fake_ib): the PCI device with
its `driver` link, /sys/class/infiniband/<dev>/{fw_ver,board_id,hca_type,
node_guid} and the ports of real ibstat samples. PSIDs and firmware
versions are ones public sources show (ib40d/core/cards.py, docs/cards.md):
MT_1090120019 an MCX354A-FCBT (VPI), MT_1080120023 an MCX312A-XCBT
(ConnectX-3 EN), LNV2180110032 a Lenovo MCX455A-ECAT (ConnectX-4, FW
12.28.2006); the old-firmware card is Red Hat's ibv_devinfo sample
(fixtures/ibv_devinfo).
"""

import json

import pytest

from fake_ib import BDF, CX3_IB_FIXTURE, FakeIBMachine, FakeTools, cx3_from_ibv_devinfo
from helpers import fixture_output, run_ib40d

from ib40d.commands import doctor
from ib40d.core.cards import PSIDS, CardIdentity, capability_problems, firmware_findings, parse_fw_ver
from ib40d.core.config import parse_text
from ib40d.core.linkrate import LinkModes, eth_port_rate, ib_gbit, parse_ethtool, parse_ib_rate
from ib40d.system.cardview import read_link_modes
from ib40d.system.sysroot import SysRoot

CX4, CX5 = "0x1013", "0x1017"
RHEL_DEVINFO = "ibv_devinfo/rhel7_cx3_mlx4_1_fw_2.30.8000_psid_mt_1090120019.txt"
IPOIB_CONNECTED = "[ipoib ib0]\nmode = connected\nmtu = 65520\naddress = 10.30.0.1/24\n"


def tools_env(tools):
    return {"PATH": f"{tools.bin}:/usr/bin:/bin", "IB40_FAKE_MSTCONFIG_STATE": str(tools.state_path)}


def mlx5_ib_card(root, device_id=CX4, identity=True) -> FakeIBMachine:
    """A ConnectX-4/5 bound to mlx5_core, both ports InfiniBand (no
    mlx4_portN: mlx5 has none), IPoIB ib0 in datagram mode."""
    m = FakeIBMachine(root)
    m.add_connectx3(BDF, device_id=device_id, driver="mlx5_core")
    m.load_modules("mlx5_core")
    m.add_ib_ports_from_ibstat(BDF, device="mlx5_0", psid="LNV2180110032" if identity else None,
                               fw_ver="12.28.2006" if identity else None)
    device = m.root / m.device_dir(BDF).lstrip("/") / "infiniband/mlx5_0"
    if identity:
        # the MCX455A-ECAT sample's device is /dev/mst/mt4115_pciconf0 (fixtures/mstconfig, cx4_*)
        (device / "hca_type").write_text("MT4115\n")
    else:
        for name in ("fw_ver", "hca_type", "node_guid"):
            (device / name).unlink()
    m.add_ipoib("ib0", pci=BDF, mode="datagram", mtu=4092)
    return m


def cx3(root, *, psid, fw_ver=None, port1="ib", port2="ib", link_layer="InfiniBand") -> FakeIBMachine:
    m = FakeIBMachine(root)
    m.add_cx3(BDF, port1=port1, port2=port2)
    override = {p: {"link_layer": link_layer} for p in (1, 2)}
    m.add_ib_ports_from_ibstat(BDF, CX3_IB_FIXTURE, override=override, psid=psid, fw_ver=fw_ver)
    return m


def doctor_findings(root, config_text=None):
    cfg = parse_text(config_text) if config_text else None
    sysroot = SysRoot(root)
    obs = doctor.observe(sysroot, cfg)
    views = doctor.observe_cards(sysroot, obs)
    return views, doctor.diagnose(obs, cfg, views)


def codes(findings):
    return {f.code: f for f in findings}


# ------------------------------------------------------------------ the table and the parsers


def test_psid_table_rows_name_a_source_and_a_known_kind():
    for psid, fw in PSIDS.items():
        assert fw.psid == psid and fw.kind in ("vpi", "eth") and fw.source
    assert PSIDS["MT_1090120019"].kind == "vpi" and PSIDS["MT_1080120023"].kind == "eth"


def test_the_vpi_image_is_offered_only_where_a_source_names_one():
    """MCX314A-BCCT (Ethernet-only ConnectX-3 Pro) is cross-flashed with the
    MCX354A-FCCT image in its source; the fix says so."""
    bcct = CardIdentity(BDF, 0x1007, "mlx4_core", "2.42.5000", "MT_1090111023", "MT4103", None, "mlx4_0")
    (note,) = firmware_findings(bcct, {1: "ib"}, {1: ("eth", False)}, None)
    assert note.code == "firmware-eth-only" and "MCX354A-FCCT (PSID MT_1090111019" in note.fix
    assert "--allow_psid_change" in note.fix


def test_unknown_psid_is_said_unknown_not_guessed():
    ident = CardIdentity("0000:05:00.0", 0x1003, "mlx4_core", "2.42.5000", "MT_1060110018", "MT4099", None, "mlx4_0")
    assert ident.firmware is None and ident.kind == "unknown"
    assert "not in ib40's table" in ident.describe()


def test_fw_ver_and_ib_rate_parsers():
    assert parse_fw_ver("2.30.8000") == (2, 30, 8000) and parse_fw_ver("2.42") is None
    assert parse_ib_rate("10 Gb/sec (4X SDR)") == (10.0, 4, "SDR")
    assert parse_ib_rate("40 Gb/sec (4X FDR10)") == (40.0, 4, "FDR10")
    assert parse_ib_rate("40 (FDR10)") is None  # ibstat's text, not sysfs'
    assert ib_gbit(4, "FDR") == 56 and ib_gbit(1, "FDR") == 14 and ib_gbit(4, "QDR") == 40


# ------------------------------------------------------------------ identity in doctor and status


def test_identity_of_a_vpi_cx3_in_doctor_json_and_status(tmp_path):
    m = cx3(tmp_path, psid="MT_1090120019")
    m.write_config("[card]\nport1 = ib\nport2 = ib\n")
    rep = json.loads(run_ib40d("doctor", "--root", str(tmp_path), "--json").stdout)
    ident = rep["cards"][0]["identity"]
    assert (ident["generation"], ident["driver"], ident["fw_ver"], ident["psid"], ident["board"],
            ident["firmware_kind"], ident["hca_type"], ident["node_guid"]) == \
        ("ConnectX-3", "mlx4_core", "2.42.5000", "MT_1090120019", "MCX354A-FCBT", "vpi", "MT4099",
         "0002:c903:00a4:e720")
    assert ident["mstconfig_can_set_port_types"] is True
    assert not [f for f in rep["findings"] if f["code"].startswith(("firmware", "porttype"))]
    status = json.loads(run_ib40d("status", "--root", str(tmp_path), "--json", check_rc=0).stdout)
    (card,) = status["cards"]
    assert card["psid"] == "MT_1090120019" and card["firmware_kind"] == "vpi"
    human = run_ib40d("status", "--root", str(tmp_path), check_rc=0).stdout
    assert ("card 0000:05:00.0: ConnectX-3 (mlx4_core), firmware 2.42.5000, PSID MT_1090120019 "
            "(MCX354A-FCBT, VPI)") in human


def test_ethernet_only_firmware_asked_for_ib(tmp_path):
    cx3(tmp_path, psid="MT_1080120023", port1="eth", port2="eth", link_layer="Ethernet")
    conf = "[card]\nport1 = ib\nport2 = ib\n"
    _, fs = doctor_findings(tmp_path, conf)
    f = codes(fs)["firmware-eth-only"]
    assert f.severity == "problem" and "MCX312A-XCBT Ethernet-only" in f.message
    assert "EOPNOTSUPP" in f.message and f.fix == "set port1 = eth, port2 = eth; InfiniBand needs a VPI card"
    assert "porttype-pending" not in codes(fs)  # the cause is said once, not as a pending change
    (tmp_path / "etc").mkdir(exist_ok=True)
    (tmp_path / "etc/ib40.conf").write_text(conf)
    proc = run_ib40d("check", "--root", str(tmp_path), check_rc=2)
    assert proc.stderr.splitlines()[0].startswith(f"{tmp_path}/etc/ib40.conf:2: [card] port1: ConnectX-3 at "
                                                  f"{BDF}: PSID MT_1080120023 is MCX312A-XCBT Ethernet-only firmware")


def test_port_type_refused_by_the_driver(tmp_path):
    """ib40 set ib (porttype.json), mlx4 still runs eth: the driver refused.
    The PSID is one ib40 does not know, so the cause is said as likely."""
    cx3(tmp_path, psid="MT_0000000999", port1="eth", port2="eth", link_layer="Ethernet")
    state = {"pci": BDF, "want": {"1": "ib", "2": "ib"}, "running": {"1": "eth", "2": "eth"}}
    (tmp_path / "run/ib40").mkdir(parents=True)
    (tmp_path / "run/ib40/porttype.json").write_text(json.dumps(state))
    _, fs = doctor_findings(tmp_path, "[card]\nport1 = ib\nport2 = ib\n")
    refused = [f for f in fs if f.code == "porttype-refused"]
    assert len(refused) == 2 and refused[0].severity == "problem"
    assert "Operation not supported" in refused[0].message and "Ethernet-only" in refused[0].message
    assert codes(fs)["psid-unknown"].severity == "ok"


def test_firmware_too_old_for_mstconfig(tmp_path):
    """Red Hat's ibv_devinfo sample: an MCX354A-FCBT on firmware 2.30.8000."""
    cx3_from_ibv_devinfo(tmp_path, RHEL_DEVINFO)
    views, fs = doctor_findings(tmp_path, "[card]\nport1 = ib\nport2 = eth\n")
    assert views[0].identity.describe() == ("ConnectX-3 (mlx4_core), firmware 2.30.8000, PSID MT_1090120019 "
                                            "(MCX354A-FCBT, VPI)")
    f = codes(fs)["firmware-old"]
    assert f.severity == "warning" and "2.30.8000 is older than 2.31.5000" in f.message
    assert "mstflint issue #4" in f.message and "MCX354A-FCBT" in f.fix
    assert views[0].as_dict()["mstconfig_can_set_port_types"] is False


# ------------------------------------------------------------------ generation-aware check and plan


@pytest.mark.parametrize("device_id, name", [(CX4, "ConnectX-4"), (CX5, "ConnectX-5")])
def test_check_refuses_connected_mode_and_big_mtu_on_mlx5(tmp_path, device_id, name):
    m = mlx5_ib_card(tmp_path, device_id, identity=device_id == CX4)
    path = m.write_config(IPOIB_CONNECTED)
    proc = run_ib40d("check", "--root", str(tmp_path), check_rc=2)
    assert proc.stderr.splitlines()[:2] == [
        f"{path}:2: [ipoib ib0] mode: {name} at {BDF} (mlx5_core) runs enhanced IPoIB, which has no connected "
        "mode; use mode = datagram with mtu at most 4092",
        f"{path}:3: [ipoib ib0] mtu: {name} at {BDF} (mlx5_core): enhanced IPoIB is datagram only, MTU at most "
        "4092; use mtu = 4092 (and opensm's partition mtu=5)"]
    m.write_config("[ipoib ib0]\nmode = datagram\nmtu = 4092\n")
    run_ib40d("check", "--root", str(tmp_path), check_rc=0)


def test_check_refuses_a_port_type_only_firmware_can_switch_on_mlx5(tmp_path):
    m = mlx5_ib_card(tmp_path)
    path = m.write_config("[card]\nport1 = eth\nport2 = auto\n")
    lines = run_ib40d("check", "--root", str(tmp_path), check_rc=2).stderr.splitlines()
    assert lines[0] == (f"{path}:2: [card] port1: ConnectX-4 at {BDF} (mlx5_core) runs port1 as ib: only its "
                        "firmware can switch it to eth, not ib40 at run time (mlx5 has no mlx4_portN): "
                        f"`mstconfig -d {BDF} set LINK_TYPE_P1=2`, then reboot")
    assert lines[1].startswith(f"{path}:3: [card] port2: ConnectX-4 at {BDF} (mlx5_core) has no port-type auto-sensing")


def test_plan_says_reboot_needed_for_a_firmware_only_change(tmp_path, monkeypatch):
    m = mlx5_ib_card(tmp_path / "root")
    m.write_config("[card]\nport1 = eth\n")
    tools = FakeTools(tmp_path, monkeypatch, root=tmp_path / "root")
    tools.add_card(link_types={1: "ib", 2: "ib"})
    out = run_ib40d("plan", "--root", str(tmp_path / "root"), env=tools_env(tools), check_rc=1).stdout
    assert (f"note: reboot needed: ConnectX-4 at {BDF} port1 ib->eth is a firmware change (mlx5 has no "
            "runtime port-type switch)") in out.splitlines()


def test_check_on_a_cx3_keeps_connected_mode(tmp_path):
    cx3(tmp_path, psid="MT_1090120019").write_config("[card]\nport1 = ib\nport2 = ib\n" + IPOIB_CONNECTED)
    assert run_ib40d("check", "--root", str(tmp_path), check_rc=0).stderr == ""


def test_check_and_plan_without_a_card_are_pure_config_checks(tmp_path):
    """No card in the tree: the mlx5 limits are not applied, and the
    output is the config summary alone, as before."""
    FakeIBMachine(tmp_path).write_config("[card]\nport1 = auto\n" + IPOIB_CONNECTED)
    proc = run_ib40d("check", "--root", str(tmp_path), check_rc=0)
    assert proc.stdout == f"{tmp_path}/etc/ib40.conf: valid; 0 links, 0 bonds, 1 IPoIB, card port1=auto port2=-\n"
    assert proc.stderr == ""
    plan = run_ib40d("plan", "--root", str(tmp_path), check_rc=0).stdout
    assert "reboot needed" not in plan
    assert "note: [card]: no ConnectX card found" in plan


# ------------------------------------------------------------------ link rates


def test_40g_port_at_10g(tmp_path):
    m = cx3(tmp_path, psid="MT_1090120019", port1="eth", port2="eth", link_layer="Ethernet")
    m.add_netdev("eth40a", pci=BDF, mac="00:02:c9:3e:ca:b1", speed_mbps=10000)
    m.add_netdev("eth40b", pci=BDF, mac="00:02:c9:3e:ca:b0", speed_mbps=40000)
    views, fs = doctor_findings(tmp_path)
    (f,) = [f for f in fs if f.code == "link-rate-low"]
    assert f.severity == "problem"
    assert f.message.startswith(f"eth40a (ConnectX-3 at {BDF}) runs at 10 Gb/s, MCX354A-FCBT can do 40 Gb/s")
    assert "QSA" in f.message and "40G QSFP+ cable" in f.fix
    rates = {r.port: r for r in views[0].rates}
    assert rates["eth40b"].rate_gbit == 40 and rates["eth40b"].note is None
    text = run_ib40d("doctor", "--root", str(tmp_path), check_rc=1).stdout.splitlines()
    assert "  ConnectX-3 (mlx4_core), firmware 2.42.5000, PSID MT_1090120019 (MCX354A-FCBT, VPI)" in text
    assert "  eth40a: 10 of 40 Gb/s" in text and "  eth40b: 40 of 40 Gb/s" in text
    assert any(line.startswith("PROBLEM  link-rate-low: eth40a (ConnectX-3") for line in text)
    m.write_config("[link eth40a]\nmac = 00:02:c9:3e:ca:b1\n")
    human = run_ib40d("status", "--root", str(tmp_path), check_rc=0).stdout
    assert "  eth40a     10 Gb/s (card: 40)" in human and "! eth40a (ConnectX-3" in human


def test_10g_on_a_10g_board_is_its_full_rate(tmp_path):
    m = cx3(tmp_path, psid="MT_1080120023", port1="eth", port2="eth", link_layer="Ethernet")
    m.add_netdev("eth40a", pci=BDF, speed_mbps=10000)
    _, fs = doctor_findings(tmp_path)
    assert "link-rate-low" not in codes(fs)


def test_ib_port_at_4x_sdr_and_at_1x(tmp_path):
    m = FakeIBMachine(tmp_path)
    m.add_cx3(BDF)
    m.add_ib_ports_from_ibstat(BDF, override={1: {"rate": "10 Gb/sec (4X SDR)"}, 2: {"rate": "14 Gb/sec (1X FDR)"}},
                               psid="MT_1090120019")
    _, fs = doctor_findings(tmp_path)
    slow = codes(fs)["ib-speed-low"]
    assert slow.severity == "warning" and slow.message.startswith(
        f"mlx4_0 port 1 (ConnectX-3 at {BDF}) runs 4X SDR (10 Gb/s), the card can do 4X FDR (56 Gb/s)")
    assert "cable" in slow.message and "ibstat" in slow.fix
    narrow = codes(fs)["ib-width-low"]
    assert narrow.message.startswith(f"mlx4_0 port 2 (ConnectX-3 at {BDF}) runs 1X FDR (14 Gb/s) instead of 4X")


def test_ib_port_polling_and_disabled(tmp_path):
    m = FakeIBMachine(tmp_path)
    m.add_cx3(BDF)
    m.add_ib_device(BDF, "mlx4_0", {1: {"state": "1: DOWN", "phys_state": "2: Polling", "rate": "10 Gb/sec (4X SDR)"},
                                    2: {"state": "1: DOWN", "phys_state": "3: Disabled"}})
    _, fs = doctor_findings(tmp_path)
    down = [f for f in fs if f.code == "ib-port-down"]
    assert [f.message for f in down] == [
        "mlx4_0 port 1 is DOWN, physical Polling: the port sees no partner: no cable, or the far end is down "
        "or not in IB mode",
        "mlx4_0 port 2 is DOWN, physical Disabled: the port was switched off (by ibportstate, a subnet manager "
        "or a switch)"]
    assert "ib-speed-low" not in codes(fs)  # a DOWN port's rate is a placeholder


def test_generation_from_the_device_id_when_the_driver_link_is_missing():
    """A bundle may hold no `driver` link: the device id still says mlx5;
    an unknown device with no driver gets no generation limits at all."""
    cfg = parse_text(IPOIB_CONNECTED)
    cx5 = CardIdentity(BDF, 0x1017, None, None, None, None, None, None)
    assert cx5.family == "mlx5" and [p.key for p in capability_problems(cfg, cx5, {})] == ["mode", "mtu"]
    unknown = CardIdentity(BDF, 0x6340, None, None, None, None, None, None)
    assert unknown.family is None and capability_problems(cfg, unknown, {}) == []
    assert unknown.name == "Mellanox device 0x6340"


def test_check_refuses_ib_on_an_ethernet_only_chip(tmp_path):
    m = FakeIBMachine(tmp_path)
    m.add_connectx3(BDF, device_id="0x1015", driver="mlx5_core", pci_class="0x020000")
    m.add_netdev("eth25a", pci=BDF, speed_mbps=25000)
    path = m.write_config("[card]\nport1 = ib\n")
    assert run_ib40d("check", "--root", str(tmp_path), check_rc=2).stderr.splitlines()[0] == (
        f"{path}:2: [card] port1: ConnectX-4 Lx at {BDF}: the ConnectX-4 Lx chip has no InfiniBand; set port1 = eth; "
        "InfiniBand needs a VPI card")
    _, fs = doctor_findings(tmp_path, "[card]\nport1 = ib\n")
    f = codes(fs)["firmware-eth-only"]
    assert "EOPNOTSUPP" not in f.message  # mlx5 has no mlx4_portN to refuse it
    assert "link-rate-low" not in codes(fs)  # a ConnectX-4 Lx board's top rate is unknown without its PSID


# ------------------------------------------------------------------ ethtool's link modes, where at hand

ETHTOOL_MCX311A = "ethtool/mlx4_mcx311a_xcat_dac_10g.txt"


def unknown_cx3() -> CardIdentity:
    return CardIdentity(BDF, 0x1003, "mlx4_core", "2.42.5000", "MT_0000000999", "MT4099", None, "mlx4_0")


def test_ethtool_link_modes_say_a_10g_card_runs_at_its_full_rate():
    """The kernel's own MCX311A-XCAT sample: supported 1G and 10G, at 10G.
    Without ethtool a ConnectX-3 of unknown PSID is compared with the
    family's 40G QSFP port and gets a hedged warning; with it, nothing."""
    modes = parse_ethtool(fixture_output(ETHTOOL_MCX311A))
    assert (modes.supported, modes.partner) == ([1000, 10000], [])
    guessed = eth_port_rate(unknown_cx3(), "enp3s0", 10000, True)
    assert guessed.note.severity == "warning" and "PSID unknown" in guessed.note.message
    measured = eth_port_rate(unknown_cx3(), "enp3s0", 10000, True, modes)
    assert measured.can_gbit == 10 and measured.note is None
    assert parse_ethtool("Settings for x:\n\tLink detected: no\n") is None


def test_a_far_end_that_offers_less_is_named_as_the_cause():
    modes = LinkModes(supported=[1000, 10000, 40000], partner=[1000, 10000])
    note = eth_port_rate(unknown_cx3(), "eth40a", 10000, True, modes).note
    assert note.severity == "problem"
    assert "likely the far end, which offers at most 10 Gb/s" in note.message


def test_ethtool_runs_on_the_live_machine_only(tmp_path, monkeypatch):
    fake = tmp_path / "bin/ethtool"
    fake.parent.mkdir()
    fake.write_text(f"#!/bin/sh\nexec /bin/cat {tmp_path}/out.txt\n")
    fake.chmod(0o755)
    (tmp_path / "out.txt").write_text(fixture_output(ETHTOOL_MCX311A))
    monkeypatch.setenv("PATH", str(fake.parent))
    assert read_link_modes(SysRoot(tmp_path), ["enp3s0"]) == {}  # a tree is not this machine
    (modes,) = read_link_modes(SysRoot("/"), ["enp3s0"]).values()
    assert modes.supported == [1000, 10000]
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))
    assert read_link_modes(SysRoot("/"), ["enp3s0"]) == {}  # no ethtool: the tables decide


def test_doctor_names_a_connectx4_in_ib_mode(tmp_path):
    mlx5_ib_card(tmp_path)
    views, fs = doctor_findings(tmp_path, "[ipoib ib0]\nmode = datagram\nmtu = 4092\n")
    ident = views[0].as_dict()
    assert (ident["generation"], ident["family"], ident["driver"], ident["fw_ver"], ident["board"], ident["oem"],
            ident["firmware_kind"], ident["hca_type"]) == \
        ("ConnectX-4", "mlx5", "mlx5_core", "12.28.2006", "Lenovo 00KH925 (MCX455A-ECAT)", "Lenovo", "vpi", "MT4115")
    assert ident["mstconfig_can_set_port_types"] is None  # the 2.31.5000 limit is ConnectX-3's
    assert codes(fs)["firmware-oem"].severity == "ok"
    slow = codes(fs)["ib-speed-low"]  # the sample's ports are FDR; a ConnectX-4 does EDR
    assert "runs 4X FDR (56 Gb/s), the card can do 4X EDR (100 Gb/s)" in slow.message


def test_ethtool_on_a_bundle_is_what_was_recorded_there(tmp_path, monkeypatch):
    """A bundle holds each card port's `ethtool` answer: doctor on the bundle
    judges the rate with the modes the port had, not this machine's ethtool."""
    from ib40d.system.bundle import META

    meta = tmp_path / META.lstrip("/")
    meta.mkdir(parents=True)
    (meta / "versions.json").write_text("{}")
    (meta / "ethtool-enp3s0.txt").write_text(
        "$ ethtool enp3s0\n# exit status 0\n" + fixture_output(ETHTOOL_MCX311A))
    (meta / "ethtool-enp3s1.txt").write_text("$ ethtool enp3s1\n# exit status 76\nno such device\n")
    monkeypatch.setenv("PATH", str(tmp_path / "nothing"))  # no ethtool here: what is read is the bundle's
    modes = read_link_modes(SysRoot(tmp_path), ["enp3s0", "enp3s1", "enp3s2"])
    assert list(modes) == ["enp3s0"]
    assert modes["enp3s0"].supported == [1000, 10000]
