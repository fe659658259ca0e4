# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d try` of a configuration that breaks bond0 on MachineB (another
mode, and its address moved off the lab's subnet), run over the lab's
control path (the guest agent, no terminal), never confirmed: MachineB puts
bond0 back by itself and MachineA's ping gets answers again. The figure is
the outage against the trial's timeout; ib40d.service runs throughout."""
import json
import re

import pytest

from lab import scenario

pytestmark = pytest.mark.lab

TIMEOUT_S = 10
WATCHED = ("bond0", "eth40a", "eth40b")
# What changes without anyone changing the link: carrier timing, and the
# failure counter of a slave, which a new enslave starts again at 0.
VOLATILE = ("operstate", "link_failure_count")


def _state(vm):
    """`ip -j -d link` and `ip -j addr` of bond0 and its slaves, less what is volatile."""
    def clean(value):
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items() if k not in VOLATILE}
        if isinstance(value, list):
            return [clean(v) for v in value]
        return value
    links = {l["ifname"]: clean(l) for l in json.loads(vm.run("ip -j -d link show").out) if l["ifname"] in WATCHED}
    addrs = {l["ifname"]: l["addr_info"] for l in json.loads(vm.run("ip -j addr show").out) if l["ifname"] in WATCHED}
    return links, addrs


def _outage(ping_out):
    """The longest gap between two answered pings (ping -D), in seconds."""
    times = [float(t) for t in re.findall(r"^\[(\d+\.\d+)\] \d+ bytes from", ping_out, re.M)]
    gaps = [b - a for a, b in zip(times, times[1:])]
    return max(gaps, default=None), len(times)


def test_an_unconfirmed_trial_that_breaks_bond0_is_rolled_back(ib40_lab, figures):
    a, b = ib40_lab.a, ib40_lab.b
    scenario.wait_for(b, scenario.bond_complete, 60, "bond0 whole before the trial")
    before = _state(b)
    broken = (scenario.bond_conf(b).replace("mode = balance-rr", "mode = active-backup")
              .replace("address = %s/16" % b.address, "address = 10.31.0.2/16")
              .replace("broadcast = 10.30.255.255", "broadcast = 10.31.255.255"))
    b.put("/root/broken.conf", broken)
    window = TIMEOUT_S + 30
    pinging = a.start_run("ping -D -n -i 0.2 -W 1 -w %d %s" % (window, b.address), timeout=window + 30)
    trial = b.run("sleep 3; ib40d try -c /root/broken.conf --timeout %d </dev/null 2>&1" % TIMEOUT_S,
                  timeout=TIMEOUT_S + 120, check=False)
    ping = a.finish_run(pinging, check=False)
    assert trial.rc == 1, trial.out
    assert "not confirmed within %d s; rolling back" % TIMEOUT_S in trial.out
    assert "restored: bond.set bond0: mode active-backup -> balance-rr" in trial.out, trial.out
    assert "rolled back; /etc/ib40.conf left as it was" in trial.out, trial.out
    scenario.wait_for(b, scenario.bond_complete, 30, "bond0 whole after the rollback")
    # (polled: IPv6 duplicate address detection of bond0's link-local address after its up)
    scenario.wait_for(b, lambda vm: _state(vm) == before or "differs: %r" % (_state(vm),), 20,
                      "bond0 and its slaves as before the trial")
    assert b.run("ib40d plan", check=False).rc == 0  # what /etc/ib40.conf says, still
    gap, answered = _outage(ping.out)
    # The longest silence lies between two answers: more than the timeout
    # means the trial did cut B off, and B answered again after it.
    assert gap is not None and gap > TIMEOUT_S, ping.out
    figures("try", "B cut off by an unconfirmed trial (--timeout %d): A's ping answered again after %.1f s "
            "(timeout + %.1f s; %d answers)" % (TIMEOUT_S, gap, gap - TIMEOUT_S, answered))
