# SPDX-License-Identifier: GPL-2.0-or-later
"""diff(desired, observed) -> ordered actions. Pure: no I/O.

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

import dataclasses
import ipaddress
from dataclasses import dataclass, field

from ib40d.actions import Action, Change
from ib40d.config import Address, BondConfig, Config, IPoIBConfig, LinkConfig, desired_addresses
from ib40d.observe import LinkObs, Observed

BOND_OPTIONS = ("miimon", "updelay", "downdelay", "arp_interval", "arp_ip_target")
ARPHRD_ETHER, ARPHRD_INFINIBAND = 1, 32


@dataclass
class Plan:
    actions: list[Action] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)  # waiting links, things left alone
    # Groups not planned at all, one line each: apply reports them as errors.
    refusals: list[str] = field(default_factory=list)
    # name -> ifindex of the links the plan was made against: apply writes
    # to an index only while it still has that name.
    indexes: dict[str, int] = field(default_factory=dict)

    def __bool__(self) -> bool:
        return bool(self.actions)


def _observed_addresses(link: LinkObs) -> dict[str, str | None]:
    """The addresses ib40 manages on a link: permanent ones, not link-local
    (the kernel's) nor those with a lifetime (SLAAC, DHCP: another agent's)."""
    return {str(ipaddress.ip_interface(a.cidr)): a.broadcast for a in link.addresses
            if a.permanent and not a.is_link_local_v6}


def _address_actions(name: str, want: tuple[Address, ...] | None, link: LinkObs | None) -> list[Action]:
    if want is None:
        return []  # addresses of this link are not managed
    have = _observed_addresses(link) if link else {}
    wanted = desired_addresses(want)
    # A broadcast the config names is enforced (delete + add: the kernel
    # ignores broadcast on replace); a default one only goes on new addresses,
    # so an address that is right but for a made-up broadcast is left alone
    # with its routes.
    explicit = {str(a.interface) for a in want if a.broadcast is not None}
    wanted = {c: (b if c in explicit or c not in have else have[c]) for c, b in wanted.items()}
    actions = []
    for cidr, bcast in have.items():
        if cidr not in wanted or wanted[cidr] != bcast:
            reason = "not in the config" if cidr not in wanted else f"broadcast {bcast} -> {wanted[cidr]}"
            actions.append(Action("addr.del", name, (Change("address", cidr, None),), reason,
                                  {"cidr": cidr}))
    for cidr, bcast in wanted.items():
        if cidr not in have or have[cidr] != bcast:
            actions.append(Action("addr.add", name, (Change("address", None, cidr),), "",
                                  {"cidr": cidr, "broadcast": bcast}))
    return actions


def _bond_options(bond: BondConfig) -> dict:
    opts = {}
    if bond.mode is not None:
        opts["mode"] = bond.mode
    for key in BOND_OPTIONS:
        value = getattr(bond, key)
        if value is not None:
            opts[key] = value
    if bond.arp_interval and bond.miimon is None:
        opts["miimon"] = 0
    if not opts.get("miimon"):
        # The kernel refuses any updelay/downdelay (even 0) while miimon is
        # 0; config already refuses non-zero delays without miimon.
        opts.pop("updelay", None)
        opts.pop("downdelay", None)
    return opts


def _plan_bond(cfg: Config, bond: BondConfig, obs: Observed, plan: Plan) -> None:
    acts = plan.actions
    current = obs.get(bond.name)
    wanted = _bond_options(bond)
    brought_down = False
    if current is None:
        changes = tuple(Change(k, None, v) for k, v in wanted.items())
        acts.append(Action("bond.create", bond.name, changes, "", {"options": wanted}))
        if bond.use_carrier is not None:
            acts.append(Action("bond.use_carrier", bond.name, (Change("use_carrier", None, bond.use_carrier),),
                               "", {"value": bond.use_carrier}))
        current_slaves: list[str] = []
    else:
        if current.bond is None:
            plan.notes.append(f"{bond.name}: the kernel does not show its bond settings; left alone")
            return
        current_slaves = obs.slaves_of(bond.name)
        have = current.bond
        if bond.mode is not None and have.mode != bond.mode:
            foreign = [s for s in current_slaves if s not in bond.slaves]
            if foreign:
                plan.notes.append(f"{bond.name}: mode {have.mode} -> {bond.mode} needs the bond empty, but "
                                  f"{', '.join(foreign)} (not in the config) is enslaved to it; mode left alone")
            else:
                for s in current_slaves:
                    acts.append(Action("link.release", s, (Change("master", bond.name, None),),
                                       f"{bond.name} changes mode"))
                if current.admin_up:
                    acts.append(Action("link.down", bond.name, (Change("state", "up", "down"),),
                                       "the bond mode changes only while the bond is down"))
                    brought_down = True
                acts.append(Action("bond.set", bond.name, (Change("mode", have.mode, bond.mode),), "",
                                   {"options": {"mode": bond.mode}}))
                current_slaves = []
        differs = {k for k, v in wanted.items() if k != "mode" and _norm(getattr(have, k)) != _norm(v)}
        if "miimon" in differs:
            # The kernel keeps the delays as multiples of miimon and does not
            # rescale them when miimon changes: send them again with it.
            differs |= {"updelay", "downdelay"} & wanted.keys()
        diffs = {k: v for k, v in wanted.items() if k in differs}
        if diffs:
            changes = tuple(Change(k, getattr(have, k), v) for k, v in diffs.items())
            acts.append(Action("bond.set", bond.name, changes, "", {"options": diffs}))
        if bond.use_carrier is not None and have.use_carrier is not None and have.use_carrier != bond.use_carrier:
            acts.append(Action("bond.use_carrier", bond.name, (Change("use_carrier", have.use_carrier, bond.use_carrier),),
                               "", {"value": bond.use_carrier}))
        for s in current_slaves:
            if s not in bond.slaves:
                plan.notes.append(f"{bond.name}: {s} is enslaved but not in the config; left alone")

    for slave_name in bond.slaves:
        link_cfg = cfg.links[slave_name]
        link = obs.get(slave_name)
        if link is None:
            plan.notes.append(f"{slave_name}: not present yet (slave of {bond.name}); enslaved when it appears")
            continue
        _note_mac(link_cfg, link, plan)
        enslaved = slave_name in current_slaves
        if link.master is not None and link.master != bond.name:
            acts.append(Action("link.release", slave_name, (Change("master", link.master, None),),
                               f"configured as a slave of {bond.name}"))
        if link_cfg.txqueuelen is not None and link.txqueuelen != link_cfg.txqueuelen:
            acts.append(Action("link.txqueuelen", slave_name, (Change("txqueuelen", link.txqueuelen, link_cfg.txqueuelen),)))
        is_up = link.admin_up
        if isinstance(link_cfg, IPoIBConfig) and link_cfg.mode is not None and link.ipoib_mode != link_cfg.mode:
            if is_up:
                acts.append(Action("link.down", slave_name, (Change("state", "up", "down"),), "IPoIB mode changes while down"))
                is_up = False
            acts.append(Action("ipoib.mode", slave_name, (Change("mode", link.ipoib_mode, link_cfg.mode),)))
        if not enslaved:
            if is_up:
                acts.append(Action("link.down", slave_name, (Change("state", "up", "down"),),
                                   "a slave must be down to be enslaved"))
            acts.append(Action("link.enslave", slave_name, (Change("master", link.master, bond.name),), "",
                               {"master": bond.name}))
        elif not is_up:
            acts.append(Action("link.up", slave_name, (Change("state", "down", "up"),)))

    if bond.mtu is not None and (current is None or current.mtu != bond.mtu):
        acts.append(Action("link.mtu", bond.name, (Change("mtu", current.mtu if current else None, bond.mtu),)))
    acts.extend(_address_actions(bond.name, bond.addresses, current))
    if current is None or brought_down or not current.admin_up:
        acts.append(Action("link.up", bond.name, (Change("state", "down" if current else None, "up"),)))


def _note_mac(link_cfg: LinkConfig, link: LinkObs, plan: Plan) -> None:
    # The MAC names the port (udev); a link of that name with another MAC is
    # another port: configure it as asked, but say so.
    own = link.perm_mac or link.mac
    if link_cfg.mac and own and own.lower() != link_cfg.mac:
        plan.notes.append(f"{link.name}: MAC is {own}, the config says {link_cfg.mac} "
                          "(is the udev naming rule in place? see `ib40d sync`)")


def _norm(value):
    if isinstance(value, (list, tuple)):
        return tuple(str(v) for v in value)
    return value


def _plan_link(link_cfg: LinkConfig, obs: Observed, plan: Plan) -> None:
    acts = plan.actions
    name = link_cfg.name
    link = obs.get(name)
    if link is None:
        plan.notes.append(f"{name}: not present yet; configured when it appears")
        return
    _note_mac(link_cfg, link, plan)
    if link.master is not None:
        acts.append(Action("link.release", name, (Change("master", link.master, None),), "configured as a standalone link"))
    if link_cfg.txqueuelen is not None and link.txqueuelen != link_cfg.txqueuelen:
        acts.append(Action("link.txqueuelen", name, (Change("txqueuelen", link.txqueuelen, link_cfg.txqueuelen),)))
    is_up = link.admin_up
    mode_changes = (isinstance(link_cfg, IPoIBConfig) and link_cfg.mode is not None
                    and link.ipoib_mode != link_cfg.mode)
    mtu_changes = link_cfg.mtu is not None and (link.mtu != link_cfg.mtu or mode_changes)
    if isinstance(link_cfg, IPoIBConfig) and (mode_changes or mtu_changes) and is_up:
        acts.append(Action("link.down", name, (Change("state", "up", "down"),), "IPoIB: down -> mode -> MTU -> up"))
        is_up = False
    if mode_changes:
        acts.append(Action("ipoib.mode", name, (Change("mode", link.ipoib_mode, link_cfg.mode),)))
    if mtu_changes:
        reason = "the mode switch resets the MTU" if mode_changes and link.mtu == link_cfg.mtu else ""
        acts.append(Action("link.mtu", name, (Change("mtu", link.mtu, link_cfg.mtu),), reason))
    acts.extend(_address_actions(name, link_cfg.addresses, link))
    if not is_up:
        acts.append(Action("link.up", name, (Change("state", "down", "up"),)))


def _kind_refusal(cfg: Config, name: str, link: LinkObs | None, group: list[str]) -> str | None:
    """Why a configured link is not of the kind its section says (a bridge
    or veth named bond0, a veth named ib0), or None."""
    if link is None:
        return None
    if name in cfg.bonds:
        section, fits = "bond", link.kind == "bond"
    elif isinstance(cfg.links[name], IPoIBConfig):
        section, fits = "ipoib", link.kind == "ipoib" or link.arptype == ARPHRD_INFINIBAND
    else:
        return None
    if fits:
        return None
    kind = link.kind or ("none (an Ethernet device)" if link.arptype == ARPHRD_ETHER else "none")
    return (f"{name}: is of kind {kind}, but the config says {section} ([{section} {name}]); "
            f"refused: nothing is done to {', '.join(group)}")


def _plan_group(cfg: Config, obs: Observed, plan: Plan, group: list[str], planner) -> None:
    """Plan one group (a bond and its slaves, or one link), or refuse all of
    it when one of its links is of another kind than the config says."""
    refusals = [r for r in (_kind_refusal(cfg, name, obs.get(name), group) for name in group) if r]
    if refusals:
        plan.refusals += refusals
        return
    start = len(plan.actions)
    planner()
    plan.actions[start:] = [dataclasses.replace(a, group=group[0]) for a in plan.actions[start:]]


def related_names(cfg: Config, name: str) -> set[str]:
    """What `apply --link NAME` may touch: the link, and its bond (for a slave)
    or its slaves (for a bond)."""
    if name in cfg.bonds:
        return {name, *cfg.bonds[name].slaves}
    bond = cfg.bond_of(name)
    return {name, bond.name} if bond else {name}


def make_plan(cfg: Config, obs: Observed, only: str | None = None) -> Plan:
    plan = Plan(indexes={name: link.index for name, link in obs.links.items()})
    for bond in cfg.bonds.values():
        _plan_group(cfg, obs, plan, [bond.name, *bond.slaves], lambda: _plan_bond(cfg, bond, obs, plan))
    for link_cfg in cfg.links.values():
        if cfg.bond_of(link_cfg.name) is None:
            _plan_group(cfg, obs, plan, [link_cfg.name], lambda: _plan_link(link_cfg, obs, plan))
    if only is not None:
        keep = related_names(cfg, only)
        for bond in cfg.bonds.values():
            # A mode change releases every slave: it needs the whole bond.
            if bond.name in keep and any(a.kind == "bond.set" and a.target == bond.name and "mode" in a.params["options"]
                                         for a in plan.actions):
                keep |= set(bond.slaves)
        plan.actions = [a for a in plan.actions if a.target in keep]
        plan.notes = [n for n in plan.notes if n.split(":", 1)[0] in keep]
        # a refused slave refuses its bond, whichever of them was asked for
        plan.refusals = [r for r in plan.refusals if related_names(cfg, r.split(":", 1)[0]) & keep]
    return plan


def missing_slaves(cfg: Config, obs: Observed) -> list[str]:
    """'bond0: eth40b' for every configured slave not (yet) enslaved."""
    missing = []
    for bond in cfg.bonds.values():
        have = set(obs.slaves_of(bond.name))
        missing += [f"{bond.name}: {s}" for s in bond.slaves if s not in have]
    return missing
