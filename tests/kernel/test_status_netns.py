# SPDX-License-Identifier: GPL-2.0-or-later
"""status, doctor and plan on the same real links (a network namespace)."""

import json

import pytest
from helpers import run_ib40d, run_ib40d_private_run


@pytest.mark.netns
def test_status_doctor_and_plan_show_the_same_differences(netns, tmp_path):
    """plan reads the kernel through netlink, status and doctor through
    sysfs and one address dump: on the same links they find the same
    differences, because they make the same comparison."""
    netns.ip("link", "add", "v1", "type", "veth", "peer", "name", "v2")
    conf = tmp_path / "ib40.conf"
    conf.write_text("[link v1]\nmtu = 9000\ntxqueuelen = 10000\naddress = 10.98.0.1/24\n"
                    "[link v2]\naddress = 10.98.0.2/24\n")
    run_ib40d_private_run("apply", "-c", str(conf), netns=netns.name, check_rc=0)
    status = json.loads(run_ib40d("status", "-c", str(conf), "--json", netns=netns.name, check_rc=0).stdout)
    assert [l["mismatches"] for l in status["links"]] == [[], []]

    netns.ip("link", "set", "v1", "mtu", "1500")
    netns.ip("address", "add", "10.98.5.5/24", "dev", "v1")
    netns.ip("address", "del", "10.98.0.2/24", "dev", "v2")
    netns.ip("link", "set", "v2", "down")
    plan = json.loads(run_ib40d("plan", "-c", str(conf), "--json", netns=netns.name, check_rc=1).stdout)
    assert [(a["kind"], a["target"]) for a in plan["actions"]] == [
        ("link.mtu", "v1"), ("addr.del", "v1"), ("addr.add", "v2"), ("link.up", "v2")]
    status = json.loads(run_ib40d("status", "-c", str(conf), "--json", netns=netns.name, check_rc=0).stdout)
    assert {l["name"]: l["mismatches"] for l in status["links"]} == {
        "v1": ["mtu 1500 (config 9000)", "address 10.98.5.5/24 not in the config"],
        "v2": ["address 10.98.0.2/24 missing", "admin down"]}
    doctor = json.loads(run_ib40d("doctor", "-c", str(conf), "--json", netns=netns.name).stdout)
    links = {(f["code"], f["message"].split()[0]) for f in doctor["findings"] if f["code"].startswith(("mtu", "link"))}
    assert links == {("mtu-mismatch", "v1"), ("link-admin-down", "v2")}
