# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d bundle [-o FILE]`: one .tar.gz of what status, doctor and plan
read here, for asking for help. `ib40d status --root FILE` (or doctor, plan)
then shows what they show on this machine. What it holds: system/bundle.py
and the README inside it.
"""

from __future__ import annotations

import os
import sys
import time

from ib40d.core.errors import UserError
from ib40d.system.cliargs import config_path, sysroot


def add_arguments(parser) -> None:
    parser.add_argument("-o", "--output", metavar="FILE",
                        help="write the bundle here (default ib40-bundle-DATE.tar.gz; - for stdout)")


def run(args) -> int:
    from ib40d.core.errors import ConfigError
    from ib40d.system import bundle
    from ib40d.system.conflicts import scan

    root = sysroot(args)
    config = config_path(args)
    try:  # the config's links are not needed: a broken config is what a helper needs to see
        from ib40d.system.cliargs import load_config

        load_config(args)
        config_note = None
    except ConfigError as e:
        config_note = f"{len(e.problems)} problem(s) in the configuration"
    out = args.output or time.strftime("ib40-bundle-%Y%m%d-%H%M%S.tar.gz")
    claims = [c.to_json() for c in scan(root)]
    if out == "-":
        bundle.capture(root, sys.stdout.buffer, config, claims)
        return 0
    tmp = f"{out}.part"
    old_umask = os.umask(0o077)  # it names this machine's links and addresses: the user's to share
    try:
        bundle.capture(root, tmp, config, claims)
        os.replace(tmp, out)
    except OSError as e:  # -o in a missing or read-only directory
        raise UserError(f"{e.filename or out}: {e.strerror or e}; no bundle written", status=1) from None
    finally:
        os.umask(old_umask)
        if os.path.exists(tmp):
            os.unlink(tmp)
    print(f"wrote {out}: read it with `ib40d status --root {out}` (or doctor, plan)")
    if config_note:
        print(f"note: {config_note}; it is in the bundle as it is (`ib40d check --root {out}` lists them)")
    return 0
