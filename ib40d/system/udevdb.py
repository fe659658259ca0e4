# SPDX-License-Identifier: GPL-2.0-or-later
"""udev's database, through pyudev: which links udev has finished with.

A network device gets its entry in udev's database (/run/udev/data/n<ifindex>)
once udev has run its rules on it, renames included. Until then ib40 leaves
the link alone, as systemd-networkd does: a link set up before udev renames
it makes the rename fail with EBUSY, and the port keeps the kernel's name.

Where no udevd runs (a container, a test in its own mount namespace) nothing
would ever write the database, so there is nothing to wait for.

udev announces a finished event on its own netlink group; `Watcher.fileno()`
goes into the daemon's selector so a deferred link is taken up at once.
"""

from __future__ import annotations

import os

import pyudev

class Watcher:
    """udev's view of net devices for the daemon. Inactive (everything counts
    as initialized, no monitor) when udevd is not running."""

    def __init__(self, run_dir: str = "/run/udev"):
        # udevd creates its control socket at start; libudev's own
        # "is udev running" test looks for the same file.
        self.active = os.path.exists(os.path.join(run_dir, "control"))
        self._context = pyudev.Context() if self.active else None
        self._monitor = None

    def uninitialized(self, names) -> set[str]:
        """The NAMES that exist but have no udev database entry yet."""
        if not self.active:
            return set()
        waiting = set()
        for name in names:
            try:
                device = pyudev.Devices.from_name(self._context, "net", name)
            except pyudev.DeviceNotFoundError:
                continue  # absent: nothing to wait for, nothing to configure
            if not device.is_initialized:
                waiting.add(name)
        return waiting

    def fileno(self) -> int | None:
        """A descriptor that becomes readable when udev finishes an event on
        a net device (None when inactive)."""
        if not self.active:
            return None
        if self._monitor is None:
            self._monitor = pyudev.Monitor.from_netlink(self._context)
            self._monitor.filter_by("net")
            self._monitor.start()
        return self._monitor.fileno()

    def drain(self) -> None:
        """Read what udev announced (never blocks); which devices are ready
        is then asked of the database itself (uninitialized())."""
        while self._monitor is not None and self._monitor.poll(timeout=0) is not None:
            pass
