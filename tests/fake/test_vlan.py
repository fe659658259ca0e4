# SPDX-License-Identifier: GPL-2.0-or-later
"""[vlan NAME] through check, plan, apply on the recording fake and status
from a bundle. This machine's kernel has no 8021q: the VLAN's netlink
message is checked in tests/unit/test_netlink_contract.py, the kernel in
the lab (tests/lab/test_65_lacp_vlan.py)."""

import json

import pytest

from fakenl import FakeRoot
from helpers import HOWTO_BOND, assert_refused_at, run_ib40d
from ib40d.core.config import parse_text
from ib40d.core.model import LinkObs
from ib40d.core.plan import make_plan
from ib40d.system.apply_engine import converge
from ib40d.system.observe import observe

from test_plan import machine
from test_status import fake_link, write

VLAN = HOWTO_BOND + "[vlan bond0.30]\nlink = bond0\nid = 30\naddress = 10.31.0.2/24\nroutes = 10.32.0.0/24 via 10.31.0.1\n"


@pytest.mark.parametrize("text, line, words", [
    ("[link a]\n[vlan v]\nlink = a\n", 2, ["[vlan v]: needs id ="]),
    ("[link a]\n[vlan v]\nlink = a\nid = 4095\n", 4, ["out of range 1..4094"]),
    ("[vlan v]\nlink = eth9\nid = 5\n", 2, ["eth9 is neither a [link eth9] nor a [bond eth9]"]),
    ("[link a]\nmtu = 1500\n[vlan v]\nlink = a\nid = 5\nmtu = 9000\n", 6, ["9000 is above a's mtu 1500"]),
    ("[link a]\n[vlan v]\nlink = a\nid = 5\nmac = 00:02:c9:3e:ca:b1\n", 5, ["unknown key"]),
])
def test_check_refuses(text, line, words):
    assert_refused_at(text, line, words)


def test_vlan_on_a_new_bond_is_created_after_it_then_addressed_up_routed_and_idempotent(tmp_path):
    cfg = parse_text(VLAN)
    nl = machine()
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok and result.not_converged == [], result.to_json()
    calls = [(m, n) for m, n, _ in nl.calls]
    assert calls.index(("create_vlan", "bond0.30")) > calls.index(("create_bond", "bond0"))
    assert calls[-3:] == [("add_address", "bond0.30"), ("set_state", "bond0.30"), ("add_route", "bond0.30")]
    vlan = nl.links["bond0.30"]
    assert (vlan.kind, vlan.vlan_id, vlan.parent, vlan.admin_up) == ("vlan", 30, "bond0", True)
    assert converge(cfg, nl, FakeRoot(tmp_path, nl)).writes == 0


def test_a_vlan_with_another_id_is_refused_not_rewritten(tmp_path):
    nl = machine(LinkObs(name="eth40a.30", index=20, kind="vlan", vlan_id=31, parent="eth40a", mtu=1500, admin_up=True))
    cfg = parse_text("[link eth40a]\n[vlan eth40a.30]\nlink = eth40a\nid = 30\n")
    plan = make_plan(cfg, observe(nl, FakeRoot(tmp_path, nl)))
    assert not [a for a in plan.actions if a.target == "eth40a.30"]
    assert plan.refusals == ["eth40a.30: is VLAN 31 on eth40a, but the config says 30 on eth40a; refused (the kernel "
                             "changes neither): delete it (ip link del eth40a.30) and apply again"]


def test_status_reads_a_vlan_from_proc_net_vlan(tmp_path):
    root = tmp_path / "bundle"
    fake_link(root, "eth40a", "00:02:c9:3e:ca:b1")
    fake_link(root, "eth40a.30", "00:02:c9:3e:ca:b1", up=False)
    write(root, "/proc/net/vlan/eth40a.30", "eth40a.30  VID: 31\t REORDER_HDR: 1  dev->priv_flags: 1021\n"
                                            "Device: eth40a\nINGRESS priority mappings: 0:0\n")
    write(root, "/etc/ib40.conf", "[link eth40a]\n[vlan eth40a.30]\nlink = eth40a\nid = 30\n")
    status = json.loads(run_ib40d("status", "--root", str(root), "--json", check_rc=0).stdout)
    vlan = next(l for l in status["links"] if l["name"] == "eth40a.30")
    assert vlan["role"] == "vlan on eth40a"
    assert vlan["mismatches"] == ["vlan eth40a 31 (config eth40a 30)"]
