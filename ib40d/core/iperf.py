# SPDX-License-Identifier: GPL-2.0-or-later
"""iperf3 results from its JSON (`-J`), what bench runs. Pure."""

from __future__ import annotations

import json
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
