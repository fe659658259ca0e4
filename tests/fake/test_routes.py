# SPDX-License-Identifier: GPL-2.0-or-later
"""routes = in the config and the plan, on the recording fake (the kernel
side: tests/kernel/test_routes_netns.py)."""

import pytest

from helpers import only_problem

from fakenl import FakeRoot
from ib40d.core.config import parse_text
from ib40d.core.model import LinkObs, RouteObs
from ib40d.core.plan import make_plan
from ib40d.system.apply_engine import converge
from ib40d.system.observe import observe

from test_plan import machine


@pytest.mark.parametrize("text, words", [
    ("[link a]\nroutes = 10.0.2.0/24 via 10.0.1.1 metric x\n", ["metric: 'x' is not a whole number"]),
    ("[link a]\nroutes = 10.0.2.0/24 gw 10.0.1.1\n", ["is not DEST [via GATEWAY] [metric N]"]),
    ("[link a]\nroutes = 10.0.2.0/24 via fd00::1\n", ["different IP versions"]),
    ("[link a]\nroutes = 10.0.2.0\n", ["needs a prefix length"]),
    ("[link a]\nroutes = 10.0.2.0/24, 10.0.2.0/24\n", ["10.0.2.0/24 is listed twice"]),
    ("[link a]\nroutes = default via 224.0.0.1\n", ["cannot be a router's address"]),
    ("[link a]\nroutes = 10.0.2.0/24\n[bond b]\nslaves = a\n", ["[link a] routes: a is a slave of b: put the routes on b"]),
])
def test_check_refuses_malformed_routes(text, words):
    problem = only_problem(text)
    for word in words:
        assert word in problem


def test_default_and_ipv6_routes_parse_to_networks():
    routes = parse_text("[link a]\nroutes = default via 10.0.1.1 metric 5, default via fd00::1, fd00:2::/64\n"
                        ).links["a"].routes
    assert routes == (("0.0.0.0/0", "10.0.1.1", 5), ("::/0", "fd00::1", None), ("fd00:2::/64", None, None))


def test_routes_come_after_the_link_is_up_and_return_after_an_ipoib_mode_switch(tmp_path):
    ib0 = LinkObs(name="ib0", index=9, kind="ipoib", arptype=32, mtu=2044, admin_up=True, ipoib_mode="datagram",
                  routes=[RouteObs("10.0.2.0/24", "10.0.1.2", 0)])
    nl = machine(ib0)
    cfg = parse_text("[ipoib ib0]\nmode = connected\nmtu = 65520\naddress = 10.0.1.1/24\n"
                     "routes = 10.0.2.0/24 via 10.0.1.2\n")
    plan = make_plan(cfg, observe(nl, FakeRoot(tmp_path, nl)))
    kinds = [a.kind for a in plan.actions]
    assert kinds == ["link.down", "ipoib.mode", "link.mtu", "addr.add", "link.up", "route.add"]
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok and result.not_converged == [], result.to_json()
    assert converge(cfg, nl, FakeRoot(tmp_path, nl)).writes == 0
