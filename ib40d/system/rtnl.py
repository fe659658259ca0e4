# SPDX-License-Identifier: GPL-2.0-or-later
"""Former home of the stdlib rtnetlink reads, now in netlink.py (and the
numbers in rtnl_constants.py). Only what callers outside the netlink stack
still take from here (addrdump, daemon) is left; drop it once they import
from there."""

from ib40d.system.netlink import LinkMonitor, dump_addresses
from ib40d.core.rtnl_constants import IFF_UP

__all__ = ["IFF_UP", "LinkMonitor", "dump_addresses"]
