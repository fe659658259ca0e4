# SPDX-License-Identifier: GPL-2.0-or-later
"""iperf3 results: its JSON (`-J`), what bench runs, and its text, as users
paste it or a bundle holds it. Pure.

Neither parser returns a result with every figure empty as if it had read
one: a run without totals is a result with `error` set (JSON) or a
ValueError (text).
"""

from __future__ import annotations

import json
import re

from ib40d.core.records import dataclass, replace
from ib40d.core.redacted import known


@dataclass(frozen=True)
class IperfResult:
    sent_bps: float | None = None
    received_bps: float | None = None
    retransmits: int | None = None
    error: str | None = None
    num_streams: int | None = None
    duration_s: float | None = None
    version: str | None = None
    remote: str | None = None  # "host:port" the client talked to
    protocol: str | None = None  # "TCP" | "UDP"
    # UDP: the receiver's jitter and lost/total datagrams (as the receiver counted them)
    jitter_ms: float | None = None
    lost_datagrams: int | None = None
    total_datagrams: int | None = None

    @property
    def ok(self) -> bool:
        return self.error is None and self.received_bps is not None

    @property
    def sent_gbit_s(self) -> float | None:
        return None if self.sent_bps is None else self.sent_bps / 1e9

    @property
    def received_gbit_s(self) -> float | None:
        return None if self.received_bps is None else self.received_bps / 1e9


def parse_json(text: str) -> IperfResult:
    """A client's `iperf3 -J` document. An iperf3 error (peer refused, control
    socket closed...) is a result with `error` set, not an exception; text
    that is not an iperf3 JSON document raises ValueError."""
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise ValueError(f"not iperf3 JSON output: {e}") from None
    if not isinstance(doc, dict) or not ({"start", "end", "error"} & doc.keys()):
        raise ValueError("not iperf3 JSON output: no start/end/error")
    start = doc.get("start") or {}
    end = doc.get("end") or {}
    connecting = start.get("connecting_to") or {}
    remote = f"{connecting['host']}:{connecting['port']}" if "host" in connecting else None
    test = start.get("test_start") or {}
    sent = end.get("sum_sent") or {}
    received = end.get("sum_received") or {}
    udp = end.get("sum") or {} if test.get("protocol") == "UDP" else {}
    if udp and not sent:  # UDP before iperf 3.?: one "sum", the sender's rate with the receiver's loss
        sent = udp
    error = doc.get("error")
    result = IperfResult(
        sent_bps=sent.get("bits_per_second"),
        received_bps=received.get("bits_per_second"),
        retransmits=sent.get("retransmits"),
        error=str(error) if error else None,
        num_streams=test.get("num_streams"),
        duration_s=sent.get("seconds") or received.get("seconds") or None,
        version=start.get("version"),
        remote=remote,
        protocol=test.get("protocol"),
        jitter_ms=udp.get("jitter_ms"),
        lost_datagrams=udp.get("lost_packets"),
        total_datagrams=udp.get("packets"),
    )
    if result.error is None and not has_figures(result):
        return _no_totals(result, "its JSON has no end totals")
    return result


def has_figures(r: IperfResult) -> bool:
    return any(v is not None for v in (r.sent_bps, r.received_bps, r.retransmits, r.jitter_ms, r.lost_datagrams))


def _no_totals(r: IperfResult, why: str) -> IperfResult:
    return replace(r, error=f"iperf3 gave no result: {why} (the run did not finish, or they were cut)")


# ---------------------------------------------------------------- text

# Text varies by version: the rate column is headed "Bandwidth" in iperf3
# before 3.2 and "Bitrate" after; with -P N the totals are on [SUM] lines;
# UDP totals carry jitter and lost/total datagrams, and before 3.2 a single
# total line without "sender"/"receiver"; in text, byte units are powers of
# 1024 and bit rates powers of 1000.


@dataclass(frozen=True)
class IperfText(IperfResult):
    source: str = "text"
    header: str | None = None  # "Bandwidth" (old) or "Bitrate" (new); None: pasted without it


# "[ ID] Interval           Transfer     Bitrate         Retr  Cwnd"
_HEADER_RE = re.compile(r"^\[ ID\](?:\[Role\])?\s+Interval\s+Transfer\s+(Bandwidth|Bitrate)\b")
# "[  5]   0.00-10.00  sec  10.9 GBytes  9.40 Gbits/sec    0             sender"
# "[SUM]   0.00-10.04  sec  26.0 GBytes  22.2 Gbits/sec                  receiver"
# "[  4]   0.00-10.00  sec  1.19 MBytes   998 Kbits/sec  0.026 ms  0/152 (0%)"  (UDP)
_LINE_RE = re.compile(
    r"^\[\s*(?P<id>\d+|SUM)\](?:\[[A-Z-]+\])?\s+(?P<t0>[\d.]+)-\s*(?P<t1>[\d.]+)\s+sec\s+"
    r"(?P<xfer>[\d.]+)\s+(?P<xunit>[KMGT]?Bytes)\s+"
    r"(?P<rate>[\d.]+)\s+(?P<runit>[KMGT]?bits)/sec"
    r"(?:\s+(?P<jitter>[\d.]+)\s+ms\s+(?P<lost>-?\d+)/(?P<total>\d+)\s+\([^)]*\))?"
    r"(?:\s+(?P<retr>\d+))?(?:\s+[\d.]+\s+[KMGT]?Bytes)?"
    r"\s*(?P<role>sender|receiver)?\s*$")
_SEPARATOR_RE = re.compile(r"^(?:- ){5,}-?\s*$")
_CONNECTED_RE = re.compile(r"^\[\s*(\d+)\]\s+local\s+\S+\s+port\s+\d+\s+connected\s+to\s+(\S+)\s+port\s+(\d+)")
_ERROR_RE = re.compile(r"^iperf3:\s*error\s*-\s*(.+)$")
_BIT_SCALE = {"bits": 1, "Kbits": 1e3, "Mbits": 1e6, "Gbits": 1e9, "Tbits": 1e12}


def looks_like(text: str) -> str | None:
    """"json" or "text" when this looks like iperf3 output, else None."""
    stripped = text.lstrip()
    if stripped.startswith("{") and '"start"' in stripped:
        return "json"
    for line in text.splitlines():
        m = _LINE_RE.match(line.strip())
        if _HEADER_RE.match(line) or _ERROR_RE.match(line.strip()) or (m and m.group("role")):
            return "text"
    return None


def parse_text(text: str) -> IperfText:
    """A client's (or server's) text output. The final lines give the
    totals: the [SUM] pair with -P > 1, the single stream's pair otherwise;
    for UDP from iperf3 before 3.2, the one total line after the last
    separator. The table's header may have been left out of a paste.
    Raises ValueError when no total is there to read."""
    header = None
    streams: set[str] = set()
    remote = None
    finals: dict[tuple[str, str], re.Match] = {}
    after_separator = False
    for raw in text.splitlines():
        line = raw.strip()
        err = _ERROR_RE.match(line)
        if err:
            return IperfText(error=err.group(1).strip())
        if _SEPARATOR_RE.match(line):
            after_separator = True
            continue
        m = _HEADER_RE.match(line)
        if m:
            header = header or m.group(1)
            continue
        m = _CONNECTED_RE.match(line)
        if m:
            streams.add(m.group(1))
            host = known(m.group(2))
            remote = f"{host}:{m.group(3)}" if host else None
            continue
        m = _LINE_RE.match(line)
        if m and (m.group("role") or (after_separator and m.group("jitter"))):
            # An old UDP total has no role: the client's rate, the server's loss.
            finals[(m.group("id"), m.group("role") or "sender")] = m
    key = "SUM" if ("SUM", "sender") in finals or ("SUM", "receiver") in finals else None
    if key is None:
        ids = sorted({i for i, _ in finals})
        if len(ids) > 1:
            raise ValueError(f"iperf3 totals of streams {', '.join(ids)} without their [SUM] lines: "
                             "cannot tell the total")
        key = ids[0] if ids else None
    if key is None:
        what = "no iperf3 table" if header is None else "an iperf3 table without its totals"
        raise ValueError(f"not a finished iperf3 run: {what} (the 'sender'/'receiver' lines)")

    def rate(role: str) -> float | None:
        m = finals.get((key, role))
        return float(m.group("rate")) * _BIT_SCALE[m.group("runit")] if m else None

    sender, receiver = finals.get((key, "sender")), finals.get((key, "receiver"))
    udp = next((m for m in (receiver, sender) if m and m.group("jitter")), None)
    timed = sender or receiver
    return IperfText(
        sent_bps=rate("sender"),
        received_bps=rate("receiver"),
        retransmits=int(sender.group("retr")) if sender and sender.group("retr") else None,
        num_streams=len(streams) or None,
        duration_s=float(timed.group("t1")) - float(timed.group("t0")),
        remote=remote,
        header=header,
        protocol="UDP" if udp else ("TCP" if sender and sender.group("retr") else None),
        jitter_ms=float(udp.group("jitter")) if udp else None,
        lost_datagrams=int(udp.group("lost")) if udp else None,
        total_datagrams=int(udp.group("total")) if udp else None,
    )


def parse_any(text: str) -> IperfResult:
    """JSON or text, whichever this is."""
    if looks_like(text) == "json":
        return parse_json(text)
    return parse_text(text)
