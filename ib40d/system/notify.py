# SPDX-License-Identifier: GPL-2.0-or-later
"""sd_notify for ib40d.service (Type=notify): READY=1, STATUS=, and
RELOADING=1 and STOPPING=1 around a reload (SIGHUP) and a stop.

Outside systemd (NOTIFY_SOCKET unset: a shell, a test) every call is a no-op,
so callers never check where they run. sdnotify is imported only when there
is a socket to talk to.
"""

from __future__ import annotations

import os
import time

_notifier = None
_notifier_for: str | None = None  # the NOTIFY_SOCKET _notifier is connected to


def _send(message: str) -> None:
    global _notifier, _notifier_for
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if _notifier is None or _notifier_for != address:
        import sdnotify

        _notifier = sdnotify.SystemdNotifier()
        _notifier_for = address
    # sdnotify swallows socket errors (debug=False): a lost status line must
    # never take the daemon down.
    _notifier.notify(message)


def _one_line(text: str) -> str:
    # A newline would start a new KEY=VALUE assignment in the datagram.
    return " ".join(text.split())


def status(text: str) -> None:
    """STATUS=text: what `systemctl status ib40d` shows while we wait."""
    _send(f"STATUS={_one_line(text)}")


def ready(text: str | None = None) -> None:
    """READY=1 (with a final STATUS= in the same datagram when given)."""
    _send("READY=1" + (f"\nSTATUS={_one_line(text)}" if text else ""))


def reloading() -> None:
    """RELOADING=1: systemd shows the unit reloading until READY=1 says the
    reload is done. MONOTONIC_USEC=, which systemd 253+ reads with it to
    match the two, is ignored by 252."""
    _send(f"RELOADING=1\nMONOTONIC_USEC={time.monotonic_ns() // 1000}")


def stopping() -> None:
    """STOPPING=1: the service is going down (systemctl status says so)."""
    _send("STOPPING=1")
