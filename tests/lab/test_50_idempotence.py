# SPDX-License-Identifier: GPL-2.0-or-later
"""Scenario 5, idempotence and restarts: on a converged machine, re-running
the units or `ib40d apply` changes nothing (no slave flap, no address
churn, watched with `ip monitor`); restarting the ib40 units in the middle
of a boot still ends with bond0 whole."""
import time

import pytest

from lab import scenario
from lab.scenario import churn, snapshot, watch_while

pytestmark = pytest.mark.lab

@pytest.mark.both_releases
def test_rerunning_units_and_apply_changes_nothing(ib40_lab, figures):
    a = ib40_lab.a
    before = snapshot(a)
    outputs = {}

    def rerun():
        outputs["apply"] = a.run("ib40d apply", timeout=120).out.strip()
        a.run("systemctl restart ib40-link@eth40a.service ib40-link@eth40b.service", timeout=120)
        a.run("systemctl restart ib40d.service", timeout=120)
        outputs["apply2"] = a.run("ib40d apply", timeout=120).out.strip()
    lines = watch_while(a, rerun, seconds=60)
    after = snapshot(a)
    figures("idempotent", "A: ib40d apply -> %r; units restarted; ip monitor saw %d event lines, "
            "%d flaps; failure counts %s -> %s"
            % (outputs["apply"].splitlines()[-1:], len(lines.splitlines()), len(churn(lines)),
               before["failures"], after["failures"]))
    assert churn(lines) == [], "\n".join(churn(lines))
    assert before == after


def test_apply_after_an_edit_is_kept(ib40_lab, figures):
    """README.Debian: after editing /etc/ib40.conf, `ib40d apply` applies it.
    The running daemon must not put the old values back afterwards."""
    a = ib40_lab.a
    edited = scenario.bond_conf(a).replace("updelay = 200", "updelay = 400")
    a.put("/etc/ib40.conf", edited)
    try:
        out = a.run("ib40d apply", timeout=120).out.strip()
        right_after = scenario.bond_state(a)["updelay"]
        # the daemon reacts to the bond's netlink events within seconds
        time.sleep(15)
        later = scenario.bond_state(a)["updelay"]
        figures("idempotent", "A: updelay 200 -> 400 in the file, ib40d apply: %r; kernel updelay right after %s, "
                "15 s later %s" % (out.splitlines()[-1:], right_after, later))
        assert right_after == 400
        assert later == 400, a.journal("-b -u ib40d --no-pager -o short-monotonic", lines=15)
    finally:
        a.put("/etc/ib40.conf", scenario.bond_conf(a))
        a.run("systemctl reload ib40d.service", timeout=120, check=False)
        scenario.wait_for(a, lambda v: scenario.bond_state(v)["updelay"] == 200 or "not yet", 30,
                          "updelay back to 200")


def test_restarting_units_mid_boot_leaves_bond_whole(ib40_lab, figures):
    b = ib40_lab.b
    b.reboot()
    # the agent answers early in boot, before ib40d has applied anything
    uptimes = []
    for _ in range(3):
        uptimes.append(b.run("cat /proc/uptime").out.split()[0])
        b.run("systemctl restart --no-block ib40d.service ib40-link@eth40a.service ib40-link@eth40b.service")
        time.sleep(3)
    state, failed = scenario.wait_running(b)
    secs = scenario.wait_for(b, scenario.bond_complete, 90, "bond0 whole after restarts")
    assert scenario.addresses(b, "bond0") == [(b.address, 16)]
    figures("idempotent", "B: ib40 units restarted at uptime %s s during boot; boot %s, failed [%s]; "
            "bond0 whole %.0f s later" % (", ".join(uptimes), state, failed, secs))
    assert failed == ""
    loss = scenario.ping(b, ib40_lab.a.address, 2, 20)
    assert loss.lost <= 1, str(loss)
