# SPDX-License-Identifier: GPL-2.0-or-later
"""Command line: argparse, and the mapping of errors to exit codes.

Exit codes: 0 ok; 1 a change is planned (plan) or an operation failed;
2 invalid configuration or usage. A user's mistake never shows a traceback.

Each subcommand lives in its own module with `add_arguments(parser)` and
`run(args) -> int`, imported only when that subcommand runs: `status` and
`check` must not pay for pyroute2, which `apply` and the daemon need.
"""

from __future__ import annotations

import os
import sys

from ib40d import __version__
from ib40d.system.cliargs import DEFAULT_CONFIG, default_root
from ib40d.core.errors import ConfigError, UserError

TYPE_CHECKING = False  # typing's, without importing typing (see below)
if TYPE_CHECKING:
    import argparse

# argparse, importlib and SysRoot (pathlib) are imported where they are used:
# ib40-link@.service's `ib40d link-ready NAME` runs at every boot and hotplug
# and needs none of them (see main()).

# name -> (module, one-line help)
SUBCOMMANDS = {
    "check": ("ib40d.commands.check", "validate the configuration; report every problem"),
    "plan": ("ib40d.commands.plan", "show what apply would change (dry run)"),
    "apply": ("ib40d.commands.apply", "make the machine match the configuration"),
    "try": ("ib40d.commands.try_", "apply, and roll back unless confirmed (--confirm) in time"),
    "status": ("ib40d.commands.status", "one screen: links, bond, IPoIB, IB ports"),
    "doctor": ("ib40d.commands.doctor", "find what limits the link (PCIe, mode, MTU, SM, sysctl)"),
    "bench": ("ib40d.commands.bench", "iperf3 sweep against a peer (or --serve)"),
    "porttype": ("ib40d.commands.porttype", "set the card's port types (ib/eth/auto)"),
    "opensm-gate": ("ib40d.commands.opensm", "start opensm on IB ports that need a subnet manager"),
    "sync": ("ib40d.commands.sync", "write generated files (udev rules, sysctl switch) from the config"),
    "daemon": ("ib40d.commands.daemon", "systemd service: apply at boot and on hotplug (Type=notify)"),
    "link-ready": ("ib40d.commands.linkready", "ask the daemon to apply one link (used by ib40-link@.service)"),
    "bundle": ("ib40d.commands.bundle", "one .tar.gz of what status, doctor and plan read, to ask for help"),
}


def build_parser(commands=tuple(SUBCOMMANDS)) -> tuple[argparse.ArgumentParser, dict]:
    """The parser with the given subcommands -> (parser, {name: subparser})."""
    import argparse

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--root", default=default_root(), metavar="DIR",
                        help="read and write /sys, /proc, /etc, /run under DIR (default /)")
    common.add_argument("-c", "--config", metavar="FILE",
                        help=f"configuration file (default {DEFAULT_CONFIG} under --root)")
    parser = argparse.ArgumentParser(prog="ib40d", description="Mellanox 40G VPI ports from /etc/ib40.conf")
    parser.add_argument("--version", action="version", version=f"ib40d {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    subparsers = {}
    for name in commands:
        help_text = SUBCOMMANDS[name][1]
        subparsers[name] = sub.add_parser(name, help=help_text, description=help_text, parents=[common])
    return parser, subparsers


def parse(argv: list[str]):
    """-> (command, its module, its parsed arguments); exits on --help, a
    typo or a usage error, as argparse does."""
    import importlib

    # The top level takes only --help and --version, so a valid command
    # line starts with its command. Build the parser for that one command:
    # all eleven cost 0.66 s of the daemon's CPU at boot in the lab's
    # guests (argparse looks every help string up with gettext). No
    # command, a typo, -h or --version: the whole parser answers and exits.
    command = argv[0] if argv else None
    if command not in SUBCOMMANDS:
        full, _ = build_parser()
        command = full.parse_args(argv).command
    parser, subparsers = build_parser([command])
    # Only this command's module is imported; it adds its own arguments
    # (so `ib40d COMMAND --help` lists them).
    module = importlib.import_module(SUBCOMMANDS[command][0])
    module.add_arguments(subparsers[command])
    return command, module, parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "link-ready" and not argv[1].startswith("-"):
        # The unit's exact command line: no parser to build, and argparse
        # with what it imports is most of this short process's CPU, paid at
        # every boot and hotplug by every link.
        from ib40d.commands.linkready import quick

        return quick(argv[1])
    if argv == ["daemon"]:
        # ib40d.service's exact command line, at every boot: its defaults
        # without argparse, as for link-ready above.
        from ib40d.commands import daemon as module

        command, args = "daemon", module.default_args()
    else:
        command, module, args = parse(argv)
    try:
        if command == "apply" and os.path.realpath(args.root) != "/":
            # --root reads another machine's files (a support bundle): its
            # config must not be applied to this machine's kernel.
            raise UserError(f"--root {args.root}: apply changes this machine's links and runs only with --root /",
                            status=2)
        return module.run(args)
    except ConfigError as e:
        problems = e.problems
        if getattr(args, "root", "/") != "/":  # a bundle's tarball: named, not its temporary tree
            from ib40d.system.bundle import shown_path

            problems = [p._replace(file=shown_path(p.file)) if p.file else p for p in problems]
        for problem in problems:
            print(problem.render(), file=sys.stderr)
        n = len(e.problems)
        print(f"ib40d: {n} problem{'s' if n != 1 else ''} in the configuration; nothing was changed", file=sys.stderr)
        return 2
    except UserError as e:
        print(f"ib40d {command}: {e}", file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `ib40d status | head`: the reader went away; not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
