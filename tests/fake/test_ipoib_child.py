# SPDX-License-Identifier: GPL-2.0-or-later
"""IPoIB P_Key children ([ipoib ib0.8001] with parent and pkey) through
check, plan and apply on the recording fake (no machine here has IPoIB; the
netlink request: tests/unit/test_netlink_contract.py)."""

import pytest

from helpers import only_problem

from fakenl import FakeRoot
from ib40d.core.config import parse_text
from ib40d.core.model import LinkObs
from ib40d.core.plan import make_plan
from ib40d.system.apply_engine import converge
from ib40d.system.observe import CHILDREN_FILE, observe

from test_plan import machine

CHILD = ("[ipoib ib0]\nmode = connected\nmtu = 65520\n"
         "[ipoib ib0.8001]\nparent = ib0\npkey = 0x0001\nmode = datagram\nmtu = 2044\naddress = 10.40.0.1/24\n"
         "[partition storage]\npkey = 0x0001\n")


def ib_machine():
    return machine(LinkObs(name="ib0", index=9, kind="ipoib", arptype=32, mtu=65520, admin_up=True,
                           ipoib_mode="connected"))


@pytest.mark.parametrize("text, words", [
    ("[ipoib ib0]\n[ipoib ib0.0001]\nparent = ib0\npkey = 0x0001\n", ["use [ipoib ib0.8001]"]),
    ("[ipoib ib0]\n[ipoib ib0.8001]\npkey = 0x8001\n", ["pkey: needs parent = too"]),
    ("[ipoib ib0]\n[ipoib ib0.8001]\nparent = ib0\npkey = 8001\n", ["not a partition key like 0x8001"]),
    ("[ipoib ib0]\n[ipoib ib0.8000]\nparent = ib0\npkey = 0x8000\n", ["invalid partition key"]),
    ("[link ib0]\n[ipoib ib0.8001]\nparent = ib0\npkey = 0x8001\n", ["ib0 is not an [ipoib ib0] section"]),
    ("[ipoib ib0]\n[ipoib ib0.8001]\nparent = ib0\npkey = 0x8001\nguid = 0x0002c903003f02f1\n",
     ["a P_Key child has its parent's GUID"]),
])
def test_check_refuses(text, words):
    problem = only_problem("[opensm]\nstart = never\n" + text)  # partitions: tests/unit/test_partitions.py
    for word in words:
        assert word in problem


def test_the_full_membership_bit_is_set_for_the_user():
    assert parse_text(CHILD).links["ib0.8001"].pkey == 0x8001


def test_child_is_created_configured_recorded_and_a_second_apply_sends_nothing(tmp_path):
    cfg = parse_text(CHILD)
    nl = ib_machine()
    plan = make_plan(cfg, observe(nl, FakeRoot(tmp_path, nl)))
    assert [a.describe() for a in plan.actions if a.target == "ib0.8001"] == [
        "ipoib.create ib0.8001: pkey (none) -> 0x8001 on ib0",
        "ipoib.mode ib0.8001: mode (none) -> datagram",
        "link.mtu ib0.8001: mtu (none) -> 2044",
        "addr.add ib0.8001: address (none) -> 10.40.0.1/24",
        "link.up ib0.8001: state down -> up"]
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok and result.not_converged == [], result.to_json()
    child = nl.links["ib0.8001"]
    assert (child.parent, child.pkey, child.admin_up) == ("ib0", 0x8001, True)
    assert (tmp_path / CHILDREN_FILE.lstrip("/")).read_text() == "ib0.8001\n"
    assert converge(cfg, nl, FakeRoot(tmp_path, nl)).writes == 0


def test_a_child_leaving_the_config_is_removed_only_if_ib40_created_it(tmp_path):
    nl = ib_machine()
    converge(parse_text(CHILD), nl, FakeRoot(tmp_path, nl))
    nl.create_ipoib_child("ib0.8002", 9, "ib0", 0x8002)  # made by hand: not ib40's
    without = parse_text("[ipoib ib0]\nmode = connected\nmtu = 65520\n[partition storage]\npkey = 0x0001\n")
    result = converge(without, nl, FakeRoot(tmp_path, nl))
    assert result.ok and [a.describe() for a in result.done] == [
        "ipoib.delete ib0.8001: state present -> (none) (left the config; ib40 created it)"]
    assert "ib0.8001" not in nl.links and "ib0.8002" in nl.links
    assert (tmp_path / CHILDREN_FILE.lstrip("/")).read_text() == ""


def test_child_waits_for_its_parent(tmp_path):
    nl = machine()
    plan = make_plan(parse_text(CHILD), observe(nl, FakeRoot(tmp_path, nl)))
    assert plan.actions == [] and "ib0.8001: not present yet; configured when it appears" in plan.notes
