# SPDX-License-Identifier: GPL-2.0-or-later
"""The config against the machine model: what differs, link by link. Pure.

The one comparison every command uses: plan.py turns it into ordered actions
(and apply verifies by planning again), status shows it as each link's
mismatches, doctor as findings. Each difference is a Change(attr, have, want):

  kind           the link is of another kind than its section says ([bond],
                 [ipoib]); nothing else of it is compared
  mac            the port's own MAC against `mac` (udev names ports by it)
  master         the bond the link is enslaved to (want: its [bond], or None)
  txqueuelen, mtu
  mode           IPoIB mode of an [ipoib] link; the bond mode of a [bond]
  <bond option>  each row of model.BOND_OPTIONS, for a bond
  slave          a link enslaved to a configured bond but not among its
                 slaves (have: its name, want: None)
  address        (cidr, broadcast) or None on either side: missing, not in
                 the config, or another broadcast
  route          (network, gateway, metric) or None on either side: missing,
                 not in the config (only those model.RouteObs.managed), or
                 another gateway
  vlan           (link, id) of a VLAN that is on another link or has
                 another ID (the kernel changes neither: refused)
  state          "down" (None: absent) -> "up"

A link that is absent has no difference but its absence, except a bond: it
differs in everything, which is what creating it sets.
"""

from __future__ import annotations

import ipaddress

from ib40d.core.records import dataclass, field
from ib40d.core.actions import Change
from ib40d.core.config import Address, BondConfig, Config, IPoIBConfig, VlanConfig, desired_addresses
from ib40d.core.model import BOND_OPTIONS, LinkObs, Machine, RouteObs

ARPHRD_ETHER, ARPHRD_INFINIBAND = 1, 32


@dataclass(eq=False)
class LinkDiff:
    """How one configured link or bond differs from the machine."""
    name: str
    section: str  # "link" | "ipoib" | "bond"
    link: LinkObs | None  # None: not present
    changes: list[Change] = field(default_factory=list)
    # a bond whose settings the kernel does not show: its options not compared
    bond_unknown: bool = False

    @property
    def present(self) -> bool:
        return self.link is not None

    def get(self, attr: str) -> Change | None:
        return next((c for c in self.changes if c.attr == attr), None)

    def all(self, attr: str) -> list[Change]:
        return [c for c in self.changes if c.attr == attr]

    def __bool__(self) -> bool:
        return not self.present or bool(self.changes) or self.bond_unknown


def diff(cfg: Config, machine: Machine) -> dict[str, LinkDiff]:
    """Every configured link and bond, by name (bonds first)."""
    return {name: diff_link(cfg, name, machine) for name in [*cfg.bonds, *cfg.links, *cfg.vlans]}


def diff_link(cfg: Config, name: str, machine: Machine) -> LinkDiff:
    link = machine.get(name)
    if name in cfg.bonds:
        return _diff_bond(cfg.bonds[name], link, machine)
    if name in cfg.vlans:
        return _diff_vlan(cfg.vlans[name], link)
    want = cfg.links[name]
    d = LinkDiff(name, "ipoib" if isinstance(want, IPoIBConfig) else "link", link)
    if link is None or _kind(d):
        return d
    own = link.perm_mac or link.mac
    if want.mac and own and own.lower() != want.mac:
        d.changes.append(Change("mac", own, want.mac))
    bond = cfg.bond_of(name)
    master = bond.name if bond else None
    if link.master != master:
        d.changes.append(Change("master", link.master, master))
    if want.txqueuelen is not None and link.txqueuelen != want.txqueuelen:
        d.changes.append(Change("txqueuelen", link.txqueuelen, want.txqueuelen))
    if isinstance(want, IPoIBConfig) and want.mode is not None and link.ipoib_mode != want.mode:
        d.changes.append(Change("mode", link.ipoib_mode, want.mode))
    if want.mtu is not None and link.mtu != want.mtu:
        d.changes.append(Change("mtu", link.mtu, want.mtu))
    d.changes += _address_changes(want.addresses, link)
    d.changes += route_changes(want.routes, link)
    if not link.admin_up:
        d.changes.append(Change("state", "down", "up"))
    return d


def _kind(d: LinkDiff) -> bool:
    """Add the kind difference of a link that is not what its section says
    (a bridge or veth named bond0, a veth named ib0); True when there is one."""
    link = d.link
    if d.section in ("bond", "vlan"):
        fits = link.kind == d.section
    elif d.section == "ipoib":
        fits = link.kind == "ipoib" or link.arptype == ARPHRD_INFINIBAND
    else:
        return False
    if not fits:
        kind = link.kind or ("none (an Ethernet device)" if link.arptype == ARPHRD_ETHER else "none")
        d.changes.append(Change("kind", kind, d.section))
    return not fits


def wanted_bond_options(bond: BondConfig) -> dict:
    """The options a bond is created or set with, in BOND_OPTIONS order
    (mode first); best-effort ones (use_carrier) and primary go on their own."""
    opts = {o.name: getattr(bond, o.name) for o in BOND_OPTIONS
            if not o.best_effort and not o.names_slave and getattr(bond, o.name) is not None}
    if bond.arp_interval and bond.miimon is None:
        opts["miimon"] = 0
    if not opts.get("miimon"):
        # The kernel refuses any updelay/downdelay (even 0) while miimon is
        # 0; config already refuses non-zero delays without miimon.
        opts.pop("updelay", None)
        opts.pop("downdelay", None)
    return opts


def _norm(value):
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return value


def _diff_bond(bond: BondConfig, link: LinkObs | None, machine: Machine) -> LinkDiff:
    d = LinkDiff(bond.name, "bond", link)
    if link is not None and _kind(d):
        return d
    have = link.bond if link else None
    if link is not None and have is None:
        d.bond_unknown = True
    else:
        for key, value in wanted_bond_options(bond).items():
            old = getattr(have, key) if have else None
            if have is None or _norm(old) != _norm(value):
                d.changes.append(Change(key, old, value))
        for o in BOND_OPTIONS:
            value = getattr(bond, o.name)
            if o.best_effort and value is not None:
                old = getattr(have, o.name) if have else None
                if have is None or (old is not None and old != value):
                    d.changes.append(Change(o.name, old, value))
            elif o.names_slave and value is not None:
                old = getattr(have, o.name) if have else None
                if old != value:
                    d.changes.append(Change(o.name, old, value))
    if link is not None:
        d.changes += [Change("slave", s, None) for s in machine.slaves_of(bond.name) if s not in bond.slaves]
    if bond.mtu is not None and (link is None or link.mtu != bond.mtu):
        d.changes.append(Change("mtu", link.mtu if link else None, bond.mtu))
    d.changes += _address_changes(bond.addresses, link)
    d.changes += route_changes(bond.routes, link)
    if link is None or not link.admin_up:
        d.changes.append(Change("state", "down" if link else None, "up"))
    return d


def _diff_vlan(vlan: VlanConfig, link: LinkObs | None) -> LinkDiff:
    """A VLAN absent differs in everything, as a bond does: creating it sets it."""
    d = LinkDiff(vlan.name, "vlan", link)
    if link is not None and _kind(d):
        return d
    if link is not None and (link.parent, link.vlan_id) != (vlan.link, vlan.id):
        d.changes.append(Change("vlan", (link.parent, link.vlan_id), (vlan.link, vlan.id)))
        return d
    if vlan.mtu is not None and (link is None or link.mtu != vlan.mtu):
        d.changes.append(Change("mtu", link.mtu if link else None, vlan.mtu))
    d.changes += _address_changes(vlan.addresses, link)
    d.changes += route_changes(vlan.routes, link)
    if link is None or not link.admin_up:
        d.changes.append(Change("state", "down" if link else None, "up"))
    return d


def managed_addresses(link: LinkObs) -> dict[str, str | None]:
    """The addresses ib40 manages on a link, cidr -> broadcast: permanent
    ones, not link-local (the kernel's) nor those with a lifetime (SLAAC,
    DHCP: another agent's)."""
    return {str(ipaddress.ip_interface(a.cidr)): a.broadcast for a in link.addresses or ()
            if a.permanent and not a.is_link_local_v6}


def _address_changes(want: tuple[Address, ...] | None, link: LinkObs | None) -> list[Change]:
    """Extra addresses and other broadcasts first, in the link's order, then
    the missing ones in the config's order."""
    if want is None or (link is not None and link.addresses is None):
        return []  # not managed, or not read
    have = managed_addresses(link) if link else {}
    wanted = desired_addresses(want)
    # A broadcast the config names is enforced (delete + add: the kernel
    # ignores broadcast on replace); a default one only goes on new addresses,
    # so an address that is right but for a made-up broadcast is left alone
    # with its routes.
    explicit = {str(a.interface) for a in want if a.broadcast is not None}
    wanted = {c: (b if c in explicit or c not in have else have[c]) for c, b in wanted.items()}
    changes = [Change("address", (cidr, bcast), (cidr, wanted[cidr]) if cidr in wanted else None)
               for cidr, bcast in have.items() if cidr not in wanted or wanted[cidr] != bcast]
    changes += [Change("address", None, (cidr, bcast)) for cidr, bcast in wanted.items() if cidr not in have]
    return changes


def default_metric(dest: str) -> int:
    """The metric the kernel gives a route added without one."""
    return 1024 if ":" in dest else 0


def route_text(route) -> str:
    """(network, gateway, metric) as ip route writes it."""
    dest, gateway, metric = route
    return dest + (f" via {gateway}" if gateway else "") + (f" metric {metric}" if metric is not None else "")


def route_changes(want, link: LinkObs | None) -> list[Change]:
    """Managed routes not in the config and those with another gateway
    first, in the link's order, then the missing ones in the config's."""
    if want is None or (link is not None and link.routes is None):
        return []  # not managed, or not read
    wanted = {(dest, default_metric(dest) if metric is None else metric): gateway for dest, gateway, metric in want}
    have: dict[tuple[str, int], RouteObs] = {}
    for r in link.routes if link else ():
        if r.managed:
            have.setdefault((r.dest, r.metric), r)
    changes = []
    for key, r in have.items():
        if key not in wanted or wanted[key] != r.gateway:
            new = (*key[:1], wanted[key], key[1]) if key in wanted else None
            changes.append(Change("route", (r.dest, r.gateway, r.metric), new))
    changes += [Change("route", None, (dest, gateway, metric)) for (dest, metric), gateway in wanted.items()
                if (dest, metric) not in have]
    return changes
