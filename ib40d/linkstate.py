# SPDX-License-Identifier: GPL-2.0-or-later
"""What a link is now, from sysfs alone (no netlink, no pyroute2 import).

`status`, `doctor` and the udev side read links here; plan/apply observe
through netlink (observe.py) because they need the exact kernel view and
addresses. Every path goes through SysRoot so a captured tree works too.
"""

from __future__ import annotations

from ib40d.sysroot import SysRoot

IFF_UP = 0x1
# ARPHRD_* from linux/if_arp.h: what /sys/class/net/X/type says.
ARPHRD_ETHER = 1
ARPHRD_INFINIBAND = 32


def read_link(root: SysRoot, name: str) -> dict:
    """-> {name, exists, mac, perm_mac, mtu, txqueuelen, operstate, carrier,
    admin_up, master, kind, ipoib_mode, speed_mbps}. Missing attributes are None."""
    base = f"/sys/class/net/{name}"
    if not root.exists(base):
        return {"name": name, "exists": False}
    flags = root.read_int(f"{base}/flags")
    carrier = root.read(f"{base}/carrier")  # reading it on a down link fails: None
    master = root.realpath(f"{base}/master")
    arptype = root.read_int(f"{base}/type")
    if root.exists(f"{base}/bonding"):
        kind = "bond"
    elif arptype == ARPHRD_INFINIBAND:
        kind = "ipoib"
    elif arptype == ARPHRD_ETHER:
        kind = "ether"
    else:
        kind = None
    speed = root.read_int(f"{base}/speed")
    mac = root.read(f"{base}/address")
    return {
        "name": name,
        "exists": True,
        "mac": mac,
        # The port's own MAC: a bond gives every balance-rr slave the bond's
        # MAC, so `address` alone would say eth40b has eth40a's.
        "perm_mac": _bond_slave_perm_mac(root, master.rsplit("/", 1)[1], name) if master else mac,
        "mtu": root.read_int(f"{base}/mtu"),
        "txqueuelen": root.read_int(f"{base}/tx_queue_len"),
        "operstate": root.read(f"{base}/operstate"),
        "carrier": None if carrier is None else carrier == "1",
        "admin_up": None if flags is None else bool(flags & IFF_UP),
        "master": master.rsplit("/", 1)[1] if master else None,
        "kind": kind,
        "ipoib_mode": root.read(f"{base}/mode") if kind == "ipoib" else None,
        "speed_mbps": speed if speed is not None and speed >= 0 else None,
    }


def _bond_slave_perm_mac(root: SysRoot, bond: str, slave: str) -> str | None:
    from ib40d.bonding import parse_proc_bonding

    text = root.read(f"/proc/net/bonding/{bond}")
    for s in parse_proc_bonding(text)["slaves"] if text else []:
        if s["name"] == slave:
            return s["perm_hwaddr"]
    return root.read(f"/sys/class/net/{slave}/address")


def read_bond_sysfs(root: SysRoot, name: str) -> dict | None:
    """Bond options from /sys/class/net/<bond>/bonding (the same values the
    kernel prints in /proc/net/bonding, plus use_carrier and ARP settings)."""
    base = f"/sys/class/net/{name}/bonding"
    if not root.exists(base):
        return None
    mode = root.read(f"{base}/mode")  # "balance-rr 0"
    targets = root.read(f"{base}/arp_ip_target")
    slaves = root.read(f"{base}/slaves")
    return {
        "mode": mode.split()[0] if mode else None,
        "miimon": root.read_int(f"{base}/miimon"),
        "updelay": root.read_int(f"{base}/updelay"),
        "downdelay": root.read_int(f"{base}/downdelay"),
        "use_carrier": None if root.read(f"{base}/use_carrier") is None else root.read(f"{base}/use_carrier") == "1",
        "arp_interval": root.read_int(f"{base}/arp_interval"),
        "arp_ip_target": tuple(targets.split()) if targets else (),
        "slaves": tuple(slaves.split()) if slaves else (),
    }
