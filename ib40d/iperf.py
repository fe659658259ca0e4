# SPDX-License-Identifier: GPL-2.0-or-later
"""iperf3 results: its JSON (`-J`, what bench runs) and its text (what users paste).

Pure. bench parses only JSON; the text recogniser exists so that a pasted
run (the HOWTO's own, or one from a bug report) can be read into the same
numbers. Text varies by version: the rate column is headed "Bandwidth" in
iperf3 before 3.2 and "Bitrate" after; with -P N the totals are on [SUM]
lines; in text, byte units are powers of 1024 and bit rates powers of 1000.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass


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
    source: str = "json"  # "json" | "text"
    header: str | None = None  # text only: "Bandwidth" (old) or "Bitrate" (new)

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
    error = doc.get("error")
    return IperfResult(
        sent_bps=sent.get("bits_per_second"),
        received_bps=received.get("bits_per_second"),
        retransmits=sent.get("retransmits"),
        error=str(error) if error else None,
        num_streams=test.get("num_streams"),
        duration_s=sent.get("seconds") or received.get("seconds") or None,
        version=start.get("version"),
        remote=remote,
    )


# "[ ID] Interval           Transfer     Bitrate         Retr  Cwnd"
_HEADER_RE = re.compile(r"^\[ ID\]\s+Interval\s+Transfer\s+(Bandwidth|Bitrate)\b")
# "[  5]   0.00-10.00  sec  10.9 GBytes  9.40 Gbits/sec    0             sender"
# "[SUM]   0.00-10.04  sec  26.0 GBytes  22.2 Gbits/sec                  receiver"
_LINE_RE = re.compile(
    r"^\[\s*(?P<id>\d+|SUM)\]\s+(?P<t0>[\d.]+)-\s*(?P<t1>[\d.]+)\s+sec\s+"
    r"(?P<xfer>[\d.]+)\s+(?P<xunit>[KMGT]?Bytes)\s+"
    r"(?P<rate>[\d.]+)\s+(?P<runit>[KMGT]?bits)/sec"
    r"(?:\s+(?P<retr>\d+))?(?:\s+[\d.]+\s+[KMGT]?Bytes)?"
    r"\s*(?P<role>sender|receiver)?\s*$")
_CONNECTED_RE = re.compile(r"^\[\s*(\d+)\]\s+local\s+\S+\s+port\s+\d+\s+connected\s+to\s+(\S+)\s+port\s+(\d+)")
_ERROR_RE = re.compile(r"^iperf3:\s*error\s*-\s*(.+)$")
_BIT_SCALE = {"bits": 1, "Kbits": 1e3, "Mbits": 1e6, "Gbits": 1e9, "Tbits": 1e12}


def looks_like(text: str) -> str | None:
    """"json" or "text" when this looks like iperf3 output, else None."""
    stripped = text.lstrip()
    if stripped.startswith("{") and '"start"' in stripped:
        return "json"
    if any(_HEADER_RE.match(line) or _ERROR_RE.match(line.strip()) for line in text.splitlines()):
        return "text"
    return None


def parse_text(text: str) -> IperfResult:
    """A client's text output as users paste it. The final sender/receiver
    lines give the totals: the [SUM] pair with -P > 1, the single stream's
    pair otherwise. Raises ValueError when there is no iperf3 table at all."""
    header = None
    streams: set[str] = set()
    remote = None
    finals: dict[tuple[str, str], re.Match] = {}
    for raw in text.splitlines():
        line = raw.rstrip()
        err = _ERROR_RE.match(line.strip())
        if err:
            return IperfResult(error=err.group(1).strip(), source="text")
        m = _HEADER_RE.match(line)
        if m:
            header = header or m.group(1)
            continue
        m = _CONNECTED_RE.match(line)
        if m:
            streams.add(m.group(1))
            remote = f"{m.group(2)}:{m.group(3)}"
            continue
        m = _LINE_RE.match(line)
        if m and m.group("role"):
            finals[(m.group("id"), m.group("role"))] = m
    if header is None:
        raise ValueError("not iperf3 output: no '[ ID] Interval Transfer Bandwidth/Bitrate' header")
    key = "SUM" if ("SUM", "sender") in finals or ("SUM", "receiver") in finals else None
    if key is None:
        ids = sorted({i for i, _ in finals})
        key = ids[0] if len(ids) == 1 else None

    def rate(role: str) -> float | None:
        m = finals.get((key, role))
        return float(m.group("rate")) * _BIT_SCALE[m.group("runit")] if m else None

    sender = finals.get((key, "sender"))
    return IperfResult(
        sent_bps=rate("sender"),
        received_bps=rate("receiver"),
        retransmits=int(sender.group("retr")) if sender and sender.group("retr") else None,
        num_streams=len(streams) or None,
        duration_s=float(sender.group("t1")) - float(sender.group("t0")) if sender else None,
        remote=remote,
        source="text",
        header=header,
    )


def parse_any(text: str) -> IperfResult:
    """JSON or text, whichever this is."""
    kind = looks_like(text)
    if kind == "json":
        return parse_json(text)
    return parse_text(text)
