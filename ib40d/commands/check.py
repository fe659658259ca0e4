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


def summary(cfg, main_file: str | None = None) -> str:
    """One line; MAIN_FILE: the config's file as the user knows it (a
    bundle's TARBALL:/etc/ib40.conf), by default the file read."""
    ether = [n for n, l in cfg.links.items() if l.kind == "ether"]
    parts = [f"{len(ether)} link{'s' if len(ether) != 1 else ''}",
             f"{len(cfg.bonds)} bond{'s' if len(cfg.bonds) != 1 else ''}",
             f"{len(cfg.ipoibs)} IPoIB"]
    for c in cfg.cards:
        parts.append(f"card{' ' + c.pci if c.section != 'card' else ''} port1={c.port1 or '-'} port2={c.port2 or '-'}")
    files = (main_file or cfg.files[0]) + (f" (+{len(cfg.files) - 1} drop-in)" if len(cfg.files) > 1 else "")
    return f"{files}: valid; {', '.join(parts)}"


def card_problems(cfg, cards) -> list[Problem]:
    """The card sections against the CARDS present: several ConnectX cards
    under a bare [card] without pci is a problem the config must fix; an
    absent card is only worth a warning."""
    bare = cfg.card if cfg.card is not None and cfg.card.pci is None else None
    if bare is None or len(cards) <= 1:
        return []
    where = cfg.origin(bare.section)
    listing = ", ".join(c.describe() for c in cards)
    return [Problem(where.file, where.line, bare.label, "pci",
                    f"{len(cards)} ConnectX cards are present; choose one: pci = {listing}, "
                    "or write one [card PCI] section for each")]


def configured_cards(cfg, cards) -> list[tuple[object, object]]:
    """(card section, card present) for each card section whose card is
    clear: its pci, or the only Mellanox card present; a config without a
    card section is about the only card present. None without a card: a
    pure config check, as on a machine being prepared."""
    out = []
    for card_cfg in cfg.cards or (None,):  # no card section: the only card present, if one
        mine = [c for c in cards if card_cfg is None or card_cfg.pci in (None, c.pci)]
        if len(mine) == 1:
            out.append((card_cfg, mine[0]))
    return out


def capability_problems(cfg, cards, root) -> list[Problem]:
    """What each configured card present cannot do that the config asks
    for (mlx5: no connected mode, MTU <= 4092, port types only in firmware;
    Ethernet-only firmware asked for ib), each at the line that asks for it."""
    chosen = configured_cards(cfg, cards)
    if not chosen:
        return []
    from ib40d.core.cards import capability_problems as card_capability
    from ib40d.core.records import replace
    from ib40d.system import sysfs
    from ib40d.system.porttype_system import read_runtime

    identities = {c.pci: sysfs.read_identity(root, c) for c in cards}
    on_card = ipoib_cards(cfg, cards, root)
    # An [ipoib] whose card can't be told is judged by a card's limits only
    # when every card present has them: it could be on any of them.
    unknown_to = chosen[0][1].pci if len({i.family for i in identities.values()}) == 1 else None
    out = []
    for card_cfg, card in chosen:
        running, _ = read_runtime(root, card.pci)
        one = replace(cfg, cards=(card_cfg,) if card_cfg else ())
        mine = {name for name, pci in on_card.items() if pci == card.pci or (pci is None and card.pci == unknown_to)}
        for p in card_capability(one, identities[card.pci], running, mine):
            section = card_cfg.section if p.section == "card" else p.section
            label = card_cfg.label if p.section == "card" else f"[{cfg.links[p.section].kind} {p.section}]"
            where = cfg.origin(section, p.key) or cfg.origin(section)
            out.append(Problem(where.file, where.line, label, p.key, p.message))
    return out


def ipoib_cards(cfg, cards, root) -> dict[str, str | None]:
    """{[ipoib] name: PCI address of the card it is on, or None}: by port
    GUID (port_owners), else by a netdev of that name on a card; a P_Key
    child is on its parent's card."""
    from ib40d.system.cardview import port_owners

    by_guid = {name: card.pci for name, (card, _, _) in port_owners(root, cards, cfg.ipoibs).items()}
    by_name = {netdev: card.pci for card in cards for netdev in card.netdevs}
    out: dict[str, str | None] = {}
    for name in cfg.ipoibs:
        top, seen = name, {name}
        while (parent := cfg.ipoibs[top].parent) in cfg.ipoibs and parent not in seen:
            top = parent
            seen.add(top)
        out[name] = by_guid.get(top) or by_name.get(top) or by_name.get(name)
    return out


def owner_lines(cfg, cards, root) -> list[str]:
    """Which card each [link] (by MAC) and [ipoib] (by GUID) is on, where
    the machine (or --root tree) has the card."""
    if not cards:
        return []
    from ib40d.system.cardview import port_owners

    owners = port_owners(root, cards, cfg.links)
    configured = {c.pci for c in cfg.cards}
    lines = []
    for name, (card, port, matched) in owners.items():
        at = f" port {port}" if port else ""
        unconfigured = "" if card.pci in configured or None in configured or not cfg.cards else \
            " (no card section for it: its port types are left as they are)"
        section = "ipoib" if cfg.links[name].kind == "ipoib" else "link"
        lines.append(f"[{section} {name}]: card {card.describe()}{at} ({matched}){unconfigured}")
    return lines


def run(args) -> int:
    cfg = load_config(args)
    root = sysroot(args)
    from ib40d.system.observe import find_cards

    cards = find_cards(root)
    problems = card_problems(cfg, cards) or capability_problems(cfg, cards, root)
    if problems:
        raise ConfigError(problems)
    for warning in find_conflicts(root, cfg.names(), config_macs(cfg)):
        print(f"warning: {warning}", file=sys.stderr)
    main_file = cfg.files[0]
    if args.root != "/":  # a bundle's tarball: its files by the tarball's name, not the temporary tree's
        from ib40d.system.bundle import shown_path

        main_file = shown_path(main_file)
    print(summary(cfg, main_file))
    for line in owner_lines(cfg, cards, root):
        print(line)
    return 0
