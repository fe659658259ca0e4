# SPDX-License-Identifier: GPL-2.0-or-later
"""`ibstat` text, as a bundle records it or a user pastes it. Pure.

ib40 itself reads the ports from sysfs (system/sysfs.py); this reads what
people have in hand: every CA ibstat printed, each port as an IBPort, and
the lines where ibstat said it could not read a device (`ibpanic: ...`
stopped ibstat before rdma-core 54; later versions warn and go on), which
are errors, not a reason to drop the CAs around them. Fields the poster
redacted ("...", "xx:xx") are unknown. Text with no CA and no error raises
ValueError: an empty result would say "no InfiniBand ports", which it
does not know.
"""

from __future__ import annotations

import re

from ib40d.core.records import dataclass, field
from ib40d.core.ibports import IBPort, parse_lid, parse_rate_gbps
from ib40d.core.redacted import known

# The names ibstat gives the kernel's port states.
IBSTAT_STATES = {"Down": "DOWN", "Initializing": "INIT", "Armed": "ARMED", "Active": "ACTIVE"}
_CA_KEYS = {"CA type": "ca_type", "Number of ports": "num_ports", "Firmware version": "firmware",
            "Hardware version": "hardware", "Node GUID": "node_guid", "System image GUID": "system_image_guid"}
# infiniband-diags' ibpanic/ibwarn/iberror lines ("ibpanic: [8371] main: stat of
# IB device 'mlx5_an0' failed: ..."), and libibumad's own complaints
_ERROR_RE = re.compile(r"^(?:ibpanic|ibwarn|iberror|ibstat|libibumad|umad\w*):\s.*$")


@dataclass
class IbstatReport:
    cas: list[dict] = field(default_factory=list)  # {"ca", "ca_type", "firmware", "node_guid", ..., "ports"}
    errors: list[str] = field(default_factory=list)  # what ibstat said it could not read, verbatim


def normalize_guid(text: str | None) -> str | None:
    """"0002:c903:003f:02f1", "0x0002C903003F02F1" -> "0x0002c903003f02f1";
    None when redacted or not a GUID."""
    text = known(text)
    if text is None:
        return None
    digits = text.lower().removeprefix("0x").replace(":", "")
    return "0x" + digits.zfill(16) if re.fullmatch(r"[0-9a-f]{1,16}", digits) else None


def read_ibstat(text: str) -> IbstatReport:
    """`ibstat` -> IbstatReport. Indentation is tabs, spaces or none at all
    (a paste into Markdown loses it), so lines are told apart by their keys:
    "CA '...'" opens a CA, "Port N:" a port, and a key that belongs to a CA
    closes the port before it."""
    report = IbstatReport()
    ca = None
    port_fields: dict | None = None

    def close_port():
        nonlocal port_fields
        if ca is not None and port_fields is not None:
            ca["ports"].append(_port(ca["ca"], port_fields))
        port_fields = None

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = re.match(r"^CA '([^']+)'$", line)
        if m:
            close_port()
            ca = {"ca": m.group(1), "ports": []}
            report.cas.append(ca)
            continue
        if _ERROR_RE.match(line):
            close_port()
            ca = None  # what follows an error belongs to no CA until the next "CA '...'"
            report.errors.append(line)
            continue
        m = re.match(r"^Port (\d+):$", line)
        if m and ca is not None:
            close_port()
            port_fields = {"port": int(m.group(1))}
            continue
        key, sep, value = line.partition(":")
        if not sep or ca is None:
            continue
        key = key.strip()
        if key in _CA_KEYS:
            close_port()
            value = known(value)
            ca[_CA_KEYS[key]] = int(value) if key == "Number of ports" and value and value.isdigit() else value
        elif port_fields is not None:
            port_fields[key] = known(value)
    close_port()
    if not report.cas and not report.errors:
        raise ValueError("not ibstat output: no \"CA '...'\" line and no error line")
    return report


def _port(ca: str, f: dict) -> IBPort:
    state = f.get("State")
    return IBPort(
        device=ca,
        port=f["port"],
        guid=normalize_guid(f.get("Port GUID")),
        link_layer=f.get("Link layer"),
        state=IBSTAT_STATES.get(state, state.upper() if state else None),
        phys_state=f.get("Physical state"),
        rate=f.get("Rate"),
        rate_gbps=parse_rate_gbps(f.get("Rate")),
        sm_lid=parse_lid(f.get("SM lid")),
        lid=parse_lid(f.get("Base lid")),
    )
