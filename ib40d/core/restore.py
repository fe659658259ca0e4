# SPDX-License-Identifier: GPL-2.0-or-later
"""What puts links back the way `ib40d try` found them (its rollback). Pure.

A Snapshot is what the links named by the old and the new configuration
looked like before the trial (None: absent). restore_plan() compares it with
the machine now and returns the actions that undo the difference, in the
order the kernel demands (docs/pitfalls.md): bonds the trial created are
deleted; slaves released before a bond's mode changes, and set down before
they are enslaved again; IPoIB down -> mode -> MTU; a bond's MTU after its
slaves (it gives them its own); addresses in the order they had; admin
state; then the managed routes (model.RouteObs.managed) the links had: the
kernel drops a link's routes when it goes down, and a gateway is reached
through the addresses; last the VF GUIDs, where the kernel showed them.
An IPoIB P_Key child the trial deleted is made again on its parent, with
its P_Key, and then gets its mode, MTU and addresses like any other link.
Only the snapshot's links get an action.
"""

from __future__ import annotations


from ib40d.core.records import dataclass, field
from ib40d.core.actions import Action, Change
from ib40d.core.model import BOND_OPTIONS, LinkObs, Machine, RouteObs
from ib40d.core.diff import route_text
from ib40d.core.plan import Plan

NEW_BOND_MTU = 1500  # what the kernel gives a bond it creates


@dataclass
class Snapshot:
    """The links as a trial found them."""
    links: dict[str, LinkObs | None] = field(default_factory=dict)  # None: absent
    slave_order: dict[str, list[str]] = field(default_factory=dict)  # bond -> slaves as /proc/net/bonding lists them
    # PF -> the VFs whose GUIDs the trial's apply set (filled after it): where
    # the kernel shows no VF GUIDs, what they were is unknown, and said so
    vf_guids_set: dict[str, set[int]] = field(default_factory=dict)

    def note_applied(self, done) -> None:
        """What the trial's apply did (its actions done) that the links
        recorded before it cannot tell: the VFs whose GUIDs it set."""
        for action in done:
            if action.kind == "vf.guid":
                self.vf_guids_set.setdefault(action.target, set()).add(action.params["vf"])


def managed_addresses(link: LinkObs) -> list[tuple[str, str | None]]:
    """The addresses ib40 would manage (permanent, not IPv6 link-local), in the kernel's order."""
    return [(a.cidr, a.broadcast) for a in link.addresses or () if a.permanent and not a.is_link_local_v6]


def bond_options(link: LinkObs) -> dict:
    """A bond's settings as it had them, as set_bond/create_bond take them
    (the kernel refuses up/downdelay while miimon is 0)."""
    # primary names a slave (sent as its ifindex): its own action, after the enslaves
    opts = {o.name: getattr(link.bond, o.name) for o in BOND_OPTIONS
            if getattr(link.bond, o.name) is not None and not o.names_slave}
    if not opts.get("miimon"):
        opts.pop("updelay", None)
        opts.pop("downdelay", None)
    if not opts.get("arp_ip_target"):
        opts.pop("arp_ip_target", None)
    return opts


class _Builder:
    def __init__(self, snap: Snapshot, now: Machine):
        self.snap, self.now = snap, now
        self.plan = Plan(indexes={n: l.index for n, l in now.links.items()})
        # what the actions so far leave: master and admin state by name
        self.master = {n: l.master for n, l in now.links.items()}
        self.up = {n: l.admin_up for n, l in now.links.items()}
        self.made: dict[str, LinkObs] = {}  # P_Key children made again: as the kernel creates them

    def add(self, kind, target, changes=(), reason="", params=None, group=None):
        self.plan.actions.append(Action(kind, target, tuple(changes), reason, params or {}, group or target))

    def was(self, name: str) -> LinkObs | None:
        return self.snap.links.get(name)

    def group_of(self, name: str) -> str:
        link = self.was(name)
        return link.master if link is not None and link.master else name

    def set_state(self, name: str, up: bool, reason: str = "") -> None:
        if self.up.get(name) != up:
            old, new = ("down", "up") if up else ("up", "down")
            self.add(f"link.{new}", name, [Change("state", old, new)], reason, group=self.group_of(name))
            self.up[name] = up

    def release(self, name: str, reason: str) -> None:
        self.add("link.release", name, [Change("master", self.master[name], None)], reason,
                 group=self.group_of(name))
        self.master[name] = None


def restore_plan(snap: Snapshot, now: Machine) -> Plan:
    b = _Builder(snap, now)
    gone = _delete_created(b)
    for name, was in snap.links.items():
        _delete_routes(b, name, was)
    for name, was in snap.links.items():
        if was is not None and name in now.links and b.master[name] not in (None, was.master):
            b.release(name, f"was {'a slave of ' + was.master if was.master else 'standalone'}")
    for name, was in snap.links.items():
        if was is not None and was.kind == "bond" and was.bond is not None:
            _restore_bond(b, name, was)
        elif was is not None and name not in now.links and not _make_child_again(b, name, was):
            b.plan.notes.append(f"{name}: gone since the trial began; it cannot be put back")
    for name, was in snap.links.items():
        if was is not None and (name in now.links or name in b.up):
            _restore_link(b, name, was)
    for bond, slaves in _slaves_by_bond(snap).items():
        for slave in slaves:
            _enslave(b, slave, bond)
    for name, was in snap.links.items():
        if was is not None and was.kind == "bond" and was.bond is not None and name in b.up:
            _restore_primary(b, name, was)
    for name, was in snap.links.items():
        if was is not None and was.kind == "bond" and name in b.up:
            current = now.links.get(name)
            have = current.mtu if current is not None else NEW_BOND_MTU
            if was.mtu is not None and have != was.mtu:
                b.add("link.mtu", name, [Change("mtu", current.mtu if current else None, was.mtu)], group=name)
    for name, was in snap.links.items():
        if was is not None and name in b.up:
            _restore_addresses(b, name, was)
    for name, was in snap.links.items():
        if was is not None and name in b.up and not was.master:
            b.set_state(name, was.admin_up)
        elif was is not None and was.master and b.master.get(name) == was.master and was.admin_up:
            b.set_state(name, True)
    for name, was in snap.links.items():
        _add_routes(b, name, was)
    for name, was in snap.links.items():
        if was is not None and was.vfs:
            _restore_vf_guids(b, name, was)
    b.plan.notes += gone
    return b.plan


def _restore_primary(b: _Builder, name: str, was: LinkObs) -> None:
    now = b.now.links.get(name)
    have = now.bond.primary if now is not None and now.bond is not None else None
    if was.bond.primary == have:
        return
    if was.bond.primary is None:
        b.plan.notes.append(f"{name}: primary {have} was set by the trial; left as it is")
    elif b.master.get(was.bond.primary) == name:
        b.add("bond.primary", name, [Change("primary", have, was.bond.primary)], "",
              {"slave": was.bond.primary}, group=name)


def _route_key(r: RouteObs) -> tuple:
    return (r.dest, r.gateway, r.metric)


def _route_action(kind: str, name: str, r: RouteObs, reason: str) -> Action:
    old, new = (route_text(_route_key(r)), None) if kind == "route.del" else (None, route_text(_route_key(r)))
    return Action(kind, name, (Change("route", old, new),), reason,
                  {"dest": r.dest, "gateway": r.gateway, "metric": r.metric}, name)


def _delete_routes(b: _Builder, name: str, was: LinkObs | None) -> None:
    """Managed routes the trial added to a link it did not delete."""
    now = b.now.links.get(name)
    if was is None or now is None or was.routes is None or now.routes is None:
        return
    had = {_route_key(r) for r in was.routes if r.managed}
    for r in now.routes:
        if r.managed and _route_key(r) not in had:
            b.plan.actions.append(_route_action("route.del", name, r, "added by the trial"))


def _add_routes(b: _Builder, name: str, was: LinkObs | None) -> None:
    """The managed routes a link had: those missing now, or all of them
    when this plan sets it down or makes it anew (the kernel flushes them)."""
    if was is None or was.routes is None or name not in b.up:
        return
    now = b.now.links.get(name)
    flushed = now is None or now.routes is None or any(
        a.target == name and a.kind in ("link.down", "bond.create") for a in b.plan.actions)
    have = set() if flushed else {_route_key(r) for r in now.routes}
    for r in was.routes:
        if r.managed and _route_key(r) not in have:
            b.plan.actions.append(_route_action("route.add", name, r, "the link had it"))


def _delete_created(b: _Builder) -> list[str]:
    notes = []
    created = [(n, b.now.links[n]) for n, was in b.snap.links.items() if was is None and n in b.now.links]
    # a VLAN or child before its lower link: the kernel deletes a bond's VLANs with it
    for name, link in sorted(created, key=lambda nl: nl[1].kind == "bond"):
        if link.kind == "ipoib" and name in b.now.created_children:
            b.add("ipoib.delete", name, [Change("link", "ipoib", None)], "created by the trial")
            del b.up[name]
            continue
        if link.kind not in ("bond", "vlan"):
            notes.append(f"{name}: appeared during the trial and is not a link ib40 makes; left alone")
            continue
        b.add("link.delete", name, [Change("link", link.kind, None)], "created by the trial")
        for slave, master in b.master.items():
            if master == name:
                b.master[slave] = None  # the kernel releases a deleted bond's slaves
        del b.up[name]
    return notes


def _restore_bond(b: _Builder, name: str, was: LinkObs) -> None:
    want = bond_options(was)
    now = b.now.links.get(name)
    if now is None:
        b.add("bond.create", name, [Change("link", None, "bond")], "deleted during the trial", {"options": want})
        b.up[name] = False
        b.master[name] = None
        return
    have = now.bond
    if have is None:
        b.plan.notes.append(f"{name}: the kernel does not show its bond settings; left alone")
        return
    if have.mode != was.bond.mode:
        foreign = [s for s, m in b.master.items() if m == name and s not in b.snap.links]
        if foreign:
            b.plan.notes.append(f"{name}: mode {have.mode} -> {was.bond.mode} needs the bond empty, but "
                                f"{', '.join(foreign)} (not in the configs) is enslaved to it; mode left alone")
        else:
            for slave in sorted(s for s, m in b.master.items() if m == name):
                b.release(slave, f"{name} changes mode back")
            b.set_state(name, False, "the bond mode changes only while the bond is down")
            b.add("bond.set", name, [Change("mode", have.mode, was.bond.mode)], "", {"options": {"mode": was.bond.mode}})
    differs = {k: v for k, v in want.items() if k != "mode" and _norm(getattr(have, k)) != _norm(v)}
    if differs:
        b.add("bond.set", name, [Change(k, getattr(have, k), v) for k, v in differs.items()], "",
              {"options": differs})


def _norm(value):
    return tuple(str(v) for v in value) if isinstance(value, (list, tuple)) else value


def _make_child_again(b: _Builder, name: str, was: LinkObs) -> bool:
    """An IPoIB P_Key child gone during the trial: made again on its parent
    (False: it is not one; a note says why when it cannot be made)."""
    if was.kind != "ipoib" or not was.parent or was.pkey is None:
        return False
    if was.parent not in b.up:
        b.plan.notes.append(f"{name}: gone since the trial began, and its parent {was.parent} too; "
                            "it cannot be put back")
        return True
    b.add("ipoib.create", name, [Change("pkey", None, f"{was.pkey:#06x} on {was.parent}")], "deleted during the trial",
          {"parent": was.parent, "pkey": was.pkey})
    # what the kernel gives a new child is not known here (its parent's mode
    # or datagram, an MTU from either): mode, MTU and queue length are all set
    b.made[name] = LinkObs(name, 0, kind="ipoib", admin_up=False, routes=[])
    b.up[name] = False
    b.master[name] = None
    return True


def _restore_vf_guids(b: _Builder, name: str, was: LinkObs) -> None:
    """The GUIDs each VF had, where the kernel showed them before the trial."""
    now = b.now.links.get(name)
    current = {vf.vf: vf for vf in (now.vfs or [])} if now is not None else {}
    unknown = []
    for vf in was.vfs:
        have = current.get(vf.vf)
        if have is None:
            continue  # the VF is gone (the card's VF count is not part of a trial)
        if vf.node_guid is None or vf.port_guid is None:
            if vf.vf in b.snap.vf_guids_set.get(name, ()):
                unknown.append(str(vf.vf))
            continue
        changes = [Change(f"vf {vf.vf} {attr}", old, new) for attr, old, new in (
            ("node_guid", have.node_guid, vf.node_guid), ("port_guid", have.port_guid, vf.port_guid)) if old != new]
        if changes:
            b.add("vf.guid", name, changes, "", {"vf": vf.vf, "node_guid": vf.node_guid, "port_guid": vf.port_guid},
                  group=b.group_of(name))
    if unknown:
        b.plan.notes.append(
            f"{name}: VF {', '.join(unknown)}: GUIDs NOT rolled back: the trial set them, but this kernel does not "
            "show VF GUIDs (Linux before 5.5, or a driver without get_vf_guid), so what they were is unknown; "
            f"they keep the trial's values (`ip link set {name} vf N node_guid G port_guid G` sets them)")


def _restore_link(b: _Builder, name: str, was: LinkObs) -> None:
    now = b.now.links.get(name) or b.made.get(name)
    if now is None:
        return  # a bond created just now: its MTU comes after its slaves
    group = b.group_of(name)
    if now.txqueuelen != was.txqueuelen and was.txqueuelen is not None:
        b.add("link.txqueuelen", name, [Change("txqueuelen", now.txqueuelen, was.txqueuelen)], group=group)
    mtu_differs = was.kind != "bond" and not was.master and was.mtu is not None and now.mtu != was.mtu
    if was.ipoib_mode and now.ipoib_mode != was.ipoib_mode:
        b.set_state(name, False, "IPoIB: down -> mode -> MTU -> up")
        b.add("ipoib.mode", name, [Change("mode", now.ipoib_mode, was.ipoib_mode)], group=group)
        mtu_differs = was.mtu is not None and not was.master  # the switch changes the MTU by itself
    if mtu_differs:
        b.add("link.mtu", name, [Change("mtu", now.mtu, was.mtu)], group=group)


def _slaves_by_bond(snap: Snapshot) -> dict[str, list[str]]:
    """Bond -> its slaves in the snapshot, in the order they had joined."""
    bonds: dict[str, list[str]] = {}
    for name, was in snap.links.items():
        if was is not None and was.master:
            bonds.setdefault(was.master, []).append(name)
    for bond, slaves in bonds.items():
        order = snap.slave_order.get(bond, [])
        slaves.sort(key=lambda s: (order.index(s) if s in order else len(order), s))
    return bonds


def _enslave(b: _Builder, slave: str, bond: str) -> None:
    if b.master.get(slave, bond) == bond:
        return  # already there, or gone (noted above)
    if bond not in b.up:
        b.plan.notes.append(f"{slave}: its bond {bond} is not there; left standalone")
        return
    b.set_state(slave, False, "a slave must be down to be enslaved")
    b.add("link.enslave", slave, [Change("master", b.master[slave], bond)], "", {"master": bond}, group=bond)
    b.master[slave] = bond
    b.up[slave] = True  # the bond driver opens it


def _restore_addresses(b: _Builder, name: str, was: LinkObs) -> None:
    now = b.now.links.get(name)
    have = managed_addresses(now) if now is not None else []
    want = managed_addresses(was)
    if have == want:
        return
    kept = [a for a in have if a in want]
    if kept != want[:len(kept)]:
        kept = []  # the order changed (a primary went): remove them all, add them back in order
    for cidr, bcast in have:
        if (cidr, bcast) not in kept:
            b.add("addr.del", name, [Change("address", cidr, None)], "not there before the trial",
                  {"cidr": cidr}, group=b.group_of(name))
    for cidr, bcast in want[len(kept):]:
        b.add("addr.add", name, [Change("address", None, cidr)], "", {"cidr": cidr, "broadcast": bcast},
              group=b.group_of(name))
