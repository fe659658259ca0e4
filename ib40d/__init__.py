# SPDX-License-Identifier: GPL-2.0-or-later
"""ib40d: configure Mellanox ConnectX-3 VPI 40G ports from /etc/ib40.conf."""

__version__ = "0.2.0"
