# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d status`: one screen of what the configured links are now.

Reads sysfs and procfs only (plus one raw rtnetlink address dump, see
addrdump.py): it must not pay pyroute2's import, and with --root it works on a
support bundle captured on another machine.
"""

from __future__ import annotations

import json

from ib40d.addrdump import addresses_by_name
from ib40d.bonding import parse_proc_bonding
from ib40d.cli import load_config, sysroot
from ib40d.config import desired_addresses
from ib40d import ibports
from ib40d.linkstate import read_link


PORTTYPE_STATE = "/run/ib40/porttype.json"  # porttype.STATE_FILE (a test keeps them equal)


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the status as JSON")


def _role(cfg, name: str) -> str:
    if name in cfg.bonds:
        return "bond"
    bond = cfg.bond_of(name)
    if bond:
        return f"slave of {bond.name}"
    return "ipoib" if cfg.links[name].kind == "ipoib" else "link"


def _mismatches(cfg, name: str, link: dict, addrs: list[dict]) -> list[str]:
    """What differs from the config, in words, for the human view and doctor."""
    if not link.get("exists"):
        return ["not present"]
    want = cfg.bonds.get(name) or cfg.links[name]
    out = []
    own_mac = link.get("perm_mac") or link["mac"]
    if getattr(want, "mac", None) and own_mac != want.mac:
        out.append(f"mac {own_mac} (config {want.mac})")
    if want.mtu is not None and link["mtu"] != want.mtu:
        out.append(f"mtu {link['mtu']} (config {want.mtu})")
    if getattr(want, "txqueuelen", None) is not None and link["txqueuelen"] != want.txqueuelen:
        out.append(f"txqueuelen {link['txqueuelen']} (config {want.txqueuelen})")
    if getattr(want, "mode", None) and link.get("kind") == "ipoib" and link["ipoib_mode"] != want.mode:
        out.append(f"IPoIB {link['ipoib_mode']} (config {want.mode})")
    bond = cfg.bond_of(name)
    if bond and link["master"] != bond.name:
        out.append(f"not enslaved to {bond.name}")
    if want.addresses is not None:
        have = {a["cidr"] for a in addrs}
        missing = [c for c in desired_addresses(want.addresses) if c not in have]
        if missing:
            out.append(f"address {' '.join(missing)} missing")
    if not link["admin_up"]:
        out.append("admin down")
    return out


def collect(cfg, root) -> dict:
    addresses = addresses_by_name(root)
    links = []
    for name in [*cfg.bonds, *cfg.links]:
        link = read_link(root, name)
        addrs = addresses.get(name, [])
        link.update(role=_role(cfg, name), addresses=addrs,
                    mismatches=_mismatches(cfg, name, link, addrs))
        links.append(link)
    bonds = []
    for name in cfg.bonds:
        text = root.read(f"/proc/net/bonding/{name}")
        if text is None:
            bonds.append({"name": name, "exists": False})
            continue
        info = parse_proc_bonding(text)
        info.update(name=name, exists=True)
        bonds.append(info)
    status = {"config": list(cfg.files), "links": links, "bonds": bonds}
    status["port_types"] = {}
    if root.exists(PORTTYPE_STATE):  # only machines whose card ib40 handles pay for porttype's import
        from ib40d import porttype

        status["port_types"] = porttype.status_json(root)
    # IB ports only where there are some: asking systemd whether our opensm
    # runs costs a D-Bus round trip that an Ethernet-only machine can skip.
    status["ib_ports"] = []
    if root.listdir("/sys/class/infiniband") and ibports.read_ports(root):
        from ib40d import opensm

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
    if status["port_types"]:
        from ib40d import porttype

        lines.append("")
        lines.extend(porttype.status_lines_from(status["port_types"]))
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
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        print(render(status))
    return 0
