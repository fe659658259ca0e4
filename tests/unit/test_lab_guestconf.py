# SPDX-License-Identifier: GPL-2.0-or-later
"""The configurations the lab writes into its guests are valid for ib40's
own parser and say what the scenarios expect (pure, no VM)."""
from ib40d.core.config import parse_text

from lab import guestconf
from lab.vm import MACHINES

A = MACHINES["a"]


def test_bond_config_is_the_howto_dual_port_setup():
    cfg = parse_text(guestconf.ib40_bond(A["macs"], A["address"]))
    bond = cfg.bonds["bond0"]
    assert (bond.mode, bond.miimon, bond.updelay, bond.downdelay) == ("balance-rr", 100, 200, 200)
    assert bond.slaves == ("eth40a", "eth40b")
    assert [a.cidr for a in bond.addresses] == ["10.30.0.1/16"]
    assert [(l.name, l.mac, l.txqueuelen) for l in cfg.links.values()] == [
        ("eth40a", "00:02:c9:3e:ca:b1", 10000), ("eth40b", "00:02:c9:3e:ca:b0", 10000)]


def test_arp_variant_replaces_miimon():
    bond = parse_text(guestconf.ib40_bond(A["macs"], A["address"], arp_target="10.30.0.2")).bonds["bond0"]
    assert (bond.miimon, bond.arp_interval, bond.arp_ip_target) == (None, 100, ("10.30.0.2",))


def test_single_port_config_has_no_bond():
    cfg = parse_text(guestconf.ib40_single(A["macs"][0], A["address"]))
    assert cfg.bonds == {}
    assert [a.cidr for a in cfg.links["eth40a"].addresses] == ["10.30.0.1/24"]


def test_ifupdown_stanzas_follow_the_howto():
    files = guestconf.ifupdown_files(A["macs"], A["address"])
    stanzas = files["/etc/network/interfaces"]
    for line in ("bond-slaves eth40a eth40b", "bond-miimon 100", "bond-updelay 200",
                 "bond-downdelay 200", "bond-mode balance-rr", "netmask 255.255.0.0"):
        assert line in stanzas
    assert 'ATTR{address}=="00:02:c9:3e:ca:b1"' in files["/etc/udev/rules.d/70-40g-nic.rules"]
