# SPDX-License-Identifier: GPL-2.0-or-later
"""The config's differences from the machine (diff.py) -> ordered actions.
Pure: no I/O.

The order encodes what the kernel demands (docs/pitfalls.md says why):
- a bond exists, with its mode and monitor settings, before any slave joins;
  its mode changes only while it is down and has no slaves;
- a slave is set down, then enslaved, as two separate requests (since 6.1 a
  combined request fails), and the bond driver opens it itself;
- addresses go on the bond, never on its slaves;
- IPoIB: down -> mode -> MTU -> up, because switching to connected mode raises
  the MTU by itself and switching to datagram clamps it.
Only links named in the config ever get an action, and only when they are of
the kind the config says (a bridge named bond0 is refused, not written to).
"""

from __future__ import annotations


from ib40d.core.records import dataclass, field, replace
from ib40d.core.actions import Action, Change
from ib40d.core.config import BondConfig, Config, IPoIBConfig, LinkConfig, desired_addresses
from ib40d.core.diff import ARPHRD_INFINIBAND, LinkDiff, default_metric, diff, diff_link, route_text, wanted_bond_options
from ib40d.core import sriov
from ib40d.core.model import BOND_OPTIONS, LinkObs, Machine

BEST_EFFORT = tuple(o.name for o in BOND_OPTIONS if o.best_effort)
NEEDS_DOWN = {o.name for o in BOND_OPTIONS if o.needs_down}


@dataclass
class Plan:
    """Ordered actions, and what is not done with why."""
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # waiting links, things left alone
    # Groups not planned at all, one line each: apply reports them as errors.
    refusals: list[str] = field(default_factory=list)
    # name -> ifindex of the links the plan was made against: apply writes
    # to an index only while it still has that name.
    indexes: dict[str, int] = field(default_factory=dict)
    # Sent by apply, yet not changes: what the kernel does not show can't be
    # compared, so it is not pending either (VF GUIDs, sriov.NOT_SHOWN).
    resend: list[Action] = field(default_factory=list)

    def __bool__(self) -> bool:
        return bool(self.actions)


def _address_actions(d: LinkDiff, want) -> list[Action]:
    """Deletions first (extra addresses, and those whose broadcast the config
    changes: the kernel ignores broadcast on replace), then additions in the
    config's order."""
    actions = []
    for c in d.all("address"):
        if c.old is not None:
            cidr, bcast = c.old
            reason = "not in the config" if c.new is None else f"broadcast {bcast} -> {c.new[1]}"
            actions.append(Action("addr.del", d.name, (Change("address", cidr, None),), reason, {"cidr": cidr}))
    order = list(desired_addresses(want)) if want else []
    for cidr, bcast in sorted((c.new for c in d.all("address") if c.new is not None), key=lambda a: order.index(a[0])):
        actions.append(Action("addr.add", d.name, (Change("address", None, cidr),), "",
                              {"cidr": cidr, "broadcast": bcast}))
    return actions


def route_deletions(d: LinkDiff) -> list[Action]:
    """Managed routes not in the config, or with another gateway: before
    anything else of the link."""
    return [Action("route.del", d.name, (Change("route", route_text(c.old), None),),
                   "not in the config" if c.new is None else f"gateway -> {c.new[1] or '(none)'}",
                   {"dest": c.old[0], "gateway": c.old[1], "metric": c.old[2]})
            for c in d.all("route") if c.old is not None]


def route_additions(d: LinkDiff, want, went_down: bool) -> list[Action]:
    """Missing routes: last, once the link is up and has its addresses (the
    kernel reaches a gateway through them). A link this plan sets down
    loses its routes (the kernel flushes them): all of them, then."""
    missing = [c.new for c in d.all("route") if c.new is not None]
    if went_down and want:
        missing = [(dest, gateway, default_metric(dest) if metric is None else metric)
                   for dest, gateway, metric in want]
    return [Action("route.add", d.name, (Change("route", None, route_text(r)),),
                   "the link was down" if went_down and r not in [c.new for c in d.all("route")] else "",
                   {"dest": r[0], "gateway": r[1], "metric": r[2]})
            for r in missing]


def _best_effort_actions(d: LinkDiff) -> list[Action]:
    return [Action(f"bond.{c.attr}", d.name, (c,), "", {"value": c.new}) for c in d.changes if c.attr in BEST_EFFORT]


def _plan_bond(cfg: Config, bond: BondConfig, machine: Machine, diffs: dict[str, LinkDiff], plan: Plan) -> None:
    acts = plan.actions
    d = diffs[bond.name]
    current = d.link
    wanted = wanted_bond_options(bond)
    brought_down = False
    if current is None:
        acts.append(Action("bond.create", bond.name, tuple(c for c in d.changes if c.attr in wanted), "",
                           {"options": wanted}))
        acts.extend(_best_effort_actions(d))
        current_slaves: list[str] = []
    else:
        if d.bond_unknown:
            plan.notes.append(f"{bond.name}: the kernel does not show its bond settings; left alone")
            return
        current_slaves = machine.slaves_of(bond.name)
        have = current.bond
        mode = d.get("mode")
        if mode:
            foreign = [c.old for c in d.all("slave")]
            if foreign:
                plan.notes.append(f"{bond.name}: mode {mode.old} -> {mode.new} needs the bond empty, but "
                                  f"{', '.join(foreign)} (not in the config) is enslaved to it; mode left alone")
            else:
                for s in current_slaves:
                    acts.append(Action("link.release", s, (Change("master", bond.name, None),),
                                       f"{bond.name} changes mode"))
                if current.admin_up:
                    acts.append(Action("link.down", bond.name, (Change("state", "up", "down"),),
                                       "the bond mode changes only while the bond is down"))
                    brought_down = True
                acts.append(Action("bond.set", bond.name, (mode,), "", {"options": {"mode": mode.new}}))
                current_slaves = []
        differs = {c.attr for c in d.changes if c.attr in wanted and c.attr != "mode"}
        if "miimon" in differs:
            # The kernel keeps the delays as multiples of miimon and does not
            # rescale them when miimon changes: send them again with it.
            differs |= {"updelay", "downdelay"} & wanted.keys()
        options = {k: v for k, v in wanted.items() if k in differs}
        if options.keys() & NEEDS_DOWN and current.admin_up and not brought_down:
            acts.append(Action("link.down", bond.name, (Change("state", "up", "down"),),
                               f"{', '.join(sorted(options.keys() & NEEDS_DOWN))} changes only while the bond is down"))
            brought_down = True
        if options:
            changes = tuple(Change(k, getattr(have, k), v) for k, v in options.items())
            acts.append(Action("bond.set", bond.name, changes, "", {"options": options}))
        acts.extend(_best_effort_actions(d))
        for c in d.all("slave"):
            plan.notes.append(f"{bond.name}: {c.old} is enslaved but not in the config; left alone")

    for slave_name in bond.slaves:
        sd = diffs[slave_name]
        link = sd.link
        if link is None:
            plan.notes.append(f"{slave_name}: not present yet (slave of {bond.name}); enslaved when it appears")
            continue
        _note_mac(sd, plan)
        enslaved = slave_name in current_slaves
        if link.master is not None and link.master != bond.name:
            acts.append(Action("link.release", slave_name, (Change("master", link.master, None),),
                               f"configured as a slave of {bond.name}"))
        if sd.get("txqueuelen"):
            acts.append(Action("link.txqueuelen", slave_name, (sd.get("txqueuelen"),)))
        is_up = link.admin_up
        if sd.get("mode"):
            if is_up:
                acts.append(Action("link.down", slave_name, (Change("state", "up", "down"),), "IPoIB mode changes while down"))
                is_up = False
            acts.append(Action("ipoib.mode", slave_name, (sd.get("mode"),)))
        # A slave's mtu is the bond's (config refuses another): the bond sets it.
        if not enslaved:
            if is_up:
                acts.append(Action("link.down", slave_name, (Change("state", "up", "down"),),
                                   "a slave must be down to be enslaved"))
            acts.append(Action("link.enslave", slave_name, (Change("master", link.master, bond.name),), "",
                               {"master": bond.name}))
        elif not is_up:
            acts.append(Action("link.up", slave_name, (Change("state", "down", "up"),)))

    primary = d.get("primary")
    if primary:
        # netlink names the primary by ifindex: it waits for that slave
        if diffs[bond.primary].link is None:
            plan.notes.append(f"{bond.name}: primary {bond.primary} set when {bond.primary} appears")
        else:
            acts.append(Action("bond.primary", bond.name, (primary,), "", {"slave": bond.primary}))
    if d.get("mtu"):
        acts.append(Action("link.mtu", bond.name, (d.get("mtu"),)))
    acts.extend(route_deletions(d))
    acts.extend(_address_actions(d, bond.addresses))
    if d.get("state") or brought_down:
        acts.append(Action("link.up", bond.name, (d.get("state") or Change("state", "down", "up"),)))
    acts.extend(route_additions(d, bond.routes, brought_down))


def _note_mac(d: LinkDiff, plan: Plan) -> None:
    # The MAC names the port (udev); a link of that name with another MAC is
    # another port: configure it as asked, but say so.
    mac = d.get("mac")
    if mac:
        plan.notes.append(f"{d.name}: MAC is {mac.old}, the config says {mac.new} "
                          "(is the udev naming rule in place? see `ib40d sync`)")


def _plan_link(link_cfg: LinkConfig, d: LinkDiff, plan: Plan, create_child: bool = False) -> None:
    """CREATE_CHILD: D is against the P_Key child as the kernel makes it
    (down, no address): create it first."""
    acts = plan.actions
    name = link_cfg.name
    link = d.link
    if create_child:
        acts.append(Action("ipoib.create", name, (Change("pkey", None, f"{link_cfg.pkey:#06x} on {link_cfg.parent}"),),
                           "", {"parent": link_cfg.parent, "pkey": link_cfg.pkey}))
    if link is None:
        plan.notes.append(f"{name}: not present yet; configured when it appears")
        return
    _note_mac(d, plan)
    if d.get("master"):
        acts.append(Action("link.release", name, (d.get("master"),), "configured as a standalone link"))
    if d.get("txqueuelen"):
        acts.append(Action("link.txqueuelen", name, (d.get("txqueuelen"),)))
    is_up = link.admin_up
    mode = d.get("mode")
    mtu = d.get("mtu")
    if mtu is None and mode and link_cfg.mtu is not None:
        mtu = Change("mtu", link.mtu, link_cfg.mtu)  # the mode switch changes it: set it again
    went_down = False
    if isinstance(link_cfg, IPoIBConfig) and (mode or mtu) and is_up:
        acts.append(Action("link.down", name, (Change("state", "up", "down"),), "IPoIB: down -> mode -> MTU -> up"))
        is_up = False
        went_down = True
    if mode:
        acts.append(Action("ipoib.mode", name, (mode,)))
    if mtu:
        reason = "the mode switch resets the MTU" if mode and link.mtu == link_cfg.mtu else ""
        acts.append(Action("link.mtu", name, (mtu,), reason))
    acts.extend(route_deletions(d))
    acts.extend(_address_actions(d, link_cfg.addresses))
    if not is_up:
        acts.append(Action("link.up", name, (Change("state", "down", "up"),)))
    acts.extend(route_additions(d, link_cfg.routes, went_down))


def _plan_vlan(vlan, d: LinkDiff, diffs: dict[str, LinkDiff], plan: Plan) -> None:
    acts = plan.actions
    if d.link is None:
        parent = diffs.get(vlan.link)
        if parent is None or (parent.link is None and parent.section != "bond"):
            plan.notes.append(f"{vlan.name}: {vlan.link} is not present yet; created when it appears")
            return
        acts.append(Action("vlan.create", vlan.name, (Change("vlan", None, f"{vlan.id} on {vlan.link}"),), "",
                           {"link": vlan.link, "id": vlan.id}))
    if d.get("mtu"):
        acts.append(Action("link.mtu", vlan.name, (d.get("mtu"),)))
    acts.extend(route_deletions(d))
    acts.extend(_address_actions(d, vlan.addresses))
    if d.get("state"):
        acts.append(Action("link.up", vlan.name, (d.get("state"),)))
    acts.extend(route_additions(d, vlan.routes, False))


def _kind_refusal(d: LinkDiff, group: list[str]) -> str | None:
    """Why a configured link is not of the kind its section says (a bridge
    or veth named bond0, a veth named ib0), or None."""
    vlan = d.get("vlan")
    if vlan is not None:
        return (f"{d.name}: is VLAN {vlan.old[1]} on {vlan.old[0]}, but the config says {vlan.new[1]} on {vlan.new[0]}; "
                f"refused (the kernel changes neither): delete it (ip link del {d.name}) and apply again")
    kind = d.get("kind")
    if kind is None:
        return None
    return (f"{d.name}: is of kind {kind.old}, but the config says {kind.new} ([{kind.new} {d.name}]); "
            f"refused: nothing is done to {', '.join(group)}")


def _plan_group(diffs: dict[str, LinkDiff], plan: Plan, group: list[str], planner) -> None:
    """Plan one group (a bond and its slaves, or one link), or refuse all of
    it when one of its links is of another kind than the config says."""
    refusals = [r for r in (_kind_refusal(diffs[name], group) for name in group) if r]
    if refusals:
        plan.refusals += refusals
        return
    start = len(plan.actions)
    planner()
    plan.actions[start:] = [replace(a, group=group[0]) for a in plan.actions[start:]]


def _child_to_create(cfg: Config, link_cfg: LinkConfig, machine: Machine) -> LinkObs | None:
    """A configured P_Key child that is absent while its parent is present:
    the child as the kernel creates it (down, no address, no route)."""
    parent = getattr(link_cfg, "parent", None)
    if parent is None or machine.get(link_cfg.name) is not None or machine.get(parent) is None:
        return None
    return LinkObs(name=link_cfg.name, index=0, kind="ipoib", arptype=32, admin_up=False, routes=[])


def _plan_vf_guids(cfg: Config, machine: Machine, plan: Plan) -> None:
    """IB virtual functions' GUIDs on the PF's [ipoib] interfaces, once a
    card has vfs (they start as zero); last, as nothing else depends on them."""
    if not any(sriov.wants_vfs(c) for c in cfg.cards):
        return
    for link_cfg in cfg.links.values():
        link = machine.get(link_cfg.name)
        if (isinstance(link_cfg, IPoIBConfig) and link_cfg.parent is None and link is not None
                and link.arptype == ARPHRD_INFINIBAND):
            actions, notes = sriov.plan_vf_guids(link_cfg, link)
            bond = cfg.bond_of(link_cfg.name)
            actions = [replace(a, group=bond.name if bond else link_cfg.name) for a in actions]
            unseen = [a for a in actions if a.reason == sriov.NOT_SHOWN]
            plan.actions += [a for a in actions if a.reason != sriov.NOT_SHOWN]
            plan.resend += unseen
            plan.notes += notes + ([sriov.unverifiable_note(link_cfg.name, unseen)] if unseen else [])


def related_names(cfg: Config, name: str) -> set[str]:
    """What `apply --link NAME` may touch: the link, and its bond (for a slave)
    or its slaves (for a bond)."""
    if name in cfg.bonds:
        return {name, *cfg.bonds[name].slaves}
    bond = cfg.bond_of(name)
    return {name, bond.name} if bond else {name}


def make_plan(cfg: Config, machine: Machine, only: str | None = None) -> Plan:
    plan = Plan(indexes={name: link.index for name, link in machine.links.items()})
    diffs = diff(cfg, machine)
    for bond in cfg.bonds.values():
        _plan_group(diffs, plan, [bond.name, *bond.slaves], lambda: _plan_bond(cfg, bond, machine, diffs, plan))
    for link_cfg in cfg.links.values():
        if cfg.bond_of(link_cfg.name) is None:
            d, create = diffs[link_cfg.name], _child_to_create(cfg, link_cfg, machine)
            if create:
                d = diff_link(cfg, link_cfg.name, Machine({**machine.links, link_cfg.name: create}))
            _plan_group(diffs, plan, [link_cfg.name], lambda: _plan_link(link_cfg, d, plan, create is not None))
    for name in sorted(machine.created_children - set(cfg.names())):
        if machine.get(name) is not None:
            plan.actions.append(Action("ipoib.delete", name, (Change("state", "present", None),),
                                       "left the config; ib40 created it", group=name))
    for vlan in cfg.vlans.values():
        _plan_group(diffs, plan, [vlan.name], lambda: _plan_vlan(vlan, diffs[vlan.name], diffs, plan))
    _plan_vf_guids(cfg, machine, plan)
    if only is not None:
        keep = related_names(cfg, only)
        for bond in cfg.bonds.values():
            # A mode change releases every slave: it needs the whole bond.
            if bond.name in keep and any(a.kind == "bond.set" and a.target == bond.name and "mode" in a.params["options"]
                                         for a in plan.actions):
                keep |= set(bond.slaves)
        plan.actions = [a for a in plan.actions if a.target in keep]
        plan.resend = [a for a in plan.resend if a.target in keep]
        plan.notes = [n for n in plan.notes if n.split(":", 1)[0] in keep]
        # a refused slave refuses its bond, whichever of them was asked for
        plan.refusals = [r for r in plan.refusals if related_names(cfg, r.split(":", 1)[0]) & keep]
    return plan


def missing_slaves(cfg: Config, machine: Machine) -> list[str]:
    """'bond0: eth40b' for every configured slave not (yet) enslaved."""
    missing = []
    for bond in cfg.bonds.values():
        have = set(machine.slaves_of(bond.name))
        missing += [f"{bond.name}: {s}" for s in bond.slaves if s not in have]
    return missing
