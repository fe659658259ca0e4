# SPDX-License-Identifier: GPL-2.0-or-later
"""udev's database and announcements: which links udev has finished with.

A network device gets its entry in udev's database (/run/udev/data/n<ifindex>)
once udev has run its rules on it, renames included. Until then ib40 leaves
the link alone, as systemd-networkd does: a link set up before udev renames
it makes the rename fail with EBUSY, and the port keeps the kernel's name.

Where no udevd runs (a container, a test in its own mount namespace) nothing
would ever write the database, so there is nothing to wait for.

Whether the entry exists is read here directly: libudev and systemd's
sd-device count a device as initialized when its database file exists
("devices with a database entry are initialized", device_read_db), and a
net device's file is named n<ifindex>; nmstate asks the same way. Asking
through pyudev instead meant importing it before the daemon's first apply
at every boot: 29 modules (ctypes and libudev, datetime, tempfile), a
quarter of what importing the daemon cost (6 of 26 ms on a Debian 12 host).

pyudev does what only it does here: it subscribes to udev's own netlink
group, where udev announces each event it has finished. `Watcher.fileno()`
opens that Monitor (importing pyudev) the first time a link has to wait;
a boot whose ports udev has already named never does.
"""

from __future__ import annotations

import os


class Watcher:
    """udev's view of net devices for the daemon. Inactive (everything counts
    as initialized, no monitor) when udevd is not running."""

    def __init__(self, run_dir: str = "/run/udev"):
        # udevd creates its control socket at start; libudev's own
        # "is udev running" test looks for the same file.
        self.active = os.path.exists(os.path.join(run_dir, "control"))
        self._data_dir = os.path.join(run_dir, "data")
        self._monitor = None

    def uninitialized(self, names) -> set[str]:
        """The NAMES that exist but have no udev database entry yet."""
        if not self.active:
            return set()
        waiting = set()
        for name in names:
            try:
                with open(f"/sys/class/net/{name}/ifindex") as f:
                    ifindex = f.read().strip()
            except OSError:
                continue  # absent (or gone as we read): nothing to wait for, nothing to configure
            if not os.path.exists(os.path.join(self._data_dir, f"n{ifindex}")):
                waiting.add(name)
        return waiting

    def fileno(self) -> int | None:
        """A descriptor that becomes readable when udev finishes an event on
        a net device (None when inactive). The first call subscribes."""
        if not self.active:
            return None
        if self._monitor is None:
            import pyudev  # here, not at start: see the module's docstring

            self._monitor = pyudev.Monitor.from_netlink(pyudev.Context())
            self._monitor.filter_by("net")
            self._monitor.start()
        return self._monitor.fileno()

    def drain(self) -> None:
        """Read what udev announced (never blocks); which devices are ready
        is then asked of the database itself (uninitialized())."""
        while self._monitor is not None and self._monitor.poll(timeout=0) is not None:
            pass
