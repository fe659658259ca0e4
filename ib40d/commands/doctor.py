# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d doctor`: what limits the link, each finding with its fix.

The HOWTO's troubleshooting half, done for the user: the card's PCIe link
(the usual culprit: a card in a slot that is x16 long but x4 wired), IB port
state and the subnet manager, IPoIB mode and MTU, the links and the bond
against the config, and the TCP/IP tuning.

Shape: `observe()` reads everything through SysRoot into the machine model
(model.Machine, so `--root` works on a support bundle); the `check_*`
functions are pure and turn it into findings, the links and bonds through
the comparison plan makes (diff.py); `run()` prints. Exit 1 when a finding is a
problem, 0 otherwise; warnings do not fail.
"""

from __future__ import annotations

import json
import os
import re

from ib40d.core.records import asdict, dataclass
from ib40d.core import cards as cardinfo, ibports, linkrate, pcie, tuning
from ib40d.system import runner, sysfs
from ib40d.system.cliargs import config_path, load_config, sysroot
from ib40d.core.config import Config
from ib40d.core.diff import LinkDiff, diff
from ib40d.core.errors import UserError
from ib40d.core.model import Card, LinkObs, Machine
from ib40d.system.cardview import CardView, read_card_view
from ib40d.system.observe import find_cards, observe_sysfs
from ib40d.commands.sync import SHIPPED_SYSCTL, SYSCTL_MASK
from ib40d.system.sysroot import SysRoot

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


def read_cards(root: SysRoot, ib_ports: list[ibports.IBPort], only_pci: str | None = None) -> list[Card]:
    """The cards (observe.find_cards), with lspci where sysfs shows no PCIe
    link, and the rates of their ports that are up. ONLY_PCI: that card
    alone when it is there; every card when it is not (doctor names them)."""
    cards = find_cards(root)
    if any(c.pci == only_pci for c in cards):
        cards = [c for c in cards if c.pci == only_pci]
    for card in cards:
        card.pcie = card.pcie or _lspci_link(root, card.pci)
        for port in ib_ports:
            # A port that is not ACTIVE shows a placeholder rate (e.g. "10 Gb/sec (4X SDR)").
            if port.device in card.ib_devices and port.state == "ACTIVE" and port.rate_gbps:
                card.active_port_rates.append(port.rate_gbps)
        for name in card.netdevs:
            speed = root.read_int(f"/sys/class/net/{name}/speed")  # Mb/s; -1 without link
            if speed and speed > 0:
                card.active_port_rates.append(speed / 1000)
    return cards


def observe(root: SysRoot, cfg: Config | None) -> Machine:
    """Every netdev but lo (and every configured one), the bonds, cards, IB
    ports, TCP/IP tuning and NUMA nodes; not the addresses (no check here
    looks at them)."""
    names = set(root.listdir("/sys/class/net")) | (set(cfg.names()) if cfg else set())
    bonds = set(root.listdir("/proc/net/bonding")) | (set(cfg.bonds) if cfg else set())
    machine = observe_sysfs(root, sorted(names - {"lo"}), bonds=sorted(bonds), addresses=False)
    machine.ib_ports = sysfs.read_ports(root)
    machine.cards = read_cards(root, machine.ib_ports, cfg.card.pci if cfg and cfg.card else None)
    machine.sysctl = {key: root.read(tuning.proc_path(key)) for key in tuning.SYSCTL}
    machine.numa_nodes = len([d for d in root.listdir("/sys/devices/system/node") if re.fullmatch(r"node\d+", d)])
    return machine


def observe_cards(root: SysRoot, machine: Machine) -> list[CardView]:
    """Each card's identity, port types and port rates, from what observe()
    read (its links and IB ports)."""
    return [read_card_view(root, card, machine.links, machine.ib_ports) for card in machine.cards]


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
            cause, fix = linkrate.ib_down_cause(p.phys_state)
            out.append(Finding("warning", "ib-port-down", f"{name} is {p.state or 'unknown'}, physical {cause}", fix))
    return out


def check_card_identity(view: CardView, cfg: Config | None) -> list[Finding]:
    """Firmware (Ethernet-only, too old for mstconfig, OEM), port types the
    driver refused, and each port's rate against what the card can do."""
    want = cardinfo_want(cfg, view.card.pci)
    out = [Finding(n.severity, n.code, n.message, n.fix)
           for n in cardinfo.firmware_findings(view.identity, want, view.running, view.tried)]
    for rate in view.rates:
        if rate.note is not None:
            out.append(Finding(rate.note.severity, rate.note.code, rate.note.message, rate.note.fix))
    return out


def cardinfo_want(cfg: Config | None, pci: str) -> dict[int, str | None]:
    """The port types the card section of the card at PCI asks for."""
    card = next((c for c in cfg.cards if c.pci in (None, pci)), None) if cfg else None
    return {1: card.port1, 2: card.port2} if card else {}


def check_links(cfg: Config, machine: Machine) -> list[Finding]:
    """Configured links and bonds against what the kernel has: the
    differences plan would act on (diff.py), as findings, and the carrier.
    Not the addresses: doctor reads none (status shows them)."""
    out = []
    diffs = diff(cfg, machine)
    for name in cfg.names():
        d = diffs[name]
        if not d.present:
            mac = getattr(cfg.links.get(name), "mac", None)
            if mac:
                fix = (f"the udev rule names the port with MAC {mac}; check `ip link` for it and the "
                       "port type (`ib40d porttype`)")
            else:
                fix = "run `ib40d apply`" + ("; the bonding module must be loadable" if d.section == "bond" else "")
            out.append(Finding("problem", "link-missing", f"{name} (configured) does not exist", fix))
            continue
        vlan = d.get("vlan")
        if vlan:
            out.append(_vlan_mismatch(name, *vlan.old, *vlan.new))
            continue
        kind = d.get("kind")
        if kind:
            out.append(Finding("problem", "link-kind", f"{name} is of kind {kind.old}, configured as "
                                                       f"[{kind.new} {name}]",
                               f"apply leaves {name} and its bond alone: rename or remove that link, "
                               "or correct the section"))
            continue
        if d.get("state"):
            out.append(Finding("problem", "link-admin-down", f"{name} is administratively down",
                               "run `ib40d apply`"))
        elif d.link.carrier is False:
            out.append(Finding("problem", "no-carrier",
                               f"{name} has no carrier: cable unplugged, or the far end is down or of "
                               "the other port type", "check the cable and the far end's port"))
        out += [f for f in (_difference(d, c) for c in d.changes) if f]
    return out


def _vlan_mismatch(name: str, on: str | None, vid: int | None, want_on: str, want_vid: int) -> Finding:
    wrong = [w for w, differs in ((f"on {on}, not {want_on}", on != want_on),
                                  (f"VLAN id {vid}, not {want_vid}", vid != want_vid)) if differs]
    return Finding("problem", "vlan-mismatch",
                   f"{name} is VLAN {vid} on {on}; configured VLAN {want_vid} on {want_on}: {' and '.join(wrong)}",
                   f"apply leaves it so (the kernel changes neither): `ip link del {name}`, then `ib40d apply` "
                   "makes it as configured")


def _difference(d: LinkDiff, c) -> Finding | None:
    name, ipoib = d.name, d.link.kind == "ipoib"
    if c.attr == "mac":
        return Finding("warning", "mac-mismatch", f"{name} has MAC {c.old}, configured {c.new}",
                       "the name is on another port: check the udev rules (`ib40d sync`)")
    if c.attr == "mtu":
        return Finding("problem" if ipoib else "warning", "ipoib-mtu" if ipoib else "mtu-mismatch",
                       f"{name} MTU is {c.old}, configured {c.new}",
                       "run `ib40d apply`" + (" (IPoIB: MTU above 4092 needs connected mode)" if ipoib else ""))
    if c.attr == "txqueuelen":
        return Finding("warning", "txqueuelen-mismatch", f"{name} txqueuelen is {c.old}, configured {c.new}",
                       "run `ib40d apply`")
    if c.attr == "mode" and d.section == "ipoib":
        return Finding("problem", "ipoib-mode",
                       f"{name} runs in {c.old} mode, configured {c.new}"
                       + (" (datagram caps the MTU at 4092)" if c.new == "connected" else ""),
                       "run `ib40d apply` (mode is set with the link down, then the MTU); if the "
                       "kernel refuses, this driver has no connected mode")
    if c.attr == "mode":
        return Finding("problem", "bond-mode", f"{name} is {c.old}, configured {c.new}",
                       "run `ib40d apply` (the bond is taken down and emptied to change mode)")
    if c.attr == "master":
        if c.new:
            return Finding("problem", "not-enslaved", f"{name} is not a slave of {c.new}", "run `ib40d apply`")
        return Finding("warning", "enslaved", f"{name} is a slave of {c.old}, configured as a link of its own",
                       "run `ib40d apply` (it releases it)")
    if c.attr == "slave":
        return Finding("warning", "bond-extra-slave", f"{name} has slave {c.old}, which the config does not name",
                       f"apply leaves it there; `ip link set {c.old} nomaster` if it does not belong")
    if d.section == "bond" and c.attr not in ("state", "address"):
        return Finding("warning", "bond-option", f"{name} {c.attr} is {_text(c.old)}, configured {_text(c.new)}",
                       "run `ib40d apply`")
    return None  # state: said above; address: not read


def _text(value) -> str:
    return " ".join(map(str, value)) if isinstance(value, (list, tuple)) else str(value)


def check_ipoib_defaults(links: dict[str, LinkObs], configured: set[str]) -> list[Finding]:
    """IPoIB links the config does not describe: the HOWTO's advice
    (connected mode, MTU 65520) as warnings."""
    out = []
    for name, link in links.items():
        if name in configured or link.kind != "ipoib":
            continue
        if link.ipoib_mode == "datagram":
            out.append(Finding("warning", "ipoib-datagram",
                               f"{name} runs in datagram mode (MTU {link.mtu}, at most 4092)",
                               f"connected mode with MTU {IPOIB_CONNECTED_MTU} is much faster for TCP: "
                               f"`mode = connected` and `mtu = {IPOIB_CONNECTED_MTU}` in [ipoib {name}] "
                               "of /etc/ib40.conf"))
        elif link.ipoib_mode == "connected" and (link.mtu or 0) < IPOIB_CONNECTED_MTU:
            out.append(Finding("warning", "ipoib-mtu",
                               f"{name} is in connected mode with MTU {link.mtu}",
                               f"set MTU {IPOIB_CONNECTED_MTU}: `mtu = {IPOIB_CONNECTED_MTU}` in its "
                               "[ipoib] section"))
    return out


def check_bonds(bonds: dict[str, dict | None]) -> list[Finding]:
    """The bonds as /proc/net/bonding shows them: MII status and link
    failures of each slave. (A configured bond or slave that is missing is
    check_links', from the same comparison as plan's.)"""
    out = []
    for name, info in bonds.items():
        if info is None:
            continue
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


def check_card_sections(cfg: Config, cards: list[Card]) -> list[Finding]:
    """[card PCI] sections whose card is not there while another is: a typo,
    or a card moved to another slot (its address follows the slot)."""
    out = []
    for section in cfg.cards:
        if section.pci is None or not cards or any(c.pci == section.pci for c in cards):
            continue
        present = ", ".join(c.describe() for c in cards)
        key = "[card {}]" if section.section != "card" else "pci = {} in [card]"
        out.append(Finding("problem", "card-absent",
                           f"{section.label}: no Mellanox card at {section.pci}; present: {present}",
                           "a typo, or the card moved to another slot: write "
                           + " or ".join(key.format(c.pci) for c in cards)
                           + " for the card meant (`lspci -D -d 15b3:` lists them)"))
    return out


def diagnose(obs: Machine, cfg: Config | None, views: list[CardView] = ()) -> list[Finding]:
    """VIEWS: observe_cards(); the card identity and link rate findings."""
    findings: list[Finding] = check_card_sections(cfg, obs.cards) if cfg else []
    if not obs.cards:
        wanted = cfg.card.pci if cfg and cfg.card and cfg.card.pci else None
        findings.append(Finding("problem" if wanted else "warning", "no-card",
                                f"no Mellanox PCI device {wanted} found" if wanted
                                else "no Mellanox PCI device found",
                                "check `lspci | grep Mellanox`; reseat the card"))
    for card in obs.cards:
        findings += check_card(card, obs.numa_nodes)
    for view in views:
        if not cfg or not cfg.cards or any(c.pci in (None, view.card.pci) for c in cfg.cards):
            findings += check_card_identity(view, cfg)
    findings += check_ib_ports(obs.ib_ports)
    if cfg is None:
        findings.append(Finding("ok", "no-config",
                                "no /etc/ib40.conf: configured-vs-actual checks skipped"))
    else:
        findings += check_links(cfg, obs)
    findings += check_ipoib_defaults(obs.links, set(cfg.links) if cfg else set())
    findings += check_bonds(obs.bonding)
    findings += check_sysctl(obs.sysctl, cfg.sysctl.tuning if cfg else True)
    return findings


def local_limit(root: SysRoot) -> tuple[float | None, str]:
    """What this machine's card can carry (for bench): Gbit/s and why."""
    cards = read_cards(root, sysfs.read_ports(root))
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


def report(obs: Machine, findings: list[Finding], config_file: str | None, views: list[CardView] = ()) -> dict:
    counts = {s: sum(1 for f in findings if f.severity == s) for s in SEVERITIES}
    identity = {v.card.pci: v.as_dict() for v in views}
    return {
        "config": config_file,
        "cards": [dict(c.as_dict(), identity=identity.get(c.pci)) for c in obs.cards],
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
        ident = c.get("identity")
        if ident:
            lines.append(f"  {ident['describe']}")
            for p in ident["ports"]:
                if p["rate_gbit"] is not None:
                    can = f" of {p['can_gbit']:g}" if p["can_gbit"] else ""
                    width = f" {p['width']}" if p["width"] else ""
                    lines.append(f"  {p['port']}: {p['rate_gbit']:g}{can} Gb/s{width}")
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
    root = sysroot(args)
    obs = observe(root, cfg)
    views = observe_cards(root, obs)
    findings = diagnose(obs, cfg, views)
    if path is not None and args.root != "/":  # a bundle's tarball: named, not its temporary tree
        from ib40d.system.bundle import shown_path

        path = shown_path(path)
    rep = report(obs, findings, path, views)
    print(json.dumps(rep, indent=2) if args.json else render_text(rep))
    return 1 if rep["problems"] else 0
