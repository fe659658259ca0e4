# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d check`: validate the configuration, report every problem at once."""

from __future__ import annotations

import sys

from ib40d.system.cliargs import load_config, sysroot
from ib40d.core.config import ConfigError
from ib40d.core.errors import Problem
from ib40d.system.conflicts import config_macs, find_conflicts


def add_arguments(parser) -> None:
    pass


def summary(cfg) -> str:
    ether = [n for n, l in cfg.links.items() if l.kind == "ether"]
    parts = [f"{len(ether)} link{'s' if len(ether) != 1 else ''}",
             f"{len(cfg.bonds)} bond{'s' if len(cfg.bonds) != 1 else ''}",
             f"{len(cfg.ipoibs)} IPoIB"]
    if cfg.card:
        parts.append(f"card port1={cfg.card.port1 or '-'} port2={cfg.card.port2 or '-'}")
    files = cfg.files[0] + (f" (+{len(cfg.files) - 1} drop-in)" if len(cfg.files) > 1 else "")
    return f"{files}: valid; {', '.join(parts)}"


def card_problems(cfg, root) -> list[Problem]:
    """[card] against the cards present: several ConnectX cards and no pci is
    a problem the config must fix; an absent card is only worth a warning."""
    if cfg.card is None:
        return []
    from ib40d.commands import porttype  # only configs with a [card] pay for it

    cards = porttype.find_cards(root)
    where = cfg.origin("card")
    if not cfg.card.pci and len(cards) > 1:
        listing = ", ".join(c.describe() for c in cards)
        return [Problem(where.file, where.line, "[card]", "pci",
                        f"{len(cards)} ConnectX cards are present; choose one: pci = {listing}")]
    return []


def selected_card(cfg, root):
    """The card the config is about, when that is clear: [card] pci, or
    the only Mellanox card present. None otherwise (no card: a pure
    config check, as on a machine being prepared)."""
    from ib40d.system.observe import find_cards

    cards = find_cards(root)
    if cfg.card is not None and cfg.card.pci:
        cards = [c for c in cards if c.pci == cfg.card.pci]
    return cards[0] if len(cards) == 1 else None


def capability_problems(cfg, root) -> list[Problem]:
    """What the card present cannot do that the config asks for (mlx5: no
    connected mode, MTU <= 4092, port types only in firmware; Ethernet-only
    firmware asked for ib), each at the line that asks for it."""
    card = selected_card(cfg, root)
    if card is None:
        return []
    from ib40d.core.cards import capability_problems as card_capability
    from ib40d.system import sysfs
    from ib40d.system.porttype_system import read_runtime

    running, _ = read_runtime(root, card.pci)
    out = []
    for p in card_capability(cfg, sysfs.read_identity(root, card), running):
        section = "[card]" if p.section == "card" else f"[{cfg.links[p.section].kind} {p.section}]"
        where = cfg.origin(p.section, p.key) or cfg.origin(p.section)
        out.append(Problem(where.file, where.line, section, p.key, p.message))
    return out


def run(args) -> int:
    cfg = load_config(args)
    root = sysroot(args)
    problems = card_problems(cfg, root) or capability_problems(cfg, root)
    if problems:
        raise ConfigError(problems)
    for warning in find_conflicts(root, cfg.names(), config_macs(cfg)):
        print(f"warning: {warning}", file=sys.stderr)
    print(summary(cfg))
    return 0
