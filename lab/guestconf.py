# SPDX-License-Identifier: GPL-2.0-or-later
"""The /etc/ib40.conf each lab machine gets, and the two other ways of making
the same bond0 that bench/boot compares against (systemd-networkd; ifupdown +
ifenslave with the HOWTO's own stanzas). Pure text builders, no I/O."""


def ib40_bond(macs, address, arp_target=None):
    """The HOWTO's dual-port setup. With arp_target, ARP monitoring replaces
    miimon (the kernel takes one or the other)."""
    if arp_target:
        monitor = "arp_interval = 100\narp_ip_target = %s\n" % arp_target
    else:
        monitor = "miimon = 100\nupdelay = 200\ndowndelay = 200\n"
    return (
        "# ib40 lab: HOWTO dual-port bond\n"
        "[link eth40a]\nmac = %s\ntxqueuelen = 10000\n\n"
        "[link eth40b]\nmac = %s\ntxqueuelen = 10000\n\n"
        "[bond bond0]\nslaves = eth40a eth40b\nmode = balance-rr\n%s"
        "address = %s/16\nbroadcast = 10.30.255.255\n"
    ) % (macs[0], macs[1], monitor, address)


def ib40_single(mac, address):
    """The HOWTO's single-port section: one link, its own address, no bond."""
    return (
        "# ib40 lab: HOWTO single port\n"
        "[link eth40a]\nmac = %s\ntxqueuelen = 10000\n"
        "address = %s/24\nbroadcast = 10.30.0.255\n"
    ) % (mac, address)


def networkd_files(macs, address):
    """systemd-networkd: names by MAC (.link), bond0 (.netdev), slaves and
    address (.network). Returns {path: text}."""
    d = "/etc/systemd/network/"
    files = {}
    for name, mac in zip(("eth40a", "eth40b"), macs):
        files[d + "10-%s.link" % name] = (
            "[Match]\nMACAddress=%s\n[Link]\nName=%s\nTransmitQueueLength=10000\n" % (mac, name))
        files[d + "30-%s.network" % name] = (
            "[Match]\nName=%s\n[Network]\nBond=bond0\n" % name)
    files[d + "20-bond0.netdev"] = (
        "[NetDev]\nName=bond0\nKind=bond\n"
        "[Bond]\nMode=balance-rr\nMIIMonitorSec=100ms\nUpDelaySec=200ms\nDownDelaySec=200ms\n")
    files[d + "40-bond0.network"] = (
        "[Match]\nName=bond0\n[Network]\nAddress=%s/16\nConfigureWithoutCarrier=yes\n" % address)
    return files


def ifupdown_files(macs, address):
    """The HOWTO's udev naming rules and /etc/network/interfaces stanzas
    (ifconfig replaced by ip: net-tools is not in the image). {path: text}"""
    rules = "".join(
        'SUBSYSTEM=="net", ACTION=="add", DRIVERS=="?*", ATTR{address}=="%s", '
        'ATTR{dev_id}=="0x0", ATTR{type}=="1", NAME="%s"\n' % (mac, name)
        for name, mac in zip(("eth40a", "eth40b"), macs))
    stanzas = "auto lo\niface lo inet loopback\n\n"
    for name in ("eth40a", "eth40b"):
        stanzas += (
            "allow-hotplug %s\niface %s inet manual\n    bond-mode active-backup\n"
            "    bond-master bond0\n    pre-up ip link set %s txqueuelen 10000 2>/dev/null || true\n\n"
        ) % (name, name, name)
    stanzas += (
        "auto bond0\niface bond0 inet static\n    bond-mode balance-rr\n    use_carrier 1\n"
        "    bond-slaves eth40a eth40b\n    bond-miimon 100\n    bond-downdelay 200\n"
        "    bond-updelay 200\n    address %s\n    netmask 255.255.0.0\n"
        "    broadcast 10.30.255.255\n"
    ) % address
    return {"/etc/udev/rules.d/70-40g-nic.rules": rules,
            "/etc/network/interfaces": stanzas,
            "/etc/modules-load.d/bonding.conf": "bonding\n"}
