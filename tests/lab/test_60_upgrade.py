# SPDX-License-Identifier: GPL-2.0-or-later
"""Scenario 7, first half: installing the same .deb again (an upgrade to
the same version) does not flap the links."""
import pytest

from lab import scenario
from lab.scenario import churn, snapshot, watch_while

pytestmark = pytest.mark.lab


def test_reinstall_does_not_flap_links(ib40_lab, figures):
    a = ib40_lab.a
    before = snapshot(a)
    out = {}

    def reinstall():
        out["apt"] = a.run("cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y --reinstall ./ib40.deb 2>&1",
                           timeout=300).out
    lines = watch_while(a, reinstall, seconds=60)
    after = snapshot(a)
    figures("upgrade", "A: apt install --reinstall ./ib40.deb; ip monitor: %d lines, %d flaps; bond0 %s"
            % (len(lines.splitlines()), len(churn(lines)), after["addresses"]))
    assert churn(lines) == [], "\n".join(churn(lines))
    assert before == after
    assert scenario.bond_complete(a) is True
