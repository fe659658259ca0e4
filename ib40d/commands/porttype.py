# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d porttype`: set the cards' port types and virtual functions from
their card sections (run at boot by ib40-porttype.service, and first by
`ib40d apply`). The planning is
porttype_plan.py's, reading and changing the card porttype_system.py's."""

from __future__ import annotations

import argparse
import json
import sys

from ib40d.core import sriov
from ib40d.system.cliargs import load_config, sysroot
from ib40d.system.observe import find_cards
from ib40d.core.porttype_plan import one_modprobe_file, select_card, wanted_types
from ib40d.system.porttype_system import apply_port_actions, configured, plan_one, read_state, status_lines, write_state


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    parser.add_argument("--json", action="store_true",
                        help="print the observed state and the plan of every card as one JSON document "
                             "(what is said in words then goes to stderr)")


def run(args) -> int:
    cfg = load_config(args)
    root = sysroot(args)
    # With --json, stdout holds the one JSON document and nothing else.
    text = sys.stderr if args.json else sys.stdout
    cards: list[dict] = []
    rc = set_cards(args, cfg, root, text, cards)
    if args.json:
        json.dump({"cards": cards}, sys.stdout, indent=2)
        print()
    return rc


def set_cards(args, cfg, root, text, cards: list[dict]) -> int:
    """Every card section's card, read, planned, set (not with --dry-run);
    CARDS gets each card's observed state and actions."""
    sections = configured(cfg)
    if not sections:
        print("no port1/port2 or vfs in [card]: port types are left as they are", file=text)
        return 0
    present = find_cards(root)
    # Every section resolves, and every card is read, before any change.
    selected = [(c, select_card(c, present)) for c in sections]
    for card_cfg, card in [(c, card) for c, card in selected if nothing_at_boot(root, c, card)]:
        # Not read at all: `mstconfig query` takes seconds, and ib40d.service
        # waits for this unit (ordered after it for mlx4's port switch).
        print(f"card {card.describe()}: mlx5 changes port types only in firmware and no vfs are asked for: "
              "nothing to do", file=text)
        cards.append({"pci": card.pci, "observed": None, "actions": []})
        selected.remove((card_cfg, card))
    chosen = [(c, card, read_state(root, card)) for c, card in selected]
    planned, notes = [], []
    for card_cfg, _, state in chosen:
        card_actions, card_notes = plan_one(card_cfg, state, at_boot=True)
        planned += card_actions
        notes += card_notes
    planned, merged = one_modprobe_file(planned)
    notes += merged
    for note in notes:
        print(f"note: {note}", file=sys.stderr)
    rc = 0
    for card_cfg, card, state in chosen:
        actions = [a for a in planned if a.target == card.pci]
        cards.append({"pci": card.pci, "observed": state.to_json(), "actions": [a.to_json() for a in actions]})
        rc |= set_card(args, root, card_cfg, card, state, actions, text)
    return rc


def nothing_at_boot(root, card_cfg, card) -> bool:
    """An mlx5 card whose section asks for no VFs: at boot (and by hand)
    there is nothing to set on it (porttype_plan.boot_sets_port_types)."""
    driver = root.realpath(f"/sys/bus/pci/devices/{card.pci}/driver")
    return bool(driver) and driver.rsplit("/", 1)[1] == "mlx5_core" and not sriov.wants_vfs(card_cfg)


def set_card(args, root, card_cfg, card, state, actions, text) -> int:
    if args.dry_run:
        if state.mstconfig != "ok":  # a real run says it with the status lines
            print(state.mstconfig_message, file=sys.stderr)
        for a in actions:
            print(a.describe(), file=text)
        if not actions:
            print(f"card {card.describe()}: port types already as configured", file=text)
        return 0
    if not actions:
        write_state(root, state, wanted_types(card_cfg), False)
        print(f"card {card.describe()}: port types already as configured", file=text)
        for line in status_lines(root, card.pci)[1:]:
            print(line, file=text)
        return 0
    result = apply_port_actions(actions, root)
    for m in result.messages:
        print(m, file=text)
    for line in status_lines(root, card.pci)[1:]:
        print(line, file=text)
    return 1 if result.failed else 0
