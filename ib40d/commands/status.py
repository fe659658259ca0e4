# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d status`: one screen of what the configured links are now.

Reads sysfs and procfs only (plus one raw rtnetlink address dump, see
addrdump.py): it must not pay pyroute2's import, and with --root it works on a
support bundle captured on another machine.
"""

from __future__ import annotations

import json

from ib40d.system.cliargs import load_config, sysroot
from ib40d.core.diff import LinkDiff, diff, route_text
from ib40d.system.linkstate import ARPHRD_ETHER
from ib40d.core.model import LinkObs
from ib40d.system.observe import find_cards, observe_sysfs, read_vfs


PORTTYPE_STATE = "/run/ib40/porttype.json"  # porttype_plan.STATE_FILE (a test keeps them equal)


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the status as JSON")


def _role(cfg, name: str) -> str:
    if name in cfg.bonds:
        return "bond"
    if name in cfg.vlans:
        return f"vlan on {cfg.vlans[name].link}"
    bond = cfg.bond_of(name)
    if bond:
        return f"slave of {bond.name}"
    return "ipoib" if cfg.links[name].kind == "ipoib" else "link"


def _text(value) -> str:
    if isinstance(value, (list, tuple)):
        return " ".join(str(v) for v in value) or "(none)"
    return str(value)


def _mismatches(d: LinkDiff) -> list[str]:
    """What differs from the config (diff.py, what plan would change), in
    words, for the human view and the JSON."""
    if not d.present:
        return ["not present"]
    out: list[str] = []
    missing: list[str] = []
    missing_at = 0
    for c in d.changes:
        if c.attr == "address":
            if c.old is None:
                if not missing:
                    missing_at = len(out)  # one line for them all, where the first one is
                missing.append(c.new[0])
            elif c.new is None:
                out.append(f"address {c.old[0]} not in the config")
            else:
                out.append(f"address {c.old[0]} broadcast {c.old[1]} (config {c.new[1]})")
        elif c.attr == "master":
            out.append(f"not enslaved to {c.new}" if c.new else f"enslaved to {c.old} (config: not a slave)")
        elif c.attr == "state":
            out.append("admin down")
        elif c.attr == "kind":
            out.append(f"kind {c.old} (config [{c.new} {d.name}])")
        elif c.attr == "route":
            out.append(f"route {route_text(c.new)} missing" if c.old is None else
                       f"route {route_text(c.old)} " + ("not in the config" if c.new is None else f"(config {route_text(c.new)})"))
        elif c.attr == "slave":
            out.append(f"slave {c.old} not in the config")
        elif c.attr == "mode" and d.section == "ipoib":
            out.append(f"IPoIB {c.old} (config {c.new})")
        else:
            out.append(f"{c.attr} {_text(c.old)} (config {_text(c.new)})")
    if missing:
        out.insert(missing_at, f"address {' '.join(missing)} missing")
    if d.bond_unknown:
        out.append("bond settings not shown by the kernel")
    return out


def _link_json(name: str, link: LinkObs | None) -> dict:
    if link is None:
        return {"name": name, "exists": False}
    return {
        "name": name,
        "exists": True,
        "mac": link.mac,
        "perm_mac": link.perm_mac,
        "mtu": link.mtu,
        "txqueuelen": link.txqueuelen,
        "operstate": link.operstate,
        "carrier": link.carrier,
        "admin_up": link.admin_up,
        "master": link.master,
        "kind": link.kind or ("ether" if link.arptype == ARPHRD_ETHER else None),
        "ipoib_mode": link.ipoib_mode,
        "speed_mbps": link.speed_mbps,
    }


def _add_vfs(cfg, root, links: list[dict]) -> None:
    """Each [ipoib] port's virtual functions and their GUIDs (None: the
    kernel does not show them), where a card has vfs."""
    from ib40d.core import sriov

    if not any(sriov.wants_vfs(c) for c in cfg.cards):
        return
    vfs = read_vfs(root, {l["name"] for l in links if l.get("kind") == "ipoib"})
    for entry in links:
        if entry["name"] in vfs:
            entry["vfs"] = [{"vf": v.vf, "node_guid": v.node_guid, "port_guid": v.port_guid} for v in vfs[entry["name"]]]


def collect(cfg, root) -> dict:
    names = [*cfg.bonds, *cfg.links, *cfg.vlans]
    machine = observe_sysfs(root, names, bonds=cfg.bonds)
    diffs = diff(cfg, machine)
    links = []
    for name in names:
        link = machine.get(name)
        entry = _link_json(name, link)
        entry.update(role=_role(cfg, name),
                     addresses=[{"cidr": a.cidr, "broadcast": a.broadcast} for a in link.addresses] if link else [],
                     mismatches=_mismatches(diffs[name]))
        links.append(entry)
    _add_vfs(cfg, root, links)
    bonds = []
    for name in cfg.bonds:
        info = machine.bonding.get(name)
        if info is None:
            bonds.append({"name": name, "exists": False})
            continue
        bonds.append(dict(info, name=name, exists=True))
    status = {"config": list(cfg.files), "links": links, "bonds": bonds}
    status["port_types"] = []  # one entry a card that `porttype` set
    if root.exists(PORTTYPE_STATE):  # only machines whose card ib40 handles pay for porttype's import
        from ib40d.system.porttype_system import status_json

        status["port_types"] = status_json(root)
    # Each card: generation, firmware, PSID, and its ports' rates against what it can do.
    wanted = {c.pci for c in cfg.cards}
    cards = [card for card in find_cards(root) if None in wanted or not wanted or card.pci in wanted]
    status["cards"] = []
    if cards:  # only machines with a card pay for the card tables
        from ib40d.system.cardview import read_card_view

        status["cards"] = [read_card_view(root, card).as_dict() for card in cards]
    # IB ports only where there are some: asking systemd whether our opensm
    # runs costs a D-Bus round trip that an Ethernet-only machine can skip.
    status["ib_ports"] = []
    if root.listdir("/sys/class/infiniband"):
        from ib40d.system import sysfs

        if sysfs.read_ports(root):
            from ib40d.commands import opensm

            status["ib_ports"] = opensm.ports_status(root)
    return status


def _yesno(value) -> str:
    return "-" if value is None else ("yes" if value else "no")


def render(status: dict) -> str:
    lines = [f"ib40 status ({', '.join(status['config'])})", ""]
    header = f"{'LINK':<10} {'ROLE':<15} {'STATE':<8} {'CARRIER':<7} {'MAC':<17} {'MTU':>6} {'TXQLEN':>7}  ADDRESSES"
    lines.append(header)
    for l in status["links"]:
        if not l.get("exists"):
            lines.append(f"{l['name']:<10} {l['role']:<15} absent")
            continue
        addrs = " ".join(a["cidr"] for a in l["addresses"] if not a["cidr"].startswith("fe80:")) or "-"
        mac = l["mac"] or "-"
        if len(mac) > 17:  # IPoIB: 20-byte address; show the port GUID part
            mac = "…" + mac[-23:].replace(":", "")[-16:]
        lines.append(f"{l['name']:<10} {l['role']:<15} {l['operstate'] or '-':<8} {_yesno(l['carrier']):<7} "
                     f"{mac:<17} {l['mtu'] or '-':>6} {l['txqueuelen'] if l['txqueuelen'] is not None else '-':>7}  {addrs}")
        if l.get("kind") == "ipoib":
            lines.append(f"{'':<10} IPoIB mode {l['ipoib_mode'] or '-'}")
        for v in l.get("vfs", []):
            guids = (f"node {v['node_guid']} port {v['port_guid']}" if v["port_guid"] is not None
                     else "GUIDs not shown by this kernel")
            lines.append(f"{'':<10} VF {v['vf']}: {guids}")
        for m in l["mismatches"]:
            lines.append(f"{'':<10} ! {m}")
    for b in status["bonds"]:
        lines.append("")
        if not b["exists"]:
            lines.append(f"{b['name']}: no bond (no /proc/net/bonding/{b['name']})")
            continue
        lines.append(f"{b['name']}: {b['mode']}, MII {b['mii_status']}, miimon {b['miimon']} ms, "
                     f"updelay {b['updelay']} ms, downdelay {b['downdelay']} ms"
                     + (f", active {b['active_slave']}" if b["active_slave"] else ""))
        if not b["slaves"]:
            lines.append("  no slaves")
        for s in b["slaves"]:
            speed = f"{s['speed_mbps']} Mb/s" if s["speed_mbps"] else "speed unknown"
            lines.append(f"  {s['name']:<10} MII {s['mii_status']:<5} link failures {s['link_failure_count']}  {speed}")
    for c in status["cards"]:
        lines.append("")
        lines.append(f"card {c['pci']}: {c['describe']}")
        for p in c["ports"]:
            if p["rate_gbit"] is None:
                continue
            can = f" (card: {p['can_gbit']:g})" if p["can_gbit"] else ""
            width = f" {p['width']}" if p["width"] else ""
            lines.append(f"  {p['port']:<10} {p['rate_gbit']:g} Gb/s{width}{can}")
            if p["message"]:
                lines.append(f"  {'':<10} ! {p['message']}")
    if status["port_types"]:
        from ib40d.core.porttype_plan import status_lines_from

        lines.append("")
        for state in status["port_types"]:
            lines.extend(status_lines_from(state))
    if status["ib_ports"]:
        lines.append("")
        lines.append(f"{'IB PORT':<10} {'GUID':<18} {'LAYER':<10} {'STATE':<7} {'PHYS':<8} {'RATE':>5} {'SM LID':>6}  OPENSM")
        for p in status["ib_ports"]:
            sm = {True: "ours", False: "-", None: "?"}[p["opensm_running"]]
            if p.get("opensm_distro_running"):
                sm = "opensm package"
            rate = f"{p['rate_gbps']:g}" if p.get("rate_gbps") else "-"
            lines.append(f"{p['device'] + '/' + str(p['port']):<10} {p['guid'] or '-':<18} {p['link_layer'] or '-':<10} "
                         f"{p['state'] or '-':<7} {p['phys_state'] or '-':<8} {rate:>5} {p['sm_lid'] if p['sm_lid'] is not None else '-':>6}  {sm}")
    return "\n".join(lines)


def run(args) -> int:
    cfg = load_config(args)
    status = collect(cfg, sysroot(args))
    if args.root != "/":  # a bundle's tarball: its files by the tarball's name, not the temporary tree's
        from ib40d.system.bundle import shown_path

        status["config"] = [shown_path(f) for f in status["config"]]
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(render(status))
    return 0
