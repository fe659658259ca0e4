# SPDX-License-Identifier: GPL-2.0-or-later
"""The lab's parsers against real guest output (tests/lab/data/): pure,
no VM needed."""
from pathlib import Path

import pytest

from lab.parse import delays, parse_bond_events, parse_ping

DATA = Path(__file__).resolve().parents[1] / "lab" / "data"


def verbatim(name):
    _, sep, body = (DATA / name).read_text().partition("# ---\n")
    assert sep
    return body


def test_bond_events_from_a_real_resilience_run():
    events = parse_bond_events(verbatim("dmesg-bond-resilience.txt"))
    kinds = [e.kind for e in events]
    assert kinds[:4] == ["enslaved", "enslaved", "up", "up"]
    assert kinds.count("down_pending") == kinds.count("down") == 5
    assert kinds.count("up_pending") == 5
    first_down = next(e for e in events if e.kind == "down_pending")
    assert (first_down.t, first_down.slave, first_down.ms) == (208.590357, "eth40a", 200)
    # 208.590357 -> 208.796813 and 213.683734 -> 213.891991
    assert delays(events, "eth40a", since=200.0) == (206, 208)
    # the eth40b pull at ~223.8 s, not the eth40a one before it
    assert delays(events, "eth40b", since=220.0) == (207, 208)
    assert delays(events, "eth40a", since=290.0) == (None, None)


def test_bond_events_skip_other_lines():
    assert parse_bond_events("[    1.0] virtio_net virtio2 eth40a: renamed from ens4\nnot dmesg\n") == []


def test_ping_summary_from_iputils():
    loss = parse_ping(verbatim("ping-quiet.txt"), 20)
    assert (loss.sent, loss.received, loss.lost, loss.lost_ms, loss.percent) == (94, 94, 0, 0, 0.0)
    assert str(loss) == "0 of 94 pings lost (0.0%, ~0 ms at 20 ms interval)"


def test_ping_without_summary_is_an_error():
    with pytest.raises(ValueError):
        parse_ping("ping: connect: Network is unreachable\n", 20)
