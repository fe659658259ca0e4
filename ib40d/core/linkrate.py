# SPDX-License-Identifier: GPL-2.0-or-later
"""Each port's negotiated rate against what the card and port type can do,
with the likely cause and its fix. Pure.

Ethernet: the kernel's speed (/sys/class/net/X/speed, Mb/s) against the
port's own supported link modes where `ethtool` is at hand (the live
machine), else the board's fastest port (the PSID table, cards.PSIDS) or,
for the ConnectX-3 family ib40 is written for, the family's 40 Gb/s QSFP
port. InfiniBand: the
sysfs rate text "56 Gb/sec (4X FDR)" (drivers/infiniband/core/sysfs.c),
its width and speed name against the card's fastest IB speed, and
phys_state for ports with no link. Nothing here is judged from a rate the
kernel shows only as a placeholder (a port that is not ACTIVE).
"""

from __future__ import annotations

import re

from ib40d.core.records import dataclass
from ib40d.core.cards import IB_4X_GBIT, IB_SPEED_ORDER, MLX4, CardIdentity, CardNote

_IB_RATE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*Gb/sec\s*\((\d+)X\s+([A-Z0-9]+)\)")


def parse_ib_rate(text: str | None) -> tuple[float, int, str] | None:
    """"56 Gb/sec (4X FDR)" -> (56.0, 4, "FDR"); None for other texts."""
    m = _IB_RATE_RE.match(text or "")
    return (float(m.group(1)), int(m.group(2)), m.group(3)) if m else None


def ib_gbit(width: int, speed: str) -> float | None:
    """Rate of a width x speed link as the kernel names it (4X FDR: 56, 1X FDR: 14)."""
    four = IB_4X_GBIT.get(speed)
    return None if four is None else four * width / 4


def ib_down_cause(phys_state: str | None) -> tuple[str, str]:
    """(likely cause, fix) for an IB port without a usable link."""
    if phys_state == "Polling":
        return ("Polling: the port sees no partner: no cable, or the far end is down or not in IB mode",
                "plug in an IB-rated QSFP cable; check that the far end is powered, its port up and InfiniBand "
                "(`ibstat` there)")
    if phys_state == "Disabled":
        return ("Disabled: the port was switched off (by ibportstate, a subnet manager or a switch)",
                "enable it: `ibportstate -D 0 <port> enable` here, or on the switch port; check the far end "
                "did not disable the link for errors")
    if phys_state == "LinkUp":
        return ("LinkUp, but the logical port is not up",
                "a subnet manager must bring it to ACTIVE: see the subnet manager finding")
    return (f"{phys_state or 'physical state unknown'}: no link",
            "check the cable, and that the far end's port is in IB mode and up")


@dataclass(eq=False)
class PortRate:
    """One port of a card, for status and doctor's JSON."""
    port: str  # "eth40a" or "mlx4_0/1"
    layer: str  # "ethernet" | "infiniband"
    rate_gbit: float | None
    width: str | None  # IB: "4X"
    can_gbit: float | None  # what the card and port type can do
    can_known: bool  # can_gbit is the board's own (known PSID), not its family's
    note: CardNote | None = None

    def as_dict(self) -> dict:
        return {"port": self.port, "layer": self.layer, "rate_gbit": self.rate_gbit, "width": self.width,
                "can_gbit": self.can_gbit, "can_known": self.can_known,
                "finding": None if self.note is None else self.note.code,
                "message": None if self.note is None else self.note.message}


def _gb(x: float) -> str:
    return f"{x:g} Gb/s"


_LINK_MODE_RE = re.compile(r"\b(\d+)base[A-Za-z0-9_]*/Full\b")
_ETHTOOL_LISTS = {"Supported link modes": "supported", "Link partner advertised link modes": "partner"}


@dataclass(eq=False)
class LinkModes:
    """`ethtool NAME`'s link mode lists, as speeds in Mb/s (empty: not reported)."""
    supported: list[int]
    partner: list[int]


def parse_ethtool(text: str) -> LinkModes | None:
    """The supported and link partner link modes of `ethtool NAME`; None
    when the text has no "Supported link modes" line (not ethtool's)."""
    lists: dict[str, list[int]] = {}
    current = None
    for line in text.splitlines():
        head, sep, rest = line.partition(":")
        if sep and head.strip() in _ETHTOOL_LISTS:
            current = lists.setdefault(_ETHTOOL_LISTS[head.strip()], [])
        elif sep and head.strip():
            current = None  # another field; continuation lines have no colon
            continue
        else:
            rest = line
        if current is not None:
            current.extend(int(m.group(1)) for m in _LINK_MODE_RE.finditer(rest))
    if "supported" not in lists:
        return None
    return LinkModes(lists["supported"], lists.get("partner", []))


def eth_port_rate(ident: CardIdentity, name: str, speed_mbps: int | None, carrier: bool | None,
                  modes: LinkModes | None = None) -> PortRate | None:
    """An Ethernet port of the card; None without link (speed -1 or unknown).
    MODES: the port's own link modes (ethtool on the live machine): what it
    can do, better than any table."""
    if not carrier or not speed_mbps or speed_mbps <= 0:
        return None
    rate = speed_mbps / 1000
    if modes is not None and modes.supported:
        can, known = max(modes.supported) / 1000, True
    else:
        can, known = ident.eth_gbit()
        if can is not None and not known and ident.family != MLX4:
            can = None  # mlx5 boards range from 10 to 400 Gb/s: no guess without the PSID or ethtool
    note = None
    if can is not None and rate < can:
        where = f"{name} ({ident.name} at {ident.pci})"
        if modes is not None and modes.supported:
            board = "the port (ethtool's supported link modes)"
        elif known:
            board = ident.firmware.board
        else:
            board = f"a {ident.name} QSFP port (PSID unknown: if this is a 10G model, this is its full rate)"
        partner = max(modes.partner) / 1000 if modes is not None and modes.partner else None
        if partner is not None and partner <= rate:
            cause = f"the far end, which offers at most {_gb(partner)} (link partner advertised link modes)"
            fix = f"connect it to a port that does {_gb(can)}, or accept {_gb(rate)}"
        elif can >= 40 and rate == 10:
            cause = ("a 10G cable in a 40G port: an SFP+ cable through a QSFP-to-SFP+ adapter (QSA), a 40G-to-4x10G "
                     "breakout, or a far end (switch port) at 10G")
            fix = "use a 40G QSFP+ cable (DAC, or 40GBASE-SR4 optics) to a 40G port; `ethtool " + name + \
                  "` shows the link modes both ends advertise"
        elif rate <= 1:
            cause = "negotiated down to 1G: a 1G far end or transceiver, or a bad cable"
            fix = f"check the transceiver and the far end; `ethtool {name}` shows what both ends advertise"
        else:
            cause = "the cable, the transceiver or the far end cannot do more"
            fix = f"compare with `ethtool {name}` (advertised and partner link modes); use a cable rated {_gb(can)}"
        note = CardNote("problem" if known else "warning", "link-rate-low",
                        f"{where} runs at {_gb(rate)}, {board} can do {_gb(can)}: likely {cause}", fix)
    return PortRate(name, "ethernet", rate, None, can, known, note)


def ib_port_rate(ident: CardIdentity, port) -> PortRate:
    """An IB port (ibports.IBPort) of the card, ACTIVE or not."""
    label = f"{port.device}/{port.port}"
    parsed = parse_ib_rate(port.rate)
    best = ident.ib_speed()
    can = ib_gbit(4, best) if best else None
    if port.state != "ACTIVE" or parsed is None:
        return PortRate(label, "infiniband", None, None, can, ident.firmware is not None)
    rate, width, speed = parsed
    where = f"{port.device} port {port.port} ({ident.name} at {ident.pci})"
    note = None
    if width < 4:
        note = CardNote("warning", "ib-width-low",
                        f"{where} runs {width}X {speed} ({_gb(rate)}) instead of 4X: the link trained on "
                        f"{width} of its 4 lanes: likely a damaged cable or a dirty/loose connector",
                        "reseat both ends of the cable, then replace it if the width stays below 4X")
    elif best and speed in IB_SPEED_ORDER and best in IB_SPEED_ORDER \
            and IB_SPEED_ORDER.index(speed) < IB_SPEED_ORDER.index(best):
        note = CardNote("warning", "ib-speed-low",
                        f"{where} runs 4X {speed} ({_gb(rate)}), the card can do 4X {best} ({_gb(can)}): likely "
                        f"the cable's class (a cable rated below {best}) or a far end (switch or HCA) that is "
                        "slower",
                        f"use a cable rated for {best}; check the far end's rate with `ibstat` there")
    return PortRate(label, "infiniband", rate, f"{width}X", can, ident.firmware is not None, note)


def card_port_rates(ident: CardIdentity, eth_links, ib_ports,
                    link_modes: dict[str, LinkModes] | None = None) -> list[PortRate]:
    """ETH_LINKS: the card's Ethernet netdevs (model.LinkObs); IB_PORTS: its
    InfiniBand ports (ibports.IBPort; RoCE ports are judged as netdevs);
    LINK_MODES: ethtool's, by netdev name, where at hand."""
    out = []
    for link in eth_links:
        rate = eth_port_rate(ident, link.name, link.speed_mbps, link.carrier, (link_modes or {}).get(link.name))
        if rate is not None:
            out.append(rate)
    for port in ib_ports:
        if port.is_infiniband:
            out.append(ib_port_rate(ident, port))
    return out
