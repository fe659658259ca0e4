# SPDX-License-Identifier: GPL-2.0-or-later
"""Which card this is and what it can do: generation, firmware, PSID.

Pure. system/sysfs.read_identity() reads what the kernel shows without
mstflint (the PCI device id and driver; fw_ver, board_id = PSID, hca_type
and node_guid under /sys/class/infiniband/<dev>/) into a CardIdentity,
which looks itself up here. doctor and status show it, check refuses what
the card cannot do (capability_problems), doctor explains firmware trouble
(firmware_findings), plan words "reboot needed" (reboot_note).

The PSID says which firmware image the card runs, so whether its ports can
be InfiniBand at all: a card sold as VPI can carry Ethernet-only (EN)
firmware, and then mlx4 refuses `ib` on mlx4_portN with EOPNOTSUPP. Only
PSIDs found in public sources are in PSIDS, each with where it was read
(also listed in docs/cards.md); any other PSID is "unknown", never guessed
from its digits.
"""

from __future__ import annotations

import re

from ib40d.core.records import dataclass

MLX4, MLX5 = "mlx4", "mlx5"
# The IPoIB MTU of datagram mode (4096-byte IB MTU less the 4-byte IPoIB
# header): all that enhanced IPoIB (mlx5) offers.
DATAGRAM_MTU_MAX = 4092
# mstconfig sets port types only from this firmware on (Mellanox/mstflint issue #4:
# "mstconfig only supports ConnectX3/ConnectX3-Pro FW >= 2.31.5000").
MSTCONFIG_MIN_FW = (2, 31, 5000)

# IB speeds by name, slowest first, and the rate of a 4X link as the kernel
# prints it (drivers/infiniband/core/sysfs.c rate_show: "56 Gb/sec (4X FDR)").
IB_4X_GBIT = {"SDR": 10.0, "DDR": 20.0, "QDR": 40.0, "FDR10": 40.0, "FDR": 56.0,
              "EDR": 100.0, "HDR": 200.0, "NDR": 400.0}
IB_SPEED_ORDER = list(IB_4X_GBIT)


@dataclass(eq=False)
class Generation:
    """One PCI device id (pci.ids, vendor 15b3) and what its chip can do.
    The driver says the rest: mlx4 switches port types now (mlx4_portN) and
    has IPoIB connected mode; mlx5 changes port types only in firmware (and
    a reboot) and runs enhanced IPoIB, datagram only, MTU <= 4092."""
    name: str
    driver: str  # mlx4 | mlx5
    infiniband: bool  # the chip has IB ports at all (the Lx/Dx parts are Ethernet only)
    ib_speed: str | None  # fastest 4X IB speed of the family
    eth_gbit: float | None  # fastest Ethernet port of the family


# Device ids and names: pci.ids (https://pci-ids.ucw.cz/read/PC/15b3). Fastest
# speeds per family: NVIDIA/Mellanox adapter product briefs (ConnectX-3 VPI
# FDR 56 Gb/s and 40GbE; ConnectX-4/-5 EDR 100 Gb/s; ConnectX-6 HDR 200 Gb/s;
# ConnectX-7 NDR 400 Gb/s).
GENERATIONS: dict[int, Generation] = {
    0x1003: Generation("ConnectX-3", MLX4, True, "FDR", 40.0),
    0x1007: Generation("ConnectX-3 Pro", MLX4, True, "FDR", 40.0),
    0x1013: Generation("ConnectX-4", MLX5, True, "EDR", 100.0),
    0x1015: Generation("ConnectX-4 Lx", MLX5, False, None, 50.0),
    0x1017: Generation("ConnectX-5", MLX5, True, "EDR", 100.0),
    0x1019: Generation("ConnectX-5 Ex", MLX5, True, "EDR", 100.0),
    0x101B: Generation("ConnectX-6", MLX5, True, "HDR", 200.0),
    0x101D: Generation("ConnectX-6 Dx", MLX5, False, None, 200.0),
    0x101F: Generation("ConnectX-6 Lx", MLX5, False, None, 50.0),
    0x1021: Generation("ConnectX-7", MLX5, True, "NDR", 400.0),
}


@dataclass(eq=False)
class Firmware:
    """One PSID as a public source shows it."""
    psid: str
    board: str  # the ordering part number (OPN) the image is for
    generation: str
    kind: str  # "vpi": InfiniBand and Ethernet | "eth": Ethernet only
    ib_speed: str | None  # fastest IB speed of the board
    eth_gbit: float  # fastest Ethernet port of the board
    oem: str | None  # "HP", "Lenovo"...: NVIDIA's tools refuse to reflash it without --allow_psid_change
    source: str
    vpi_image: str | None = None  # the VPI firmware people cross-flash this board with, where a source says


# Every row: what the source printed (mlxfwmanager's "Description", an
# ibv_devinfo/flint query next to the board's name). "id N": a public GitHub
# file in the code search index this was researched with.
PSIDS: dict[str, Firmware] = {f.psid: f for f in (
    Firmware("MT_1090120019", "MCX354A-FCBT", "ConnectX-3", "vpi", "FDR", 40.0, None,
             "mlxfwmanager: 'MCX354A-FCB_A2-A5, ConnectX-3 VPI adapter card; dual-port QSFP; FDR IB "
             "(56Gb/s) and 40GigE' (GitHub files, search ids 13187629256, 15744917547); Red Hat's RHEL 7 "
             "Networking Guide 13.7 ibv_devinfo (tests/fixtures/ibv_devinfo)"),
    Firmware("MT_1100120019", "MCX353A-FCBT", "ConnectX-3", "vpi", "FDR", 40.0, None,
             "mlxfwmanager: 'MCX353A-FCB_A2-A5, ConnectX-3 VPI adapter card; single-port QSFP; FDR IB "
             "(56Gb/s) and 40GigE' (GitHub file, search id 44490430986); tests/fixtures ibstatus sample"),
    Firmware("MT_1090110018", "MCX354A-QCBT", "ConnectX-3", "vpi", "QDR", 10.0, None,
             "mlxfwmanager: 'MCX354A-QCB_Ax, ConnectX-3 VPI adapter card; dual-port QSFP; QDR IB "
             "(40Gb/s) and 10GigE' (GitHub file, search id 15979055913)"),
    Firmware("MT_1170110023", "MCX311A-XCAT", "ConnectX-3", "eth", None, 10.0, None,
             "mlxfwmanager: 'MCX311A-XCA_Ax, ConnectX-3 EN network interface card; 10GigE; single-port "
             "SFP+' (GitHub file, search id 37054930679); y0ug/hugo-blog-codsec "
             "content/posts/homelab/mellanox-connectx3-firmware-upgrade.md"),
    Firmware("MT_1080120023", "MCX312A-XCBT", "ConnectX-3", "eth", None, 10.0, None,
             "'ConnectX-3 2x10G NIC MCX312A-XCBT, PSID MT_1080120023 firmware 2.42.5000' (GitHub file, "
             "search id 46248213695); flint query 'PSID: MT_1080120023' then the "
             "MCX312A-XCB image (search id 27300719413); MCX312A-XCBT is on NVIDIA's ConnectX-3 EN "
             "firmware page (https://network.nvidia.com/support/firmware/connectx3en/)"),
    Firmware("MT_1090111023", "MCX314A-BCCT", "ConnectX-3 Pro", "eth", None, 40.0, None,
             "'cross flash the Mellanox MCX314A-BCCT (Ethernet only) to MCX354A-FCCT (VPI)... overriding "
             "the PS from MCX314A's MT_1090111023 to MCX354A-FCCT's MT_1090111019' (GitHub file, "
             "search id 25411925818)",
             vpi_image="MCX354A-FCCT (PSID MT_1090111019, https://network.nvidia.com/support/firmware/connectx3proib/)"),
    Firmware("MT_1090111019", "MCX354A-FCCT", "ConnectX-3 Pro", "vpi", "FDR", 40.0, None,
             "same source as MT_1090111023 (search id 25411925818)"),
    Firmware("HP_0280210019", "HP 544QSFP (MCX354A-FCBT image)", "ConnectX-3", "vpi", "FDR", 40.0, "HP",
             "a site's reflash script maps 'MT_1090120019 | HP_0280210019 | ORC1090120019' to "
             "fw-ConnectX3-rel-2_42_5000-MCX354A-FCB_A2-A5 (GitHub file, search id 13977656839)"),
    Firmware("ORC1090120019", "Oracle (MCX354A-FCBT image)", "ConnectX-3", "vpi", "FDR", 40.0, "Oracle",
             "same script as HP_0280210019 (search id 13977656839)"),
    Firmware("ISL1090110018", "QLogic/Intel OEM (MCX354A-QCBT image, FDR10)", "ConnectX-3", "vpi", "FDR10",
             10.0, "ISL", "same script: 'ISL1090110018 ... W: FDR10 card ! ... MCX354A-QCB_Ax' "
             "(search id 13977656839)"),
    Firmware("HP_1380110017", "HP 544+FLR-QSFP (764285-B21)", "ConnectX-3 Pro", "vpi", "FDR", 40.0, "HP",
             "tests/fixtures/mstconfig/cx3pro_hp544flr_mlxconfig_nextboot_eth_xfi.txt: 'HP InfiniBand "
             "FDR/Ethernet 10Gb/40Gb 2-port 544+FLR-QSFP' (skyao/learning-computer-hardware)"),
    Firmware("LNV2180110032", "Lenovo 00KH925 (MCX455A-ECAT)", "ConnectX-4", "vpi", "EDR", 100.0, "Lenovo",
             "tests/fixtures/mstconfig/cx4_mlxconfig_eth_truncated.txt: 'ConnectX-4 MCX455A-ECAT "
             "... 100GBe VPI EDR IB' (TerrenceMiao/blog)"),
)}


def parse_fw_ver(text: str | None) -> tuple[int, ...] | None:
    """"2.42.5000" -> (2, 42, 5000); None for anything else."""
    m = re.fullmatch(r"\s*(\d+)\.(\d+)\.(\d+)\s*", text or "")
    return tuple(int(x) for x in m.groups()) if m else None


@dataclass(eq=False)
class CardIdentity:
    """What sysfs shows of a card (system/sysfs.read_identity)."""
    pci: str
    device_id: int | None
    driver: str | None  # the bound driver ("mlx4_core"), None when not read (a bundle)
    fw_ver: str | None
    psid: str | None
    hca_type: str | None
    node_guid: str | None
    ib_device: str | None

    @property
    def generation(self) -> Generation | None:
        gen = GENERATIONS.get(self.device_id)
        if gen is None and self.driver in ("mlx4_core", "mlx5_core"):
            return Generation(f"Mellanox device {self.device_id or 0:#06x}", self.driver[:4], True, None, None)
        return gen

    @property
    def family(self) -> str | None:
        """mlx4 | mlx5: the bound driver first, else what the device id says."""
        if self.driver in ("mlx4_core", "mlx5_core"):
            return self.driver[:4]
        gen = self.generation
        return gen.driver if gen else None

    @property
    def firmware(self) -> Firmware | None:
        return PSIDS.get(self.psid or "")

    @property
    def kind(self) -> str:
        """vpi | eth | unknown: what the firmware lets the ports be."""
        gen = self.generation
        if gen is not None and not gen.infiniband:
            return "eth"  # the chip itself has no IB
        return self.firmware.kind if self.firmware else "unknown"

    @property
    def name(self) -> str:
        gen = self.generation
        return gen.name if gen else (f"Mellanox device {self.device_id:#06x}" if self.device_id is not None
                                     else "Mellanox device")

    @property
    def fw_too_old_for_mstconfig(self) -> bool:
        version = parse_fw_ver(self.fw_ver)
        return self.family == MLX4 and version is not None and version < MSTCONFIG_MIN_FW

    def ib_speed(self) -> str | None:
        if self.firmware and self.firmware.ib_speed:
            return self.firmware.ib_speed
        gen = self.generation
        return gen.ib_speed if gen else None

    def eth_gbit(self) -> tuple[float | None, bool]:
        """The fastest Ethernet rate of this card's ports, and whether that
        is the board's own (known PSID) rather than its family's best."""
        if self.firmware:
            return self.firmware.eth_gbit, True
        gen = self.generation
        return (gen.eth_gbit if gen else None), False

    def describe(self) -> str:
        """"ConnectX-3 (mlx4_core), firmware 2.42.5000, PSID MT_1090120019 (MCX354A-FCBT, VPI)"."""
        parts = [self.name + (f" ({self.driver})" if self.driver else "")]
        if self.fw_ver:
            parts.append(f"firmware {self.fw_ver}")
        if self.psid:
            fw = self.firmware
            parts.append(f"PSID {self.psid} " + (f"({fw.board}, {KIND_TEXT[fw.kind]})" if fw
                                                  else "(not in ib40's table: VPI or Ethernet-only unknown)"))
        elif self.kind == "eth":
            parts.append("Ethernet only")
        return ", ".join(parts)

    def as_dict(self) -> dict:
        fw = self.firmware
        gen = self.generation
        return {
            "generation": gen.name if gen else None,
            "family": self.family,
            "driver": self.driver,
            "fw_ver": self.fw_ver,
            "psid": self.psid,
            "board": fw.board if fw else None,
            "oem": fw.oem if fw else None,
            "firmware_kind": self.kind,
            "psid_source": fw.source if fw else None,
            "hca_type": self.hca_type,
            "node_guid": self.node_guid,
            "ib_device": self.ib_device,
            "mstconfig_can_set_port_types": None if parse_fw_ver(self.fw_ver) is None or self.family != MLX4
            else not self.fw_too_old_for_mstconfig,
        }


LINK_TYPE_VALUES = {"ib": 1, "eth": 2}  # mstconfig LINK_TYPE_Pn
KIND_TEXT = {"vpi": "VPI", "eth": "Ethernet only", "unknown": "unknown"}


@dataclass(eq=False)
class CardNote:
    """A finding about the card, for doctor (severity, code, message, fix)."""
    severity: str
    code: str
    message: str
    fix: str


def _where(ident: CardIdentity) -> str:
    return f"{ident.name} at {ident.pci}"


def _eth_only_why(ident: CardIdentity) -> str:
    if ident.firmware:
        return f"PSID {ident.psid} is {ident.firmware.board} Ethernet-only firmware"
    return f"the {ident.name} chip has no InfiniBand"


def _eth_only_fix(ident: CardIdentity, *ports: int) -> str:
    fix = "set " + ", ".join(f"port{p} = eth" for p in ports)
    fw = ident.firmware
    if fw is None or fw.vpi_image is None:
        return f"{fix}; InfiniBand needs a VPI card"  # no VPI image known for this board
    return (f"{fix}, or flash VPI firmware ({fw.vpi_image}) with `mstflint -d {ident.pci} -i <image.bin> "
            "--allow_psid_change burn` and reboot")


def _refusal_cause(ident: CardIdentity, kind: str) -> str:
    """Why mlx4 may have refused KIND: a port type the firmware does not carry."""
    if kind != "ib":
        return "`ib40d porttype` and `dmesg` show the driver's answer"
    known = (f"PSID {ident.psid} is not in ib40's table" if ident.psid else "the PSID is unknown here")
    return (f"mlx4 answers \"Operation not supported\" (EOPNOTSUPP) to ib when the firmware is Ethernet-only; "
            f"{known}")


def firmware_findings(ident: CardIdentity, want: dict[int, str | None],
                      running: dict[int, tuple[str | None, bool]], tried: dict[int, str | None] | None) -> list[CardNote]:
    """doctor's findings on the card itself. WANT: [card] port types
    ({1: "ib"}); RUNNING: mlx4_portN as parse_mlx4_port reads it (empty
    without mlx4); TRIED: the types ib40 last set (porttype.json's "want"),
    None when it never ran."""
    out = []
    where = _where(ident)
    eth_only = ident.kind == "eth"
    ib_ports = [port for port, kind in sorted(want.items()) if kind == "ib"]
    if ib_ports and eth_only:
        asked = ", ".join(f"port{p} = ib" for p in ib_ports)
        refusal = " (mlx4_portN: EOPNOTSUPP, \"Operation not supported\")" if ident.family == MLX4 else ""
        out.append(CardNote("problem", "firmware-eth-only",
                            f"{where}: [card] {asked}, but {_eth_only_why(ident)}: the driver refuses ib{refusal}",
                            _eth_only_fix(ident, *ib_ports)))
    for port, kind in sorted(want.items()):
        if not kind or port not in running:
            continue
        now, auto = running[port]
        shown = "auto" if auto else now
        if shown == kind or (kind == "ib" and eth_only):
            continue
        if tried is not None and tried.get(port) == kind:
            out.append(CardNote("problem", "porttype-refused",
                                f"{where}: port{port} runs {shown or 'unknown'} although ib40 set {kind}: the "
                                f"driver refused the change; {_refusal_cause(ident, kind)}",
                                "check the PSID against NVIDIA's firmware pages; flash VPI firmware, or set "
                                f"port{port} = {shown or 'eth'} in [card]"))
        else:
            out.append(CardNote("warning", "porttype-pending",
                                f"{where}: port{port} runs {shown or 'unknown'}, [card] asks {kind}",
                                "run `ib40d porttype` (or `ib40d apply`)"))
    if ident.fw_too_old_for_mstconfig:
        board = f" for {ident.firmware.board}" if ident.firmware else f" for PSID {ident.psid}" if ident.psid else ""
        out.append(CardNote("warning", "firmware-old",
                            f"{where}: firmware {ident.fw_ver} is older than "
                            f"{'.'.join(map(str, MSTCONFIG_MIN_FW))}: mstconfig cannot set its port types "
                            "(Mellanox/mstflint issue #4)",
                            f"update the firmware{board} (`mstflint -d {ident.pci} -i <image.bin> burn`, the "
                            "image from NVIDIA's ConnectX-3 firmware page for this PSID); meanwhile ib40 sets "
                            "port types through mlx4_portN and port_type_array"))
    if ident.firmware and ident.firmware.oem:
        out.append(CardNote("ok", "firmware-oem",
                            f"{where}: PSID {ident.psid} is {ident.firmware.oem} OEM firmware; NVIDIA's update "
                            "tools refuse it unless the PSID change is allowed (--allow_psid_change)", ""))
    if ident.psid and not ident.firmware:
        out.append(CardNote("ok", "psid-unknown",
                            f"{where}: PSID {ident.psid} is not in ib40's table: VPI or Ethernet-only unknown",
                            "look the PSID up on NVIDIA's firmware download pages"))
    return out


@dataclass(eq=False)
class CapabilityProblem:
    """What check refuses: (section name, key) of the config, and why."""
    section: str  # "card" or a link's name
    key: str
    message: str


def capability_problems(cfg, ident: CardIdentity, running: dict[int, str | None],
                        ipoibs=None) -> list[CapabilityProblem]:
    """The config against what this card can do. RUNNING: each port's type
    now ("ib" | "eth"), from mlx4_portN or the RDMA link layer. IPOIBS: the
    names of the [ipoib] sections on this card (None: every one), so a
    ConnectX-3's connected mode is not judged by a ConnectX-4 beside it."""
    out = []
    where = _where(ident)
    family = ident.family
    if family == MLX5:
        for name, link in cfg.ipoibs.items():
            if ipoibs is not None and name not in ipoibs:
                continue
            if link.mode == "connected":
                out.append(CapabilityProblem(
                    name, "mode", f"{where} (mlx5_core) runs enhanced IPoIB, which has no connected mode; "
                    f"use mode = datagram with mtu at most {DATAGRAM_MTU_MAX}"))
            if link.mtu is not None and link.mtu > DATAGRAM_MTU_MAX:
                out.append(CapabilityProblem(
                    name, "mtu", f"{where} (mlx5_core): enhanced IPoIB is datagram only, MTU at most "
                    f"{DATAGRAM_MTU_MAX}; use mtu = {DATAGRAM_MTU_MAX} (and opensm's partition mtu=5)"))
    card = cfg.card
    if card is None:
        return out
    for port in (1, 2):
        kind = getattr(card, f"port{port}")
        if kind == "ib" and ident.kind == "eth":
            out.append(CapabilityProblem("card", f"port{port}", f"{where}: {_eth_only_why(ident)}; "
                                         f"{_eth_only_fix(ident, port)}"))
        elif kind == "auto" and family == MLX5:
            out.append(CapabilityProblem("card", f"port{port}", f"{where} (mlx5_core) has no port-type auto-sensing "
                                         f"(mlx4 has, mlx5 not): set port{port} = ib or eth (firmware LINK_TYPE, "
                                         "then a reboot)"))
        elif kind in ("ib", "eth") and family == MLX5 and port in running and running[port] not in (None, kind):
            out.append(CapabilityProblem("card", f"port{port}", f"{where} (mlx5_core) runs port{port} as "
                                         f"{running[port]}: only its firmware can switch it to {kind}, not ib40 at run "
                                         f"time (mlx5 has no mlx4_portN): `mstconfig -d {ident.pci} set "
                                         f"LINK_TYPE_P{port}={LINK_TYPE_VALUES[kind]}`, then reboot"))
    return out


def reboot_note(ident: CardIdentity, port: int, old: str | None, new: str) -> str:
    return (f"reboot needed: {ident.name} at {ident.pci} port{port} {old or 'unknown'}->{new} is a firmware "
            "change (mlx5 has no runtime port-type switch)" if ident.family == MLX5 else
            f"reboot needed: {ident.name} at {ident.pci} port{port} {old or 'unknown'}->{new} takes effect at "
            "next boot (no runtime switch on this card now)")
