# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d doctor`: what limits the link, each finding with its fix.

The HOWTO's troubleshooting half, done for the user: the card's PCIe link
(the usual culprit: a card in a slot that is x16 long but x4 wired), IB port
state and the subnet manager, IPoIB mode and MTU, the links and the bond
against the config, and the TCP/IP tuning.

Shape: `observe()` reads everything through SysRoot into plain data (so
`--root` works on a support bundle); the `check_*` functions are pure and
turn that data into findings; `run()` prints. Exit 1 when a finding is a
problem, 0 otherwise; warnings do not fail.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, field

from ib40d import ibports, pcie, runner, tuning
from ib40d.bonding import parse_proc_bonding
from ib40d.cli import config_path, load_config, sysroot
from ib40d.config import Config
from ib40d.errors import UserError
from ib40d.linkstate import read_link
from ib40d.sync import SHIPPED_SYSCTL, SYSCTL_MASK
from ib40d.sysroot import SysRoot

MELLANOX_VENDOR = 0x15B3
# PCI device ids (pci.ids) of the cards ib40 is written for; other Mellanox
# devices are still examined, under a generic name.
CARD_NAMES = {0x1003: "ConnectX-3", 0x1007: "ConnectX-3 Pro"}
# ConnectX-3 VPI ports are 40 Gb/s Ethernet or up to 56 Gb/s FDR; with no
# active port to read a rate from, compare the PCIe link against 40.
DEFAULT_PORT_GBIT_S = 40.0
IPOIB_CONNECTED_MTU = 65520

SEVERITIES = ("ok", "warning", "problem")


@dataclass(frozen=True)
class Finding:
    severity: str  # "ok" | "warning" | "problem"
    code: str
    message: str
    fix: str = ""
    details: tuple[str, ...] = ()  # extra lines (e.g. each sysctl value and the wanted one)

    def as_dict(self) -> dict:
        d = asdict(self)
        d["details"] = list(self.details)
        return d


@dataclass
class Card:
    pci: str  # "0000:05:00.0"
    device_id: int | None
    numa_node: int | None
    pcie: pcie.PcieLink | None
    netdevs: list[str] = field(default_factory=list)
    ib_devices: list[str] = field(default_factory=list)
    # Rates (Gbit/s) of ports that are up: IB rate or netdev speed.
    active_port_rates: list[float] = field(default_factory=list)
    cpulist: str | None = None

    @property
    def name(self) -> str:
        if self.device_id in CARD_NAMES:
            return CARD_NAMES[self.device_id]
        return f"Mellanox device {self.device_id:#06x}" if self.device_id is not None else "Mellanox device"

    @property
    def port_gbit_s(self) -> float:
        """The fastest single port: what one stream of traffic can ask of PCIe."""
        return max(self.active_port_rates, default=DEFAULT_PORT_GBIT_S)

    @property
    def limit_gbit_s(self) -> float | None:
        """The lesser of the PCIe link and the port (per machine; the link as a
        whole is limited by the lesser of both machines)."""
        bw = self.pcie.bandwidth_gbit_s if self.pcie else None
        return self.port_gbit_s if bw is None else min(bw, self.port_gbit_s)

    def as_dict(self) -> dict:
        return {
            "pci": self.pci,
            "name": self.name,
            "device_id": None if self.device_id is None else f"{self.device_id:#06x}",
            "numa_node": self.numa_node,
            "cpulist": self.cpulist,
            # the same keys when the link is unknown, all null
            "pcie": (self.pcie or pcie.PcieLink(None, None, source=None)).as_dict(),
            "netdevs": self.netdevs,
            "ib_devices": self.ib_devices,
            "port_gbit_s": self.port_gbit_s,
            "limit_gbit_s": None if self.limit_gbit_s is None else round(self.limit_gbit_s, 2),
        }


@dataclass
class Observed:
    cards: list[Card]
    ib_ports: list[ibports.IBPort]
    links: dict[str, dict]  # every netdev doctor looked at, by name
    bonds: dict[str, dict | None]  # parsed /proc/net/bonding/<bond>, None when absent
    sysctl: dict[str, str | None]  # key -> current value (None: not readable)
    numa_nodes: int


# ----------------------------------------------------------------- reading

def _lspci_link(root: SysRoot, bdf: str) -> pcie.PcieLink | None:
    """`lspci -vv` when sysfs lacks the link attributes: only on the live
    machine (a captured tree is not this machine's PCI bus)."""
    if not root.is_live:
        return None
    try:
        done = runner.run(["lspci", "-vv", "-s", bdf], timeout=10)
    except UserError:
        return None
    return pcie.parse_lspci(done.stdout) if done.returncode == 0 else None


def find_cards(root: SysRoot, ib_ports: list[ibports.IBPort], only_pci: str | None = None) -> list[Card]:
    cards = []
    for bdf in root.listdir("/sys/bus/pci/devices"):
        dev = f"/sys/bus/pci/devices/{bdf}"
        if root.read_int(f"{dev}/vendor") != MELLANOX_VENDOR or root.exists(f"{dev}/physfn"):
            continue  # not Mellanox, or an SR-IOV virtual function
        if only_pci and bdf != only_pci:
            continue
        link = pcie.read_sysfs(root, dev) or _lspci_link(root, bdf)
        numa = root.read_int(f"{dev}/numa_node")
        numa = None if numa is None or numa < 0 else numa
        card = Card(pci=bdf, device_id=root.read_int(f"{dev}/device"), numa_node=numa, pcie=link,
                    netdevs=root.listdir(f"{dev}/net"), ib_devices=root.listdir(f"{dev}/infiniband"),
                    cpulist=root.read(f"/sys/devices/system/node/node{numa}/cpulist") if numa is not None else None)
        for port in ib_ports:
            # A port that is not ACTIVE shows a placeholder rate (e.g. "10 Gb/sec (4X SDR)").
            if port.device in card.ib_devices and port.state == "ACTIVE" and port.rate_gbps:
                card.active_port_rates.append(port.rate_gbps)
        for name in card.netdevs:
            speed = root.read_int(f"/sys/class/net/{name}/speed")  # Mb/s; -1 without link
            if speed and speed > 0:
                card.active_port_rates.append(speed / 1000)
        cards.append(card)
    return cards


def observe(root: SysRoot, cfg: Config | None) -> Observed:
    ib_ports = ibports.read_ports(root)
    only_pci = cfg.card.pci if cfg and cfg.card else None
    cards = find_cards(root, ib_ports, only_pci)
    names = set(root.listdir("/sys/class/net"))
    if cfg:
        names |= set(cfg.names())
    links = {n: read_link(root, n) for n in sorted(names) if n != "lo"}
    bond_names = set(root.listdir("/proc/net/bonding")) | (set(cfg.bonds) if cfg else set())
    bonds = {}
    for b in sorted(bond_names):
        text = root.read(f"/proc/net/bonding/{b}")
        bonds[b] = parse_proc_bonding(text) if text is not None else None
    sysctl = {key: root.read(tuning.proc_path(key)) for key in tuning.SYSCTL}
    numa_nodes = len([d for d in root.listdir("/sys/devices/system/node") if re.fullmatch(r"node\d+", d)])
    return Observed(cards, ib_ports, links, bonds, sysctl, numa_nodes)


# ----------------------------------------------------------------- checks (pure)

def _gbit(x: float) -> str:
    return f"{x:.1f} Gbit/s"


def check_card(card: Card, numa_nodes: int) -> list[Finding]:
    out = []
    link = card.pcie
    where = f"{card.name} at {card.pci}"
    port = card.port_gbit_s
    if link is None or link.bandwidth_gbit_s is None:
        seen = "no link attributes in sysfs" if link is None else \
            f"speed {link.speed_gt_s or 'unknown'} GT/s, width x{link.width or '?'}"
        out.append(Finding("warning", "pcie-unknown", f"{where}: PCIe link unknown ({seen})",
                           f"run `lspci -vv -s {card.pci}` as root and read LnkSta (speed, width)"))
    else:
        now = f"PCIe {pcie.describe(link.speed_gt_s, link.width)} = {_gbit(link.bandwidth_gbit_s)}"
        can = (f"the card can do {pcie.describe(link.max_speed_gt_s, link.max_width)} = "
               f"{_gbit(link.max_bandwidth_gbit_s)}") if link.max_bandwidth_gbit_s else ""
        below = link.bandwidth_gbit_s < port
        if link.downgraded:
            causes, fixes = [], []
            if link.width and link.max_width and link.width < link.max_width:
                causes.append(f"x{link.width} of x{link.max_width} lanes")
                fixes.append(f"move the card to a slot wired x{link.max_width} (many x16-long slots are "
                             f"x4 electrically) or change the slot's lane split in the BIOS; reseat the card")
            if link.speed_gt_s and link.max_speed_gt_s and link.speed_gt_s < link.max_speed_gt_s:
                causes.append(f"Gen{pcie.generation(link.speed_gt_s) or '?'} of "
                              f"Gen{pcie.generation(link.max_speed_gt_s) or '?'}")
                fixes.append("set the slot's link speed to Auto/Gen"
                             f"{pcie.generation(link.max_speed_gt_s) or '?'} in the BIOS, or use a slot "
                             "from the CPU rather than the chipset")
            verdict = (f"below its {_gbit(port)} port" if below
                       else f"still enough for its {_gbit(port)} port")
            out.append(Finding("problem" if below else "warning", "pcie-downgraded",
                               f"{where} runs at {now} ({', '.join(causes)}), {verdict}; {can}",
                               "; ".join(fixes)))
        elif below:
            out.append(Finding("problem", "pcie-below-port-rate",
                               f"{where} runs at {now}, below its {_gbit(port)} port even at full link",
                               f"expect at most {_gbit(link.bandwidth_gbit_s)} from this card; "
                               "a Gen3 x8 slot and card carry a 40 Gbit/s port"))
        else:
            both = sum(card.active_port_rates)
            note = (f"; both ports together ({_gbit(both)}) exceed it: a bond over both is capped "
                    f"at {_gbit(link.bandwidth_gbit_s)}") if len(card.active_port_rates) > 1 \
                and both > link.bandwidth_gbit_s else ""
            out.append(Finding("ok", "pcie", f"{where}: {now}, enough for its {_gbit(port)} port{note}"))
    if card.numa_node is not None and numa_nodes > 1:
        cpus = f" (CPUs {card.cpulist})" if card.cpulist else ""
        out.append(Finding("ok", "numa", f"{where} is on NUMA node {card.numa_node}{cpus}",
                           f"run benchmarks and busy services there: numactl --cpunodebind={card.numa_node} ..."))
    return out


def check_ib_ports(ports: list[ibports.IBPort]) -> list[Finding]:
    out = []
    for p in ports:
        if not p.is_infiniband:
            continue  # RoCE/Ethernet ports: their netdev is checked as a link
        name = f"{p.device} port {p.port}"
        if p.state == "ACTIVE":
            rate = f" at {p.rate_gbps:g} Gb/s" if p.rate_gbps else ""
            out.append(Finding("ok", "ib-port", f"{name} is ACTIVE{rate}"))
        elif p.state == "INIT" and not p.sm_lid:
            out.append(Finding("problem", "ib-no-sm",
                               f"{name} is INIT and sees no subnet manager (sm_lid 0): IPoIB cannot come up",
                               "one machine on the fabric must run opensm: `ib40d opensm-gate` starts it "
                               "where needed (`[opensm] start = auto`, the default; not `never`)"))
        elif p.state in ("INIT", "ARMED"):
            out.append(Finding("warning", "ib-port-init",
                               f"{name} is {p.state} although a subnet manager answers (sm_lid {p.sm_lid:#x})",
                               "wait a few seconds; if it stays, restart the subnet manager"))
        else:
            out.append(Finding("warning", "ib-port-down",
                               f"{name} is {p.state or 'unknown'} (physical {p.phys_state or 'unknown'}): no link",
                               "check the cable, and that the far end's port is in IB mode and up"))
    return out


def check_links(cfg: Config, links: dict[str, dict]) -> list[Finding]:
    """Configured links and bonds against what the kernel has."""
    out = []
    for name in cfg.names():
        want = cfg.bonds.get(name) or cfg.links[name]
        link = links.get(name) or {"exists": False}
        if not link.get("exists"):
            mac = getattr(want, "mac", None)
            out.append(Finding("problem", "link-missing", f"{name} (configured) does not exist",
                               (f"the udev rule names the port with MAC {mac}; check `ip link` for it and the "
                                "port type (`ib40d porttype`)") if mac else "run `ib40d apply`"))
            continue
        if link.get("admin_up") is False:
            out.append(Finding("problem", "link-admin-down", f"{name} is administratively down",
                               "run `ib40d apply`"))
        elif link.get("carrier") is False:
            out.append(Finding("problem", "no-carrier",
                               f"{name} has no carrier: cable unplugged, or the far end is down or of "
                               "the other port type", "check the cable and the far end's port"))
        mac = getattr(want, "mac", None)
        own_mac = link.get("perm_mac") or link.get("mac")
        if mac and own_mac and own_mac.lower() != mac:
            out.append(Finding("warning", "mac-mismatch",
                               f"{name} has MAC {own_mac}, configured {mac}",
                               "the name is on another port: check the udev rules (`ib40d sync`)"))
        if want.mtu is not None and link.get("mtu") != want.mtu:
            ipoib = link.get("kind") == "ipoib"
            out.append(Finding("problem" if ipoib else "warning", "ipoib-mtu" if ipoib else "mtu-mismatch",
                               f"{name} MTU is {link.get('mtu')}, configured {want.mtu}",
                               "run `ib40d apply`" + (" (IPoIB: MTU above 4092 needs connected mode)"
                                                       if ipoib else "")))
        txq = getattr(want, "txqueuelen", None)
        if txq is not None and link.get("txqueuelen") != txq:
            out.append(Finding("warning", "txqueuelen-mismatch",
                               f"{name} txqueuelen is {link.get('txqueuelen')}, configured {txq}",
                               "run `ib40d apply`"))
        mode = getattr(want, "mode", None)
        if link.get("kind") == "ipoib" and mode and link.get("ipoib_mode") != mode:
            out.append(Finding("problem", "ipoib-mode",
                               f"{name} runs in {link.get('ipoib_mode')} mode, configured {mode}"
                               + (" (datagram caps the MTU at 4092)" if mode == "connected" else ""),
                               "run `ib40d apply` (mode is set with the link down, then the MTU); if the "
                               "kernel refuses, this driver has no connected mode"))
        bond = cfg.bond_of(name)
        if bond and link.get("master") != bond.name:
            out.append(Finding("problem", "not-enslaved", f"{name} is not a slave of {bond.name}",
                               "run `ib40d apply`"))
    return out


def check_ipoib_defaults(links: dict[str, dict], configured: set[str]) -> list[Finding]:
    """IPoIB links the config does not describe: the HOWTO's advice
    (connected mode, MTU 65520) as warnings."""
    out = []
    for name, link in links.items():
        if name in configured or not link.get("exists") or link.get("kind") != "ipoib":
            continue
        if link.get("ipoib_mode") == "datagram":
            out.append(Finding("warning", "ipoib-datagram",
                               f"{name} runs in datagram mode (MTU {link.get('mtu')}, at most 4092)",
                               f"connected mode with MTU {IPOIB_CONNECTED_MTU} is much faster for TCP: "
                               f"`mode = connected` and `mtu = {IPOIB_CONNECTED_MTU}` in [ipoib {name}] "
                               "of /etc/ib40.conf"))
        elif link.get("ipoib_mode") == "connected" and (link.get("mtu") or 0) < IPOIB_CONNECTED_MTU:
            out.append(Finding("warning", "ipoib-mtu",
                               f"{name} is in connected mode with MTU {link.get('mtu')}",
                               f"set MTU {IPOIB_CONNECTED_MTU}: `mtu = {IPOIB_CONNECTED_MTU}` in its "
                               "[ipoib] section"))
    return out


def check_bonds(cfg: Config | None, bonds: dict[str, dict | None]) -> list[Finding]:
    out = []
    for name, info in bonds.items():
        want = cfg.bonds.get(name) if cfg else None
        if info is None:
            if want:
                out.append(Finding("problem", "bond-missing", f"{name} (configured) does not exist",
                                   "run `ib40d apply`; the bonding module must be loadable"))
            continue
        if want and want.mode and info["mode"] != want.mode:
            out.append(Finding("problem", "bond-mode", f"{name} is {info['mode']}, configured {want.mode}",
                               "run `ib40d apply` (the bond is taken down and emptied to change mode)"))
        present = {s["name"] for s in info["slaves"]}
        for missing in (s for s in (want.slaves if want else ()) if s not in present):
            out.append(Finding("problem", "bond-slave-missing", f"{name} lacks slave {missing}",
                               f"run `ib40d apply`; check that {missing} exists"))
        for s in info["slaves"]:
            fails = s["link_failure_count"] or 0
            failures = f"{fails} link failure{'s' if fails != 1 else ''}"
            if s["mii_status"] != "up":
                out.append(Finding("problem", "bond-slave-down",
                                   f"{name} slave {s['name']}: MII {s['mii_status']}, {failures}",
                                   f"check {s['name']}'s cable and the far end's port; the bond runs on "
                                   "the other slaves meanwhile"))
            elif fails:
                out.append(Finding("warning", "bond-slave-flapped",
                                   f"{name} slave {s['name']}: up, but {failures} since the bond came up",
                                   "a loose cable or a far end that restarted; watch `ib40d status`"))
        if all(s["mii_status"] == "up" for s in info["slaves"]) and info["slaves"]:
            out.append(Finding("ok", "bond", f"{name}: {info['mode']}, "
                                             f"{len(info['slaves'])} slave(s) up"))
    return out


def check_sysctl(current: dict[str, str | None], enabled: bool = True) -> list[Finding]:
    if not enabled:
        return [Finding("ok", "sysctl-off", "TCP/IP tuning is switched off in the config; not checked")]
    readable = {k: v for k, v in current.items() if v is not None}
    if not readable:
        return [Finding("ok", "sysctl-unknown", "no /proc/sys values here; TCP/IP tuning not checked")]
    wrong = {k: tuning.normalize(v) for k, v in readable.items() if not tuning.satisfied(k, v)}
    if not wrong:
        return [Finding("ok", "sysctl", f"TCP/IP tuning in place ({len(readable)} values)")]
    return [Finding("warning", "sysctl",
                    f"{len(wrong)} of {len(readable)} TCP/IP tuning values differ from the HOWTO's: "
                    + ", ".join(wrong),
                    f"`sysctl --system` loads {SHIPPED_SYSCTL}; a file named later in /etc/sysctl.d may "
                    f"override it, and {SYSCTL_MASK} -> /dev/null switches it off",
                    details=tuple(f"{k} = {v} (want {tuning.SYSCTL[k]})" for k, v in wrong.items()))]


def diagnose(obs: Observed, cfg: Config | None) -> list[Finding]:
    findings: list[Finding] = []
    if not obs.cards:
        wanted = cfg.card.pci if cfg and cfg.card and cfg.card.pci else None
        findings.append(Finding("problem" if wanted else "warning", "no-card",
                                f"no Mellanox PCI device {wanted} found" if wanted
                                else "no Mellanox PCI device found",
                                "check `lspci | grep Mellanox`; reseat the card"))
    for card in obs.cards:
        findings += check_card(card, obs.numa_nodes)
    findings += check_ib_ports(obs.ib_ports)
    if cfg is None:
        findings.append(Finding("ok", "no-config",
                                "no /etc/ib40.conf: configured-vs-actual checks skipped"))
    else:
        findings += check_links(cfg, obs.links)
    findings += check_ipoib_defaults(obs.links, set(cfg.links) if cfg else set())
    findings += check_bonds(cfg, obs.bonds)
    findings += check_sysctl(obs.sysctl, cfg.sysctl.tuning if cfg else True)
    return findings


def local_limit(root: SysRoot) -> tuple[float | None, str]:
    """What this machine's card can carry (for bench): Gbit/s and why."""
    cards = find_cards(root, ibports.read_ports(root))
    known = [c for c in cards if c.limit_gbit_s is not None]
    if not known:
        return None, "no Mellanox card found here"
    card = min(known, key=lambda c: c.limit_gbit_s)
    link = card.pcie
    pcie_part = (f"PCIe {pcie.describe(link.speed_gt_s, link.width)} {_gbit(link.bandwidth_gbit_s)}"
                 if link and link.bandwidth_gbit_s else "PCIe unknown")
    return card.limit_gbit_s, f"{card.name} at {card.pci}: {pcie_part}, port {_gbit(card.port_gbit_s)}"


# ----------------------------------------------------------------- command

def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print cards and findings as JSON")


def _load_optional_config(args) -> tuple[Config | None, str | None]:
    """The config when there is one. doctor works without it (a support
    bundle, a machine not set up yet); an explicit -c FILE that is missing,
    or any invalid config, is still an error (ConfigError, exit 2)."""
    path = config_path(args)
    if not getattr(args, "config", None) and not os.path.exists(path):
        return None, None
    return load_config(args), path


def report(obs: Observed, findings: list[Finding], config_file: str | None) -> dict:
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    return {
        "config": config_file,
        "cards": [c.as_dict() for c in obs.cards],
        "findings": [f.as_dict() for f in findings],
        "problems": counts["problem"],
        "warnings": counts["warning"],
    }


def render_text(rep: dict) -> str:
    lines = []
    for c in rep["cards"]:
        p = c["pcie"]
        if p and p["bandwidth_gbit_s"] is not None:
            link = f"PCIe {pcie.describe(p['speed_gt_s'], p['width'])} = {p['bandwidth_gbit_s']:.1f} Gbit/s"
            if p["max_width"] or p["max_speed_gt_s"]:
                link += f" (card: {pcie.describe(p['max_speed_gt_s'], p['max_width'])})"
        else:
            link = "PCIe link unknown"
        numa = f", NUMA node {c['numa_node']}" if c["numa_node"] is not None else ""
        nets = f", netdevs {' '.join(c['netdevs'])}" if c["netdevs"] else ""
        lines.append(f"{c['name']} {c['pci']}: {link}{numa}{nets}")
    if rep["cards"]:
        lines.append("")
    label = {"ok": "ok", "warning": "WARNING", "problem": "PROBLEM"}
    for f in rep["findings"]:
        lines.append(f"{label[f['severity']]:<8} {f['code']}: {f['message']}")
        for detail in f["details"] if f["severity"] != "ok" else ():
            lines.append(f"{'':<8}   {detail}")
        if f["fix"] and f["severity"] != "ok":
            lines.append(f"{'':<8}   fix: {f['fix']}")
    lines.append(f"doctor: {rep['problems']} problem(s), {rep['warnings']} warning(s)")
    return "\n".join(lines)


def run(args) -> int:
    cfg, path = _load_optional_config(args)
    obs = observe(sysroot(args), cfg)
    findings = diagnose(obs, cfg)
    rep = report(obs, findings, path)
    print(json.dumps(rep, indent=2) if args.json else render_text(rep))
    return 1 if rep["problems"] else 0
