# SPDX-License-Identifier: GPL-2.0-or-later
"""lab/mesh.py's files for the three nodes: valid, one /30 per cable, each
far cable routed through both neighbours (the second a backup)."""

from ib40d.core.config import parse_text
from lab import mesh


def test_each_node_routes_the_far_cable_through_both_neighbours():
    macs = {"a": ("00:02:c9:3e:ca:b1", "00:02:c9:3e:ca:b0"), "b": ("00:02:c9:3e:cb:b1", "00:02:c9:3e:cb:b0"),
            "c": ("00:02:c9:3e:cc:b1", "00:02:c9:3e:cc:b0")}
    addresses = {}
    routes = {}
    for node in "abc":
        cfg = parse_text(mesh.mesh_conf(node, macs[node]))
        addresses[node] = {str(l.addresses[0].interface) for l in cfg.links.values()}
        routes[node] = sorted(r for l in cfg.links.values() for r in l.routes)
    assert addresses == {"a": {"10.0.12.1/30", "10.0.13.1/30"}, "b": {"10.0.12.2/30", "10.0.23.1/30"},
                         "c": {"10.0.13.2/30", "10.0.23.2/30"}}
    assert routes == {"a": [("10.0.23.0/30", "10.0.12.2", None), ("10.0.23.0/30", "10.0.13.2", 100)],
                      "b": [("10.0.13.0/30", "10.0.12.1", None), ("10.0.13.0/30", "10.0.23.2", 100)],
                      "c": [("10.0.12.0/30", "10.0.13.1", None), ("10.0.12.0/30", "10.0.23.1", 100)]}
