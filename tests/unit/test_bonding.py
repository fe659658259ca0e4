# SPDX-License-Identifier: GPL-2.0-or-later
"""The /proc/net/bonding parser on every real sample in tests/fixtures/bonding."""

import pytest

from helpers import FIXTURES, fixture_output
from ib40d.core.bonding import parse_proc_bonding

EXPECTED = {
    "balance_rr_single_slave_40g_eth.txt": dict(
        mode="balance-rr", miimon=100, updelay=200, downdelay=200, driver_version="3.7.1",
        slaves=[("eth40b", "up", 40000, 0, "00:02:c9:3e:ca:b0")]),
    "active_backup_ipoib_ib0_ib1_56g.txt": dict(
        mode="active-backup", miimon=100, updelay=0, downdelay=0, active_slave="ib0", primary=None,
        slaves=[("ib0", "up", 56000, 0, "a0:04:02:20:fe:80"), ("ib1", "up", 56000, 0, "a0:04:03:00:fe:80")]),
    "active_backup_slave_down_failcount2_telegraf.txt": dict(
        mode="active-backup", active_slave="eth2", primary="eth2",
        slaves=[("eth3", "down", 1000, 2, None), ("eth2", "up", 100, 0, None)]),
    "8023ad_slave_down_link_failure_2.txt": dict(
        mode="802.3ad", miimon=100, xmit_hash_policy="layer3+4", lacp_rate="fast", ad_select="stable", min_links=0,
        slaves=[("enp1s0f0", "down", None, 2, "00:25:90:85:81:f2"), ("enp1s0f1", "up", 1000, 2, "00:25:90:85:81:f3")]),
    "8023ad_no_active_aggregator_failcount3_telegraf.txt": dict(
        mode="802.3ad", driver_version="3.5.0", xmit_hash_policy="layer2", lacp_rate="fast", ad_select="stable",
        slaves=[("eth1", "up", None, 0, "00:0c:29:f5:b7:11"), ("eth2", "up", None, 3, "00:0c:29:f5:b7:1b")]),
}


def test_every_bonding_fixture_is_covered():
    assert {p.name for p in (FIXTURES / "bonding").glob("*.txt")} == set(EXPECTED)


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_bonding_fixture(name):
    bond = parse_proc_bonding(fixture_output(f"bonding/{name}"))
    want = dict(EXPECTED[name])
    slaves = want.pop("slaves")
    for key, value in want.items():
        assert bond[key] == value, key
    got = [(s["name"], s["mii_status"], s["speed_mbps"], s["link_failure_count"], s["perm_hwaddr"])
           for s in bond["slaves"]]
    assert got == slaves
