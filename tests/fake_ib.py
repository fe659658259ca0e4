# SPDX-License-Identifier: GPL-2.0-or-later
"""Fake ConnectX-3 machines for the InfiniBand side, built from the fixtures.

On top of fake_pci.FakeMachine (PCI device, netdevs, RDMA device layout):
- mlx4_port1/mlx4_port2 on the PCI device with the driver's texts ("ib",
  "eth", "auto (eth)"), /sys/module/<mod> for loaded modules;
- IB ports whose sysfs files are the kernel's texts ("4: ACTIVE",
  "5: LinkUp", "56 Gb/sec (4X FDR)", "0x3", gids/0) converted from the
  ports of a real `ibstat` sample (fixtures/ibstat);
- the fake mstconfig (tests/bin/mstconfig) on PATH with its state seeded
  from a real `mstconfig query` sample (fixtures/mstconfig), and a fake
  modprobe that records its calls.
"""

from __future__ import annotations

import json
import stat
from pathlib import Path

from fake_pci import CONNECTX3, FakeMachine
from helpers import fixture_output
from support_parsers import parse_ibstat

from ib40d.core import ibports, mstconfig

TESTS_BIN = Path(__file__).parent / "bin"

CX3_IB_FIXTURE = "ibstat/ibstat_cx3_mt4099_fdr56_both_ports_active.txt"
CX3_INIT_FIXTURE = "ibstat/ibstat_cx3_mt4099_initializing_fdr10_port2_disabled.txt"
CX3_QUERY_FIXTURE = "mstconfig/cx3_hp544qsfp_nextboot_eth_vpi.txt"

# ibstat's "Rate" number -> the speed name sysfs prints for a 4X link
# (drivers/infiniband/core/sysfs.c rate_show).
_RATE_NAMES = {"10": "SDR", "20": "DDR", "40": "QDR", "56": "FDR", "100": "EDR", "200": "HDR"}
_STATE_NUMBERS = {name: num for num, name in ibports.PORT_STATES.items()}
_PHYS_NUMBERS = {name: num for num, name in ibports.PHYS_STATES.items()}


def sysfs_rate(ibstat_rate: str) -> str:
    """"56" -> "56 Gb/sec (4X FDR)"; "40 (FDR10)" -> "40 Gb/sec (4X FDR10)"."""
    number, _, suffix = ibstat_rate.partition(" ")
    name = suffix.strip("()") or _RATE_NAMES[number]
    return f"{number} Gb/sec (4X {name})"


def sysfs_gid(guid: str) -> str:
    digits = guid.removeprefix("0x").zfill(16)
    return "fe80:0000:0000:0000:" + ":".join(digits[i:i + 4] for i in range(0, 16, 4))


class FakeIBMachine(FakeMachine):
    def add_cx3(self, bdf: str = "0000:05:00.0", *, port1: str = "ib", port2: str = "ib",
                device_id: str = CONNECTX3) -> str:
        """A ConnectX-3 bound to mlx4_core; port1/port2 are the texts of
        mlx4_portN ("ib", "eth", "auto (ib)") or None for no attribute."""
        path = self.add_connectx3(bdf, device_id=device_id, driver="mlx4_core")
        for port, text in ((1, port1), (2, port2)):
            if text is not None:
                self._write(f"{self.device_dir(bdf)}/mlx4_port{port}", text)
        self.load_modules("mlx4_core")
        return path

    def load_modules(self, *names: str) -> None:
        for name in names:
            (self.root / "sys/module" / name).mkdir(parents=True, exist_ok=True)

    def mlx4_port(self, bdf: str, port: int) -> str:
        return (self.root / self.device_dir(bdf).lstrip("/") / f"mlx4_port{port}").read_text()

    def add_ib_ports(self, bdf: str, ports: list[ibports.IBPort], device: str = "mlx4_0",
                     identity: dict[str, str] | None = None) -> None:
        """sysfs ports of an RDMA device, in the kernel's texts, from parsed
        ibstat/ibstatus ports."""
        attrs = {}
        for p in ports:
            attrs[p.port] = {
                "state": f"{_STATE_NUMBERS[p.state]}: {p.state}",
                "phys_state": f"{_PHYS_NUMBERS[p.phys_state]}: {p.phys_state}",
                "rate": p.rate if "Gb/sec" in (p.rate or "") else sysfs_rate(p.rate),
                "sm_lid": hex(p.sm_lid or 0),
                "lid": hex(p.lid or 0),
                "link_layer": p.link_layer or "InfiniBand",
                "gids/0": sysfs_gid(p.guid),
            }
        self.add_ib_device(bdf, device, attrs, identity)
        self.load_modules("mlx5_ib" if device.startswith("mlx5") else "mlx4_ib", "ib_core")

    def add_ib_ports_from_ibstat(self, bdf: str, rel: str = CX3_IB_FIXTURE, only: tuple[int, ...] = (1, 2),
                                 override: dict[int, dict] | None = None, psid: str | None = None,
                                 fw_ver: str | None = None, device: str | None = None) -> list[ibports.IBPort]:
        """The ports of a real ibstat sample; override: {port: {attr: value}}.
        The device's fw_ver, hca_type and node_guid are the sample's (fw_ver
        may be overridden); board_id is PSID (ibstat does not print it)."""
        ca = parse_ibstat(fixture_output(rel))[0]
        ports = [p for p in ca["ports"] if p.port in only]
        for p in ports:
            for key, value in (override or {}).get(p.port, {}).items():
                setattr(p, key, value)
        self.add_ib_ports(bdf, ports, device or ca["ca"], identity_files(ca, psid, fw_ver))
        return ports


def identity_files(ca: dict, psid: str | None, fw_ver: str | None = None) -> dict[str, str]:
    """/sys/class/infiniband/<dev>/ files from an ibstat CA: "CA type:
    MT4099" is hca_type, "Node GUID: 0x0002c90300a4e720" is node_guid as
    "0002:c903:00a4:e720"."""
    files = {"fw_ver": fw_ver or ca["firmware"], "hca_type": ca["ca_type"]}
    if ca.get("node_guid"):
        digits = ca["node_guid"].removeprefix("0x").zfill(16)
        files["node_guid"] = ":".join(digits[i:i + 4] for i in range(0, 16, 4))
    if psid:
        files["board_id"] = psid
    return files


def parse_ibv_devinfo(text: str) -> dict:
    """`ibv_devinfo` (one device) -> {"hca_id", "fw_ver", "node_guid",
    "board_id", "vendor_part_id", ..., "ports": {1: {"state", "link_layer"...}}}."""
    out: dict = {"ports": {}}
    port = None
    for line in text.splitlines():
        key, sep, value = line.strip().partition(":")
        if not sep:
            continue
        value = value.strip()
        if key == "port":
            port = out["ports"].setdefault(int(value), {})
        elif port is not None:
            port[key] = value
        else:
            out[key] = value
    return out


# ibv_devinfo's port state -> the kernel's sysfs text
_DEVINFO_STATES = {"PORT_ACTIVE (4)": "4: ACTIVE", "PORT_INIT (2)": "2: INIT", "PORT_DOWN (1)": "1: DOWN"}


def cx3_from_ibv_devinfo(root, rel: str, *, fw_ver: str | None = None) -> FakeIBMachine:
    """A card as a real `ibv_devinfo` shows it: device id from
    vendor_part_id (4099 = 0x1003), fw_ver, board_id (PSID), node_guid, and
    each port's state and link layer (mlx4_portN "ib" or "eth" to match)."""
    info = parse_ibv_devinfo(fixture_output(rel))
    types = {p: "ib" if attrs["link_layer"] == "InfiniBand" else "eth" for p, attrs in info["ports"].items()}
    m = FakeIBMachine(root)
    m.add_cx3(BDF, port1=types.get(1), port2=types.get(2), device_id=hex(int(info["vendor_part_id"])))
    ports = {p: {"state": _DEVINFO_STATES[a["state"]], "link_layer": a["link_layer"], "sm_lid": hex(int(a["sm_lid"])),
                 "lid": hex(int(a["port_lid"]))} for p, a in info["ports"].items()}
    identity = {"fw_ver": fw_ver or info["fw_ver"], "board_id": info["board_id"], "node_guid": info["node_guid"]}
    m.add_ib_device(BDF, info["hca_id"], ports, identity)
    return m


# ---------------------------------------------------------------- the three card modes


BDF = "0000:05:00.0"


def cx3_ib_mode(root) -> FakeIBMachine:
    """Both ports InfiniBand, linked, an SM seen (fixture: FDR56 both Active)."""
    m = FakeIBMachine(root)
    m.add_cx3(BDF, port1="ib", port2="ib")
    m.add_ib_ports_from_ibstat(BDF)
    m.add_ipoib("ib0", pci=BDF, mode="datagram", mtu=2044)
    m.add_ipoib("ib1", pci=BDF, mode="datagram", mtu=2044,
                mac="80:00:02:09:fe:80:00:00:00:00:00:00:00:02:c9:03:00:a4:e7:22")
    m.load_modules("ib_ipoib", "ib_umad")
    return m


def cx3_eth_mode(root) -> FakeIBMachine:
    """Both ports Ethernet (the HOWTO's eth40a/eth40b): RoCE ports, no IB."""
    m = FakeIBMachine(root)
    m.add_cx3(BDF, port1="eth", port2="eth")
    ports = parse_ibstat(fixture_output(CX3_IB_FIXTURE))[0]["ports"]
    for p in ports:
        p.link_layer, p.sm_lid, p.lid, p.rate = "Ethernet", 0, 0, "40 Gb/sec (4X QDR)"
    m.add_ib_ports(BDF, ports)
    m.add_netdev("eth40a", pci=BDF, mac="00:02:c9:3e:ca:b1", txqueuelen=10000)
    m.add_netdev("eth40b", pci=BDF, mac="00:02:c9:3e:ca:b0", txqueuelen=10000)
    m.load_modules("mlx4_en")
    return m


def cx3_mixed_mode(root) -> FakeIBMachine:
    """Port 1 InfiniBand in INIT with no SM (fixture: Initializing/LinkUp,
    SM lid 0), port 2 Ethernet."""
    m = FakeIBMachine(root)
    m.add_cx3(BDF, port1="ib", port2="eth")
    ports = parse_ibstat(fixture_output(CX3_INIT_FIXTURE))[0]["ports"]
    ports[1].link_layer = "Ethernet"
    m.add_ib_ports(BDF, ports)
    m.add_ipoib("ib0", pci=BDF, mode="datagram", mtu=2044)
    m.add_netdev("eth40b", pci=BDF, mac="00:02:c9:3e:ca:b0")
    m.load_modules("mlx4_en", "ib_ipoib", "ib_umad")
    return m


# ---------------------------------------------------------------- fake programs


class FakeTools:
    """A bin dir that is the whole PATH: the fake mstconfig (unless
    missing=True) and a fake modprobe recording its arguments."""

    def __init__(self, tmp: Path, monkeypatch, missing: bool = False, root: Path | None = None):
        self.bin = tmp / "bin"
        self.bin.mkdir(parents=True, exist_ok=True)
        self.state_path = tmp / "mstconfig-state.json"
        self.modprobe_log = tmp / "modprobe.log"
        if not missing:
            (self.bin / "mstconfig").symlink_to(TESTS_BIN / "mstconfig")
        modprobe = self.bin / "modprobe"
        # Like the real one, a loaded module shows up as /sys/module/<name>
        # (under the fake root, when the test names one).
        modprobe.write_text("#!/usr/bin/python3\nimport os, sys\n"
                            f"open({str(self.modprobe_log)!r}, 'a').write(' '.join(sys.argv[1:]) + '\\n')\n"
                            f"root = {str(root) if root else None!r}\n"
                            "if root:\n"
                            "    os.makedirs(os.path.join(root, 'sys/module', sys.argv[-1]), exist_ok=True)\n")
        modprobe.chmod(modprobe.stat().st_mode | stat.S_IXUSR)
        monkeypatch.setenv("PATH", str(self.bin))
        monkeypatch.setenv("IB40_FAKE_MSTCONFIG_STATE", str(self.state_path))
        self.state = {"devices": {}, "calls": []}
        self.save()

    def add_card(self, bdf: str = BDF, *, rel: str = CX3_QUERY_FIXTURE, refuse: str | None = None,
                 link_types: dict[int, str] | None = None) -> None:
        """Seed a card's Next Boot table from a real query sample; link_types
        overrides LINK_TYPE_Pn ({1: "ib"})."""
        dev = mstconfig.parse(fixture_output(rel)).devices[0]
        params = [[name, cols["Next Boot"].text] for name, cols in dev.params.items()]
        labels = {1: "IB(1)", 2: "ETH(2)", 3: "VPI(3)"}
        for port, kind in (link_types or {}).items():
            value = labels[mstconfig.PORT_TYPE_TO_LINK_TYPE[kind]]
            params = [[n, value if n == f"LINK_TYPE_P{port}" else v] for n, v in params]
        self.state["devices"][bdf] = {"type": dev.device_type, "refuse": refuse, "params": params}
        self.save()

    def save(self) -> None:
        self.state_path.write_text(json.dumps(self.state))

    def load(self) -> dict:
        return json.loads(self.state_path.read_text())

    def calls(self) -> list[list[str]]:
        return self.load()["calls"]

    def set_calls(self) -> list[list[str]]:
        return [c for c in self.calls() if "set" in c]

    def next_boot(self, bdf: str = BDF) -> dict[str, str]:
        return {n: v for n, v in self.load()["devices"][bdf]["params"] if n.startswith("LINK_TYPE")}

    def modprobed(self) -> list[str]:
        return self.modprobe_log.read_text().split() if self.modprobe_log.exists() else []
