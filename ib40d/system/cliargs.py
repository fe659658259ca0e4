# SPDX-License-Identifier: GPL-2.0-or-later
"""What every subcommand takes from its common options (--root, -c): the
configuration and the SysRoot.

Commands import these from here, not from ib40d.commands.cli, which imports the
commands (cli -> linkready -> apply -> ... -> cli was a cycle); cli
re-exports them for its other callers.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    import argparse

    from ib40d.system.sysroot import SysRoot

DEFAULT_CONFIG = "/etc/ib40.conf"


def default_root() -> str:
    """--root when it is not given: IB40_ROOT, else /."""
    import os

    return os.environ.get("IB40_ROOT", "/")


def root_dir(args: argparse.Namespace) -> str:
    """--root as a directory: a bundle tarball (`ib40d bundle`) is extracted
    first, once, and args.root then names the extracted tree."""
    if args.root != "/":
        from ib40d.system.bundle import open_tree

        args.root = open_tree(args.root)
    return args.root


def config_path(args: argparse.Namespace) -> str:
    """-c FILE as given; otherwise /etc/ib40.conf under --root."""
    if getattr(args, "config", None):
        return args.config
    from ib40d.system.sysroot import SysRoot

    return str(SysRoot(root_dir(args)).path(DEFAULT_CONFIG))


def load_config(args: argparse.Namespace):
    """Load the config the subcommand was pointed at. Raises ConfigError.
    (config is imported here, not at the top: link-ready never parses it.)"""
    from ib40d.system.config_reader import load

    return load(config_path(args))


def sysroot(args: argparse.Namespace) -> SysRoot:
    from ib40d.system.sysroot import SysRoot

    return SysRoot(root_dir(args))
