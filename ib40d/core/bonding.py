# SPDX-License-Identifier: GPL-2.0-or-later
"""Parse /proc/net/bonding/<bond>, as the HOWTO reads it to check a bond.

Pure. The format is the kernel's bond_info_show_master()/_slave()
(drivers/net/bonding/bond_procfs.c): "Key: value" lines, a blank line between
the master block and each "Slave Interface:" block, and for 802.3ad an indented
"details ... lacp pdu:" block per slave that we skip.
"""

from __future__ import annotations

import re

# bond_mode_name() in the kernel, mapped back to the names sysfs and ib40.conf use.
_MODE_NAMES = {
    "load balancing (round-robin)": "balance-rr",
    "fault-tolerance (active-backup)": "active-backup",
    "load balancing (xor)": "balance-xor",
    "fault-tolerance (broadcast)": "broadcast",
    "IEEE 802.3ad Dynamic link aggregation": "802.3ad",
    "transmit load balancing": "balance-tlb",
    "adaptive load balancing": "balance-alb",
}


def _mode(text: str) -> str:
    # "fault-tolerance (active-backup) (fail_over_mac active)": the first
    # known name that the text starts with wins.
    for long_name, short in _MODE_NAMES.items():
        if text.startswith(long_name):
            return short
    return text


def _int(text: str) -> int | None:
    m = re.match(r"-?\d+", text)
    return int(m.group()) if m else None


def parse_proc_bonding(text: str) -> dict:
    """-> {driver_version, mode, mii_status, miimon, updelay, downdelay,
    active_slave, arp_interval, xmit_hash_policy, lacp_rate, ad_select,
    min_links, primary, slaves: [{name, mii_status, speed_mbps, duplex,
    link_failure_count, perm_hwaddr}]}. Keys absent from the text are None."""
    bond: dict = {
        "driver_version": None, "mode": None, "mii_status": None, "miimon": None,
        "updelay": None, "downdelay": None, "active_slave": None, "arp_interval": None,
        "xmit_hash_policy": None, "lacp_rate": None, "ad_select": None, "min_links": None, "primary": None,
        "slaves": [],
    }
    slave: dict | None = None
    for line in text.splitlines():
        if not line.strip() or line[0] in " \t":
            continue  # blank lines and indented 802.3ad detail blocks
        if line.startswith("Ethernet Channel Bonding Driver:"):
            m = re.search(r"\bv(\d\S*)", line)
            bond["driver_version"] = m.group(1) if m else None
            continue
        key, sep, value = line.partition(":")
        if not sep:
            continue
        key, value = key.strip(), value.strip()
        if key == "Slave Interface":
            slave = {"name": value, "mii_status": None, "speed_mbps": None, "duplex": None,
                     "link_failure_count": None, "perm_hwaddr": None}
            bond["slaves"].append(slave)
        elif slave is not None:
            if key == "MII Status":
                slave["mii_status"] = value
            elif key == "Speed":
                slave["speed_mbps"] = _int(value)  # "Unknown" -> None
            elif key == "Duplex":
                slave["duplex"] = None if value == "Unknown" else value
            elif key == "Link Failure Count":
                slave["link_failure_count"] = _int(value)
            elif key == "Permanent HW addr":
                slave["perm_hwaddr"] = value.lower() or None
        else:
            if key == "Bonding Mode":
                bond["mode"] = _mode(value)
            elif key == "MII Status":
                bond["mii_status"] = value
            elif key == "MII Polling Interval (ms)":
                bond["miimon"] = _int(value)
            elif key == "Up Delay (ms)":
                bond["updelay"] = _int(value)
            elif key == "Down Delay (ms)":
                bond["downdelay"] = _int(value)
            elif key == "ARP Polling Interval (ms)":
                bond["arp_interval"] = _int(value)
            elif key == "Currently Active Slave":
                bond["active_slave"] = None if value == "None" else value
            elif key == "Primary Slave":  # "eth2 (primary_reselect always)" or "None"
                bond["primary"] = None if value == "None" else value.split()[0]
            elif key == "Transmit Hash Policy":  # "layer3+4 (1)"
                bond["xmit_hash_policy"] = value.split()[0]
            elif key == "LACP rate":
                bond["lacp_rate"] = value
            elif key == "Aggregator selection policy (ad_select)":
                bond["ad_select"] = value
            elif key == "Min links":
                bond["min_links"] = _int(value)
    return bond
