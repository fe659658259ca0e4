# SPDX-License-Identifier: GPL-2.0-or-later
"""What a link is now, from sysfs alone (no netlink, no pyroute2 import).

`status` and `doctor` read links here (observe.observe_sysfs), into the same
LinkObs that plan/apply read through netlink (observe.observe). Every path
goes through SysRoot so a captured tree works too.
"""

from __future__ import annotations

from ib40d.core.model import BOND_OPTIONS, BondObs, LinkObs
from ib40d.system.sysroot import SysRoot

IFF_UP = 0x1
# ARPHRD_* from linux/if_arp.h: what /sys/class/net/X/type says.
ARPHRD_ETHER = 1
ARPHRD_INFINIBAND = 32


def read_link(root: SysRoot, name: str) -> LinkObs | None:
    """The link NAME, None when there is none. Missing attributes are None.
    kind is "bond" or "ipoib" (sysfs does not name other kinds)."""
    base = f"/sys/class/net/{name}"
    if not root.exists(base):
        return None
    flags = root.read_int(f"{base}/flags")
    carrier = root.read(f"{base}/carrier")  # reading it on a down link fails: None
    master = root.realpath(f"{base}/master")
    master = master.rsplit("/", 1)[1] if master else None
    arptype = root.read_int(f"{base}/type")
    bond = read_bond_sysfs(root, name)
    vlan_id, parent = _vlan(root, name)
    kind = "bond" if bond is not None else ("ipoib" if arptype == ARPHRD_INFINIBAND else None)
    kind = "vlan" if vlan_id is not None else kind
    speed = root.read_int(f"{base}/speed")
    mac = root.read(f"{base}/address")
    return LinkObs(
        name=name,
        index=root.read_int(f"{base}/ifindex") or 0,
        kind=kind,
        arptype=arptype,
        mac=mac,
        # The port's own MAC: a bond gives every balance-rr slave the bond's
        # MAC, so `address` alone would say eth40b has eth40a's.
        perm_mac=_bond_slave_perm_mac(root, master, name) if master else mac,
        mtu=root.read_int(f"{base}/mtu"),
        txqueuelen=root.read_int(f"{base}/tx_queue_len"),
        admin_up=flags is not None and bool(flags & IFF_UP),
        carrier=None if carrier is None else carrier == "1",
        operstate=root.read(f"{base}/operstate"),
        master=master,
        bond=bond,
        vlan_id=vlan_id,
        parent=parent,
        ipoib_mode=root.read(f"{base}/mode") if kind == "ipoib" else None,
        speed_mbps=speed if speed is not None and speed >= 0 else None,
    )


def _vlan(root: SysRoot, name: str) -> tuple[int | None, str | None]:
    """A VLAN's ID and link from /proc/net/vlan/NAME ("NAME  VID: 30 ...",
    "Device: bond0"); (None, None) for any other link."""
    import re

    text = root.read(f"/proc/net/vlan/{name}")
    vid = re.search(r"\bVID: (\d+)", text or "")
    device = re.search(r"^Device: (\S+)", text or "", re.M)
    if vid is None:
        return None, None
    return int(vid.group(1)), device.group(1) if device else None


def _bond_slave_perm_mac(root: SysRoot, bond: str, slave: str) -> str | None:
    from ib40d.core.bonding import parse_proc_bonding

    text = root.read(f"/proc/net/bonding/{bond}")
    for s in parse_proc_bonding(text)["slaves"] if text else []:
        if s["name"] == slave:
            return s["perm_hwaddr"]
    return root.read(f"/sys/class/net/{slave}/address")


def read_bond_sysfs(root: SysRoot, name: str) -> BondObs | None:
    """A bond's settings from /sys/class/net/<bond>/bonding, one file per
    row of model.BOND_OPTIONS; a support bundle without a file falls back to
    what /proc/net/bonding shows. None when NAME is not a bond."""
    base = f"/sys/class/net/{name}/bonding"
    if not root.exists(base):
        return None
    proc = None
    values = {}
    for option in BOND_OPTIONS:
        text = root.read(f"{base}/{option.name}")
        if text is None and option.in_proc:
            if proc is None:
                from ib40d.core.bonding import parse_proc_bonding

                proc_text = root.read(f"/proc/net/bonding/{name}")
                proc = parse_proc_bonding(proc_text) if proc_text else {}
            values[option.name] = proc.get(option.name)
            continue
        try:
            values[option.name] = option.sysfs(text) if text is not None else None
        except (ValueError, IndexError):
            values[option.name] = None
    return BondObs(**values)
