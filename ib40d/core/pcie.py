# SPDX-License-Identifier: GPL-2.0-or-later
"""PCIe link speed and width: what the slot gives the card, in Gbit/s.

Pure math and parsers, plus one small sysfs reader at the end.

The HOWTO reads `lspci -vv` LnkSta and looks the result up in a table; the
kernel shows the same link registers in sysfs (current_link_speed/_width,
max_link_speed/_width of the PCI device), which needs no root and no lspci,
so sysfs comes first and the lspci parser is the fallback (and reads what
users paste).

Usable bandwidth per lane = transfer rate x line-code efficiency: 8b/10b for
Gen1 and Gen2 (8 payload bits per 10 on the wire), 128b/130b from Gen3 on.
That is the raw data rate; TLP/DLLP framing takes a further few percent,
which is why a Gen3 x4 slot (31.5 Gbit/s) cannot feed a 40 Gbit/s port and
a Gen3 x8 slot (63 Gbit/s) can.
"""

from __future__ import annotations

import re

from ib40d.core.records import dataclass


# generation -> (GT/s, payload bits, line bits)
GENERATIONS: dict[int, tuple[float, int, int]] = {
    1: (2.5, 8, 10),
    2: (5.0, 8, 10),
    3: (8.0, 128, 130),
    4: (16.0, 128, 130),
    5: (32.0, 128, 130),
}
WIDTHS = (1, 2, 4, 8, 12, 16, 32)


def generation(speed_gt_s: float | None) -> int | None:
    for gen, (gt_s, _, _) in GENERATIONS.items():
        if speed_gt_s is not None and abs(gt_s - speed_gt_s) < 0.01:
            return gen
    return None


def lane_gbit_s(speed_gt_s: float) -> float | None:
    """Usable Gbit/s of one lane at this transfer rate, or None when the rate
    is not one of Gen1..Gen5 (then we do not know its encoding)."""
    gen = generation(speed_gt_s)
    if gen is None:
        return None
    gt_s, payload, line = GENERATIONS[gen]
    return gt_s * payload / line


def bandwidth_gbit_s(speed_gt_s: float | None, width: int | None) -> float | None:
    """Usable Gbit/s of a link, each direction: rate x lanes x encoding."""
    if speed_gt_s is None or not width:
        return None
    per_lane = lane_gbit_s(speed_gt_s)
    return None if per_lane is None else per_lane * width


def describe(speed_gt_s: float | None, width: int | None) -> str:
    """"Gen3 x8" (or "8.0 GT/s x8" for a rate we do not know by name)."""
    gen = generation(speed_gt_s)
    speed = f"Gen{gen}" if gen else (f"{speed_gt_s:g} GT/s" if speed_gt_s else "unknown speed")
    return f"{speed} x{width}" if width else f"{speed} unknown width"


@dataclass(frozen=True)
class PcieLink:
    speed_gt_s: float | None
    width: int | None
    max_speed_gt_s: float | None = None
    max_width: int | None = None
    source: str = "sysfs"  # "sysfs" | "lspci"

    @property
    def bandwidth_gbit_s(self) -> float | None:
        return bandwidth_gbit_s(self.speed_gt_s, self.width)

    @property
    def max_bandwidth_gbit_s(self) -> float | None:
        return bandwidth_gbit_s(self.max_speed_gt_s, self.max_width)

    @property
    def downgraded(self) -> bool:
        """True when the link trained below what the card can do: a slot with
        fewer electrical lanes, an older generation, or a bad contact."""
        slower = (self.speed_gt_s is not None and self.max_speed_gt_s is not None
                  and self.speed_gt_s < self.max_speed_gt_s)
        narrower = (self.width is not None and self.max_width is not None
                    and self.width < self.max_width)
        return slower or narrower

    def as_dict(self) -> dict:
        def rounded(x):
            return None if x is None else round(x, 2)
        return {
            "speed_gt_s": self.speed_gt_s,
            "width": self.width,
            "max_speed_gt_s": self.max_speed_gt_s,
            "max_width": self.max_width,
            "bandwidth_gbit_s": rounded(self.bandwidth_gbit_s),
            "max_bandwidth_gbit_s": rounded(self.max_bandwidth_gbit_s),
            "generation": generation(self.speed_gt_s),
            "max_generation": generation(self.max_speed_gt_s),
            "downgraded": self.downgraded,
            "source": self.source,
        }


# sysfs: "8.0 GT/s PCIe" (kernel 4.19+ PCIE_SPEED2STR), "8 GT/s" / "5 GT/s"
# (older kernels), "2.5 GT/s", "Unknown" / "Unknown speed" when the link is
# down or the rate is newer than the kernel knows.
_SPEED_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*GT/s", re.IGNORECASE)


def parse_sysfs_speed(text: str | None) -> float | None:
    m = _SPEED_RE.match(text or "")
    return float(m.group(1)) if m else None


def parse_sysfs_width(text: str | None) -> int | None:
    """current_link_width is a bare number; 0 when the link is down."""
    try:
        width = int((text or "").strip())
    except ValueError:
        return None
    return width or None


# lspci -vv: "LnkCap:\tPort #8, Speed 8GT/s, Width x8, ASPM ..." and
# "LnkSta:\tSpeed 8GT/s (ok), Width x4 (downgraded)"; old pciutils print
# "Speed unknown" for rates newer than themselves, and "2.5GT/s".
_LNK_RE = re.compile(r"^\s*(LnkCap|LnkSta):\s*(.*)$")
_LSPCI_SPEED_RE = re.compile(r"Speed\s+(?:(\d+(?:\.\d+)?)\s*GT/s|unknown)", re.IGNORECASE)
_LSPCI_WIDTH_RE = re.compile(r"Width\s+x(\d+)")


def parse_lspci(text: str) -> PcieLink | None:
    """LnkCap (what the card can do) and LnkSta (what it runs at) of the
    first PCIe device in `lspci -vv` output, or of a grep'd LnkSta line.
    None when neither line is there (e.g. "Capabilities: <access denied>"
    when lspci ran without root)."""
    found: dict[str, tuple[float | None, int | None]] = {}
    for line in text.splitlines():
        m = _LNK_RE.match(line)
        if not m or m.group(1) in found:
            continue
        body = m.group(2)
        speed_m = _LSPCI_SPEED_RE.search(body)
        width_m = _LSPCI_WIDTH_RE.search(body)
        speed = float(speed_m.group(1)) if speed_m and speed_m.group(1) else None
        width = int(width_m.group(1)) if width_m else None
        found[m.group(1)] = (speed, width)
    if "LnkSta" not in found:
        return None
    cap_speed, cap_width = found.get("LnkCap", (None, None))
    speed, width = found["LnkSta"]
    return PcieLink(speed, width, cap_speed, cap_width, source="lspci")
