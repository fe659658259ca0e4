# SPDX-License-Identifier: GPL-2.0-or-later
"""The bond options for a switch (xmit_hash_policy, lacp_rate, ad_select,
min_links, primary): check against the modes that use them, plan, apply on
the recording fake (which refuses what the kernel refuses: lacp_rate
outside 802.3ad, lacp_rate/ad_select on an up bond, primary outside
active-backup/tlb/alb), and status from a bundle's sysfs files."""

import json

import pytest

from fakenl import FakeRoot
from helpers import assert_refused_at, run_ib40d
from ib40d.core.config import parse_text
from ib40d.core.plan import make_plan
from ib40d.system.apply_engine import converge
from ib40d.system.observe import observe

from test_plan import machine
from test_status import fake_link, write

LACP = ("[link eth40a]\n[link eth40b]\n[bond bond0]\nslaves = eth40a eth40b\nmode = 802.3ad\nmiimon = 100\n"
        "xmit_hash_policy = layer3+4\nlacp_rate = fast\nad_select = bandwidth\nmin_links = 1\n")
ACTIVE_BACKUP = ("[link eth40a]\n[link eth40b]\n[bond bond0]\nslaves = eth40a eth40b\nmode = active-backup\n"
                 "miimon = 100\nprimary = eth40b\n")


@pytest.mark.parametrize("text, line, words", [
    ("[link a]\n[bond b]\nslaves = a\nmode = balance-rr\nlacp_rate = fast\n", 5,
     ["[bond b] lacp_rate", "mode 802.3ad only, not balance-rr"]),
    ("[link a]\n[bond b]\nslaves = a\nad_select = count\n", 4, ["ad_select", "set mode ="]),
    ("[link a]\n[bond b]\nslaves = a\nmode = active-backup\nxmit_hash_policy = layer3+4\n", 5,
     ["balance-xor and 802.3ad and balance-tlb only, not active-backup"]),
    ("[link a]\n[bond b]\nslaves = a\nmode = 802.3ad\nxmit_hash_policy = layer4\n", 5,
     ["not a transmit hash policy", "layer3+4"]),
    ("[link a]\n[bond b]\nslaves = a\nmode = 802.3ad\nlacp_rate = medium\n", 5, ["not an LACP rate"]),
    ("[link a]\n[bond b]\nslaves = a\nmode = 802.3ad\nmin_links = 2\n", 5, ["more than the 1 slaves"]),
    ("[link a]\n[bond b]\nslaves = a\nmode = balance-rr\nprimary = a\n", 5,
     ["primary", "active-backup and balance-tlb and balance-alb only"]),
    ("[link a]\n[link c]\n[bond b]\nslaves = a\nmode = active-backup\nprimary = c\n", 6, ["c is not one of slaves (a)"]),
    ("[link a]\n[bond b]\nslaves = a\nmode = active-backup\nprimary = a c\n", 5, ["not one link name"]),
])
def test_check_refuses_an_option_outside_its_modes(text, line, words):
    assert_refused_at(text, line, words)


def test_options_are_accepted_in_their_modes():
    lacp = parse_text(LACP).bonds["bond0"]
    assert (lacp.xmit_hash_policy, lacp.lacp_rate, lacp.ad_select, lacp.min_links) == ("layer3+4", "fast", "bandwidth", 1)
    assert parse_text(ACTIVE_BACKUP).bonds["bond0"].primary == "eth40b"
    assert parse_text(LACP.replace("802.3ad", "balance-xor").replace("lacp_rate = fast\nad_select = bandwidth\n"
                                                                     "min_links = 1\n", "")).bonds["bond0"]


def test_lacp_bond_is_created_with_its_options_and_a_second_apply_sends_nothing(tmp_path):
    cfg = parse_text(LACP)
    nl = machine()
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok and result.not_converged == [], result.to_json()
    assert nl.calls[0] == ("create_bond", "bond0", {"mode": "802.3ad", "miimon": 100, "xmit_hash_policy": "layer3+4",
                                                    "lacp_rate": "fast", "ad_select": "bandwidth", "min_links": 1})
    before = nl.writes
    assert converge(cfg, nl, FakeRoot(tmp_path, nl)).writes == 0 and nl.writes == before


def test_lacp_rate_change_on_an_up_bond_goes_down_set_up(tmp_path):
    nl = machine()
    converge(parse_text(LACP), nl, FakeRoot(tmp_path, nl))
    nl.calls.clear()
    slow = parse_text(LACP.replace("fast", "slow"))
    plan = make_plan(slow, observe(nl, FakeRoot(tmp_path, nl)))
    assert [a.describe() for a in plan.actions] == [
        "link.down bond0: state up -> down (lacp_rate changes only while the bond is down)",
        "bond.set bond0: lacp_rate fast -> slow",
        "link.up bond0: state down -> up"]
    result = converge(slow, nl, FakeRoot(tmp_path, nl))
    assert result.ok and result.not_converged == [] and nl.links["bond0"].bond.lacp_rate == "slow"
    # xmit_hash_policy and min_links change on an up bond: no flap
    nl.calls.clear()
    converge(parse_text(LACP.replace("fast", "slow").replace("layer3+4", "layer2+3")), nl, FakeRoot(tmp_path, nl))
    assert nl.calls == [("set_bond", "bond0", {"xmit_hash_policy": "layer2+3"})]


def test_primary_is_set_after_the_slaves_join_and_waits_for_an_absent_one(tmp_path):
    cfg = parse_text(ACTIVE_BACKUP)
    nl = machine()
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok and result.not_converged == [], result.to_json()
    calls = nl.calls
    assert calls.index(("set_bond_primary", "bond0", "eth40b")) > calls.index(("set_master", "eth40b", "bond0"))
    assert nl.links["bond0"].bond.primary == "eth40b"
    assert converge(cfg, nl, FakeRoot(tmp_path, nl)).writes == 0

    nl = machine()
    del nl.links["eth40b"]
    plan = make_plan(cfg, observe(nl, FakeRoot(tmp_path, nl)))
    assert not [a for a in plan.actions if a.kind == "bond.primary"]
    assert "bond0: primary eth40b set when eth40b appears" in plan.notes


def test_status_shows_the_options_that_differ(tmp_path):
    root = tmp_path / "bundle"
    fake_link(root, "bond0", "00:02:c9:3e:ca:b0", bond=True)
    for name, value in (("mode", "802.3ad 4"), ("miimon", "100"), ("xmit_hash_policy", "layer2 0"),
                        ("lacp_rate", "fast 1"), ("ad_select", "stable 0"), ("min_links", "1")):
        write(root, f"/sys/class/net/bond0/bonding/{name}", value + "\n")
    write(root, "/etc/ib40.conf", LACP)
    status = json.loads(run_ib40d("status", "--root", str(root), "--json", check_rc=0).stdout)
    bond0 = next(l for l in status["links"] if l["name"] == "bond0")
    assert bond0["mismatches"] == ["xmit_hash_policy layer2 (config layer3+4)",
                                   "ad_select stable (config bandwidth)"]
