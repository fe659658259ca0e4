# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d apply`: make the machine match the configuration, then verify."""

from __future__ import annotations

import sys

from ib40d.system.cliargs import load_config, sysroot
from ib40d.core.control_protocol import result_lines
from ib40d.core.errors import UserError

LOCK_WAIT_S = 30.0


def add_arguments(parser) -> None:
    parser.add_argument("--link", metavar="NAME", help="only NAME (and its bond, or a bond's slaves)")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    parser.add_argument("--lock-wait", type=float, default=LOCK_WAIT_S, metavar="SECONDS",
                        help=f"how long another apply may hold the lock before giving up (default {LOCK_WAIT_S:g})")


def report(result, out=None) -> None:
    """What apply prints: the lines the daemon sends link-ready, one model
    of them (core/control_protocol.py)."""
    out = out or sys.stdout  # looked up now, not at import: tests swap sys.stdout
    for line in result_lines(result):
        print(line, file=out)


def run(args) -> int:
    cfg = load_config(args)  # before any netlink: an invalid config touches nothing
    root = sysroot(args)
    if args.link and args.link not in cfg.names():
        raise UserError(f"{args.link} is not configured in {cfg.files[0]}", status=2)
    from ib40d.system.apply_engine import LockError, apply_lock, converge
    from ib40d.system.netlink import Netlink

    card_failed = False
    wait = getattr(args, "lock_wait", LOCK_WAIT_S)  # link-ready's in-process apply has no --lock-wait
    nl = Netlink()
    try:
        # Port types too are changed only under the lock: a /run where the
        # lock can't be made leaves everything as it was.
        with apply_lock(root, wait, lambda line: print(f"ib40d apply: {line}", file=sys.stderr)):
            from ib40d.system.trial import held_by_trial

            if held := held_by_trial(root):  # applying /etc/ib40.conf now would undo the trial
                raise UserError(f"{held}; nothing was changed: confirm it (`ib40d try --confirm`) or let it "
                                "roll back, then apply")
            if args.link is None and cfg.cards:
                # Port types first: a mlx4 switch re-creates the card's netdevs,
                # which ib40d.service then configures as they appear.
                from ib40d.system.porttype_system import apply_port_actions, plan_card

                card_actions, card_notes = plan_card(cfg, root)
                for note in card_notes:
                    print(f"note: {note}", file=sys.stderr)
                if card_actions:
                    card = apply_port_actions(card_actions, root)
                    for message in card.messages:
                        print(f"port types: {message}")
                    card_failed = card.failed
            result = converge(cfg, nl, root, args.link)
    except LockError as e:
        raise UserError(f"{e}; nothing was changed") from None
    finally:
        nl.close()
    if args.json:
        import json  # only here: an apply with nothing to do stays light

        print(json.dumps(result.to_json(), indent=2))
    else:
        report(result)
    return 0 if result.ok and not card_failed else 1
