# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d plan`: what apply would change on this machine. Changes nothing.

Exit 0 when there is nothing to do, 1 when there is a plan (like diff) or
something apply would refuse (a bridge named like the configured bond).
"""

from __future__ import annotations

from ib40d.system.cliargs import load_config, sysroot
from ib40d.system.conflicts import config_macs, find_conflicts


def add_arguments(parser) -> None:
    parser.add_argument("--json", action="store_true", help="print the plan as JSON")
    parser.add_argument("--link", metavar="NAME", help="only what applying NAME would change")


def reboot_notes(root, actions) -> list[str]:
    """"reboot needed" for each port whose type only the firmware changes
    (a next-boot change with no switch now: mlx5, or mlx4 without
    mlx4_portN) while it runs another type."""
    switched_now = {(a.target, a.params["port"]) for a in actions if a.kind == "porttype.runtime"}
    firmware_only = [a for a in actions if a.kind == "porttype.firmware"
                     and (a.target, a.params["port"]) not in switched_now]
    if not firmware_only:
        return []
    from ib40d.core.cards import reboot_note
    from ib40d.system import sysfs
    from ib40d.system.observe import find_cards
    from ib40d.system.porttype_system import read_runtime

    cards = {c.pci: c for c in find_cards(root)}
    notes = []
    for a in firmware_only:
        port, new = a.params["port"], a.changes[0].new
        running, auto = read_runtime(root, a.target)
        now = "auto" if auto.get(port) else running.get(port)
        if now != new and a.target in cards:
            notes.append(reboot_note(sysfs.read_identity(root, cards[a.target]), port, now, new))
    return notes


def run(args) -> int:
    cfg = load_config(args)  # before any netlink: an invalid config touches nothing
    root = sysroot(args)
    if args.link and args.link not in cfg.names():
        from ib40d.core.errors import UserError
        raise UserError(f"{args.link} is not configured in {cfg.files[0]}", status=2)
    from ib40d.system.bundle import link_source
    from ib40d.system.observe import observe
    from ib40d.core.plan import make_plan

    nl = link_source(root)  # a bundle's recorded links, or the kernel
    try:
        plan = make_plan(cfg, observe(nl, root), args.link)
    finally:
        nl.close()
    if args.link is None and cfg.cards:
        from ib40d.system.porttype_system import plan_card  # only configs with a [card] pay for it

        card_actions, card_notes = plan_card(cfg, root)
        plan.actions[:0] = card_actions  # port types come first: they re-create the netdevs
        plan.notes[:0] = card_notes + reboot_notes(root, card_actions)
    plan.notes.extend(find_conflicts(root, cfg.names(), config_macs(cfg)))
    if args.json:
        import json  # only for --json

        print(json.dumps({"actions": [a.to_json() for a in plan.actions], "notes": plan.notes,
                          "refused": plan.refusals}, indent=2))
    else:
        for action in plan.actions:
            print(action.describe())
        for note in plan.notes:
            print(f"note: {note}")
        for refusal in plan.refusals:
            print(f"refused: {refusal}")
        if not plan.actions and not plan.refusals:
            print("nothing to do: the machine matches the configuration")
    return 1 if plan.actions or plan.refusals else 0
