# SPDX-License-Identifier: GPL-2.0-or-later
"""Scenario 2, traffic over bond0: ping both ways, iperf3 -P 4 from A to B.
Throughput is printed, not judged (software emulation)."""
import pytest

from ib40d.core import iperf
from lab import scenario

pytestmark = pytest.mark.lab


def test_ping_both_ways(ib40_lab, figures):
    for src, dst in ((ib40_lab.a, ib40_lab.b), (ib40_lab.b, ib40_lab.a)):
        loss = scenario.ping(src, dst.address, seconds=3, interval_ms=50)
        figures("traffic", "ping %s -> %s: %s" % (src.hostname, dst.hostname, loss))
        assert loss.received > 0 and loss.lost <= 1, str(loss)


def test_iperf3_four_streams_a_to_b(ib40_lab, figures):
    a, b = ib40_lab.a, ib40_lab.b
    b.run("iperf3 -s -D -1 -B %s --logfile /tmp/iperf3-server.log" % b.address)
    res = a.run("iperf3 -J -c %s -P 4 -t 8" % b.address, timeout=90, check=False)
    result = iperf.parse_json(res.out)
    assert result.ok, (result.error, res.err)
    assert result.num_streams == 4
    counts = {s["name"]: s for s in scenario.bond_state(a)["slaves"]}
    tx = {n: int(a.run("cat /sys/class/net/%s/statistics/tx_packets" % n).out) for n in counts}
    figures("traffic", "iperf3 -P 4 A->B: %.2f Gbit/s received, %s retransmits; A tx packets %s"
            % (result.received_gbit_s, result.retransmits, tx))
    # balance-rr sends over both slaves
    assert all(v > 1000 for v in tx.values()), tx
