# SPDX-License-Identifier: GPL-2.0-or-later
"""InfiniBand ports, read from sysfs.

sysfs (drivers/infiniband/core/sysfs.c) under /sys/class/infiniband/<dev>/
ports/<n>/: state "4: ACTIVE", phys_state "5: LinkUp", rate
"40 Gb/sec (4X QDR)", sm_lid and lid "0x2", link_layer "InfiniBand" or
"Ethernet", gids/0 "fe80:0000:0000:0000:0002:c903:00a4:e721" (its low 64 bits
are the port GUID that opensm binds to, as `ibstat -p` prints it).

`ibstatus` prints those sysfs texts as they are; `ibstat` names the states
("Active", "Initializing") and prints the rate as a number ("40 (FDR10)").
The tests parse samples of both into IBPort (tests/support_parsers.py) and
build their fake sysfs trees from them.
"""

from __future__ import annotations

import re

from ib40d.core.records import asdict, dataclass


# ib_port_state (IBTA PortInfo:PortState) as the kernel prints it.
PORT_STATES = {0: "NOP", 1: "DOWN", 2: "INIT", 3: "ARMED", 4: "ACTIVE", 5: "ACTIVE_DEFER"}
PHYS_STATES = {0: "<unknown>", 1: "Sleep", 2: "Polling", 3: "Disabled", 4: "PortConfigurationTraining",
               5: "LinkUp", 6: "LinkErrorRecovery", 7: "Phy Test"}


@dataclass
class IBPort:
    device: str  # "mlx4_0"
    port: int
    guid: str | None = None  # "0x0002c90300a4e721"
    link_layer: str | None = None  # "InfiniBand" | "Ethernet" | None (old ibstat: not printed)
    state: str | None = None  # "ACTIVE", "INIT", "DOWN"...
    phys_state: str | None = None  # "LinkUp", "Polling", "Disabled"...
    rate: str | None = None  # as printed: "56 Gb/sec (4X FDR)" or "40 (FDR10)"
    rate_gbps: float | None = None
    sm_lid: int | None = None
    lid: int | None = None

    @property
    def is_infiniband(self) -> bool:
        # Before RoCE, ibstat printed no link layer: every port was IB.
        return self.link_layer in (None, "InfiniBand")

    @property
    def linked(self) -> bool:
        return self.phys_state == "LinkUp"

    def to_json(self) -> dict:
        return asdict(self)


def parse_state(text: str | None, names: dict[int, str] = PORT_STATES) -> str | None:
    """"4: ACTIVE" -> "ACTIVE" (the kernel's text); a bare name passes through."""
    if not text:
        return None
    m = re.match(r"^\s*(\d+)\s*:\s*(.*?)\s*$", text)
    if not m:
        return text.strip()
    return m.group(2) or names.get(int(m.group(1)))


def parse_rate_gbps(text: str | None) -> float | None:
    """"56 Gb/sec (4X FDR)", "40 (FDR10)", "2.5" -> 56.0, 40.0, 2.5."""
    if not text:
        return None
    m = re.match(r"^\s*(\d+(?:\.\d+)?)", text)
    return float(m.group(1)) if m else None


def parse_lid(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        return int(text.strip(), 0)
    except ValueError:
        return None


def guid_from_gid(gid: str | None) -> str | None:
    """"fe80:0000:0000:0000:0002:c903:00a4:e721" -> "0x0002c90300a4e721"."""
    if not gid:
        return None
    groups = gid.strip().split(":")
    if len(groups) != 8 or not all(re.fullmatch(r"[0-9a-fA-F]{1,4}", g) for g in groups):
        return None
    return "0x" + "".join(g.zfill(4) for g in groups[4:]).lower()
