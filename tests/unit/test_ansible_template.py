# SPDX-License-Identifier: GPL-2.0-or-later
"""The Ansible role's template, rendered as Ansible renders it (Jinja2,
trim_blocks), from host variables that use every kind of section: what comes
out is a config `ib40d check` accepts, with lists joined the way each key
takes them (routes and members by commas, the rest by spaces). The role
itself runs for real in tests/lab/test_56_ansible.py."""

import pytest

from helpers import REPO

from ib40d.core.config import parse_text

jinja2 = pytest.importorskip("jinja2")  # ansible-core's; `make deps` installs it

ROLE = REPO / "contrib/ansible/roles/ib40"
HOST = {
    "ib40_links": [{"name": "eth40a", "mac": "00:02:c9:3e:ca:b1", "txqueuelen": 10000},
                   {"name": "eth40b", "mac": "00:02:c9:3e:ca:b0"}],
    "ib40_bonds": [{"name": "bond0", "slaves": ["eth40a", "eth40b"], "mode": "802.3ad",
                    "xmit_hash_policy": "layer3+4", "address": ["10.30.0.2/16"]}],
    "ib40_vlans": [{"name": "bond0.30", "link": "bond0", "id": 30, "address": ["10.31.0.2/24"],
                    "routes": ["10.32.0.0/24 via 10.31.0.1", "10.33.0.0/24 via 10.31.0.1 metric 5"]}],
    "ib40_sysctl": {"tuning": True},
}


def render(host: dict) -> str:
    import yaml

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(ROLE / "templates")), trim_blocks=True)
    values = yaml.safe_load((ROLE / "defaults/main.yml").read_text())
    values.update(host, ansible_managed="Ansible managed")
    return env.get_template("ib40.conf.j2").render(**values)


def test_every_section_renders_to_a_config_check_accepts():
    text = render(HOST)
    cfg = parse_text(text)
    assert "routes = 10.32.0.0/24 via 10.31.0.1, 10.33.0.0/24 via 10.31.0.1 metric 5" in text
    assert "slaves = eth40a eth40b" in text and "tuning = yes" in text
    assert set(cfg.vlans) == {"bond0.30"} and cfg.bonds["bond0"].slaves == ("eth40a", "eth40b")


def test_several_cards_render_one_section_each_with_their_own_port_types():
    cfg = parse_text(render({"ib40_cards": [{"name": "0000:05:00.0", "port1": "ib", "port2": "ib"},
                                            {"name": "0000:81:00.0", "port1": "eth", "vfs": 4}]}))
    assert [(c.pci, c.port1, c.port2, c.vfs) for c in cfg.cards] == [("0000:05:00.0", "ib", "ib", None),
                                                                     ("0000:81:00.0", "eth", None, 4)]
