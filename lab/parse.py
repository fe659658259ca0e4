# SPDX-License-Identifier: GPL-2.0-or-later
"""Pure parsers for what the lab reads back from the guests: ping summaries
and the bonding driver's kernel messages. No I/O."""
import re
from dataclasses import dataclass

_PING_SUMMARY = re.compile(r"(\d+) packets transmitted, (\d+) (?:packets )?received")


@dataclass(frozen=True)
class PingLoss:
    sent: int
    received: int
    interval_ms: float

    @property
    def lost(self):
        return self.sent - self.received

    @property
    def lost_ms(self):
        """The outage the lost pings span: one interval per lost ping."""
        return self.lost * self.interval_ms

    @property
    def percent(self):
        return 100.0 * self.lost / self.sent if self.sent else 100.0

    def __str__(self):
        return "%d of %d pings lost (%.1f%%, ~%.0f ms at %.0f ms interval)" % (
            self.lost, self.sent, self.percent, self.lost_ms, self.interval_ms)


def parse_ping(text, interval_ms):
    """iputils ping's summary line -> PingLoss; ValueError without one."""
    m = _PING_SUMMARY.search(text)
    if not m:
        raise ValueError("no ping summary in: %r" % text[-300:])
    return PingLoss(int(m.group(1)), int(m.group(2)), interval_ms)


# bonding's miimon messages (drivers/net/bonding/bond_main.c, 6.1), e.g.
# [  61.123456] bond0: (slave eth40a): link status down for interface, disabling it in 200 ms
# [  61.323456] bond0: (slave eth40a): link status definitely down, disabling slave
# [  66.456789] bond0: (slave eth40a): link status up, enabling it in 200 ms
# [  66.656789] bond0: (slave eth40a): link status definitely up, 4294967295 Mbps full duplex
_BOND_EVENT = re.compile(
    r"^\[\s*(?P<t>\d+\.\d+)\]\s+(?P<bond>\S+): \(slave (?P<slave>[^)]+)\): (?P<msg>.*)$")
_EVENTS = (
    ("down_pending", re.compile(r"link status down for (?:idle )?interface, disabling it in (\d+) ms")),
    ("down", re.compile(r"link status definitely down")),
    ("up_pending", re.compile(r"link status up, enabling it in (\d+) ms")),
    ("up", re.compile(r"link status definitely up")),
    ("up_again", re.compile(r"link status up again after (\d+) ms")),
    ("enslaved", re.compile(r"Enslaving (?:.* )?as an? (?:active|backup) interface")),
    ("released", re.compile(r"Releasing (?:backup|active) interface")),
)


@dataclass(frozen=True)
class BondEvent:
    t: float
    bond: str
    slave: str
    kind: str
    ms: int = None


def parse_bond_events(dmesg_text):
    """dmesg lines -> [BondEvent], in order; other lines are skipped."""
    events = []
    for line in dmesg_text.splitlines():
        m = _BOND_EVENT.match(line.strip())
        if not m:
            continue
        for kind, rx in _EVENTS:
            e = rx.search(m.group("msg"))
            if e:
                ms = int(e.group(1)) if e.groups() else None
                events.append(BondEvent(float(m.group("t")), m.group("bond"), m.group("slave"), kind, ms))
                break
    return events


def delays(events, slave, since=0.0):
    """(downdelay_ms, updelay_ms) as the kernel applied them to slave after
    time `since`: from 'disabling it in' to 'definitely down', and from
    'enabling it in' to 'definitely up'. None where the pair is missing."""
    def span(start_kind, end_kind):
        start = None
        for e in events:
            if e.slave != slave or e.t < since:
                continue
            if e.kind == start_kind:
                start = e.t
            elif e.kind == end_kind and start is not None:
                return round((e.t - start) * 1000)
        return None
    return span("down_pending", "down"), span("up_pending", "up")
