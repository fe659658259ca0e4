# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d link-ready NAME`: what ib40-link@NAME.service runs.

A cheap client (no pyroute2): it asks ib40d.service, over its unix socket, to
apply NAME (and its bond), prints the daemon's answer for the journal and
exits with its status. So `systemctl enable ib40-link@eth40a` gives every
link a unit of its own, started at boot and on hotplug, without each one
paying pyroute2's import. When the daemon is not running (a user who enabled
only the link unit), it applies in-process and says so.

The unit's exact form, `ib40d link-ready NAME`, comes straight here from
cli.main without argparse (see quick()): this module imports only socket,
sys, os, time and the protocol (control_protocol.py) until it has to apply
in-process.
"""

from __future__ import annotations

import os
import socket
import sys
import time

from ib40d.core import control_protocol as protocol
from ib40d.core.control_protocol import CONTROL_SOCKET
from ib40d.core.errors import UserError
from ib40d.system.cliargs import default_root

DEFAULT_WAIT_S = 10.0
DEFAULT_TIMEOUT_S = 60.0


def add_arguments(parser) -> None:
    parser.add_argument("name", help="the configured link to apply")
    parser.add_argument("--wait", type=float, default=DEFAULT_WAIT_S, metavar="S",
                        help="wait up to S seconds for ib40d.service's socket (default 10)")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="S",
                        help="give up on the daemon's answer after S seconds (default 60)")


def ask_daemon(path: str, name: str, timeout: float) -> tuple[list[protocol.Line], int]:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        s.connect(path)
        s.sendall(protocol.request(name))
        try:
            return protocol.read_answer(s.makefile("r"))
        except protocol.ProtocolError as e:
            raise UserError(f"ib40d.service {e} for {name}") from None


def request(path: str, name: str, wait: float, timeout: float, apply_in_process) -> int:
    """Ask the daemon on `path` to apply `name`; print its answer; -> its
    status. Without a daemon after `wait` seconds: apply_in_process()."""
    # No config parsing here: the daemon checks the name (and answers
    # "not configured" with status 2); this client stays a few ms.
    start = time.monotonic()
    while True:
        try:
            lines, rc = ask_daemon(path, name, timeout)
            break
        except (FileNotFoundError, ConnectionRefusedError):
            if time.monotonic() >= start + wait:
                print(f"ib40d.service is not answering on {CONTROL_SOCKET}; applying {name} in-process",
                      file=sys.stderr)
                return apply_in_process()
            time.sleep(0.1)
        except BlockingIOError:
            # EAGAIN from connect: the daemon's backlog is full (a burst of
            # clients). It is busy, not gone: wait for it, up to --timeout.
            if time.monotonic() >= start + timeout:
                raise UserError(f"ib40d.service did not answer for {name} within {timeout:g} s") from None
            time.sleep(0.1)
        except socket.timeout:
            raise UserError(f"ib40d.service did not answer for {name} within {timeout:g} s") from None
        except PermissionError:
            raise UserError(f"{CONTROL_SOCKET}: permission denied (run as root)") from None
        except OSError as e:  # the daemon restarting mid-request, a full queue...
            raise UserError(f"ib40d.service did not answer for {name}: {e.strerror or e}") from None
    for line in lines:
        print(line, file=sys.stderr if line.kind == protocol.ERROR else sys.stdout)
    return rc


def run(args) -> int:
    from ib40d.system.cliargs import sysroot

    def apply_in_process() -> int:
        from ib40d.commands.apply import run as apply_run

        args.link, args.json = args.name, False
        return apply_run(args)

    path = str(sysroot(args).path(CONTROL_SOCKET))
    return request(path, args.name, args.wait, args.timeout, apply_in_process)


def quick(name: str) -> int:
    """`ib40d link-ready NAME` with no option: the defaults, --root from
    IB40_ROOT as argparse would take it, and the same exit statuses."""
    path = os.path.join(default_root(), CONTROL_SOCKET.lstrip("/"))

    def apply_in_process() -> int:
        from ib40d.commands.cli import main

        return main(["apply", "--link", name])

    try:
        return request(path, name, DEFAULT_WAIT_S, DEFAULT_TIMEOUT_S, apply_in_process)
    except UserError as e:
        print(f"ib40d link-ready: {e}", file=sys.stderr)
        return e.status
    except KeyboardInterrupt:
        return 130
