# SPDX-License-Identifier: GPL-2.0-or-later
"""A card as status and doctor show it: its identity (core/cards.py), what
its mlx4 ports run, what ib40 last set them to, and each port's rate
against what the card can do (core/linkrate.py). Read through a SysRoot,
so a `--root` tree or bundle gives the same. Imported only where there is
a card: a machine without one does not pay for the tables.
"""

from __future__ import annotations

import json

from ib40d.core.records import dataclass, field
from ib40d.core.cards import CardIdentity
from ib40d.core.errors import UserError
from ib40d.core.linkrate import LinkModes, PortRate, card_port_rates, parse_ethtool
from ib40d.core.model import Card, LinkObs
from ib40d.core.porttype_plan import STATE_FILE, card_states, parse_mlx4_port
from ib40d.system import runner, sysfs
from ib40d.system.linkstate import ARPHRD_ETHER, read_link
from ib40d.system.sysroot import SysRoot


@dataclass(eq=False)
class CardView:
    """A card as status and doctor show it: who it is (cards.CardIdentity),
    what its mlx4 ports run, what ib40 last set them to, and each port's
    rate against what the card can do (linkrate)."""
    card: Card
    identity: CardIdentity
    running: dict[int, tuple[str | None, bool]] = field(default_factory=dict)  # mlx4_portN: (type, auto)
    tried: dict[int, str | None] | None = None  # porttype.json "want"; None: porttype never ran for it
    rates: list[PortRate] = field(default_factory=list)

    def as_dict(self) -> dict:
        return dict(self.identity.as_dict(), pci=self.card.pci, describe=self.identity.describe(),
                    ports=[r.as_dict() for r in self.rates])


def read_card_view(root: SysRoot, card: Card, links: dict[str, LinkObs] | None = None,
                   ib_ports=None) -> CardView:
    """LINKS and IB_PORTS: what the caller has read already (doctor reads
    every link); the card's own are read here when they are None."""
    ident = sysfs.read_identity(root, card)
    dev = f"/sys/bus/pci/devices/{card.pci}"
    running = {p: parse_mlx4_port(root.read(f"{dev}/mlx4_port{p}")) for p in card.mlx4_ports}
    tried = None
    try:
        state = card_states(json.loads(root.read(STATE_FILE) or "")).get(card.pci)
    except ValueError:
        state = None
    if state is not None and isinstance(state.get("want"), dict):
        tried = {int(k): v for k, v in state["want"].items() if k.isdigit()}
    if links is None:
        links = {n: l for n in card.netdevs if (l := read_link(root, n)) is not None}
    eth = [links[n] for n in card.netdevs if n in links and links[n].arptype == ARPHRD_ETHER]
    if ib_ports is None:
        ib_ports = sysfs.read_ports(root)
    mine = [p for p in ib_ports if p.device in card.ib_devices]
    modes = read_link_modes(root, [l.name for l in eth if l.carrier])
    return CardView(card, ident, running, tried, card_port_rates(ident, eth, mine, modes))


ETHTOOL_TIMEOUT = 5.0


def read_link_modes(root: SysRoot, names: list[str]) -> dict[str, LinkModes]:
    """`ethtool NAME` for each linked Ethernet port, on the live machine or
    as a bundle recorded it (another --root tree is not this machine's
    ports). Without ethtool, or when it fails for a port, that port has no
    entry: the tables decide."""
    from ib40d.system.bundle import is_bundle, run_tool

    if not root.is_live and not is_bundle(root):
        return {}
    out = {}
    for name in names:
        try:
            done = run_tool(root, ["ethtool", name], timeout=ETHTOOL_TIMEOUT)
        except runner.ToolMissing:
            return out
        except UserError:  # no answer in time
            continue
        modes = parse_ethtool(done.stdout) if done.returncode == 0 else None
        if modes is not None:
            out[name] = modes
    return out


def _hex16(guid: str | None) -> str | None:
    digits = (guid or "").lower().removeprefix("0x").replace(":", "")
    return digits.zfill(16) if digits and all(c in "0123456789abcdef" for c in digits) else None


def port_owners(root: SysRoot, cards: list[Card], links: dict) -> dict[str, tuple[Card, int | None, str]]:
    """{link name: (card, port or None, what matched)} for each configured
    [link] (by MAC) and [ipoib] (by port GUID) found on one of CARDS: the
    card's netdevs' addresses (an IPoIB address ends with its port GUID)
    and its RDMA ports' GUIDs."""
    found: dict[tuple[str, str], tuple[Card, int | None, str]] = {}
    ports_by_device: dict[str, list] = {}
    for port in sysfs.read_ports(root):
        ports_by_device.setdefault(port.device, []).append(port)
    for card in cards:
        for dev in card.ib_devices:
            for port in ports_by_device.get(dev, []):
                if _hex16(port.guid):
                    found[("guid", _hex16(port.guid))] = (card, port.port, f"GUID of {dev} port {port.port}")
        for name in card.netdevs:
            address = (root.read(f"/sys/class/net/{name}/address") or "").lower()
            dev_port = root.read_int(f"/sys/class/net/{name}/dev_port")
            port = None if dev_port is None else dev_port + 1  # mlx4_en: port - 1
            if len(address) == 17:
                found.setdefault(("mac", address), (card, port, f"MAC of {name}"))
            elif len(address) == 59:  # IPoIB: 4 bytes QPN, 8 subnet prefix, 8 port GUID
                found.setdefault(("guid", address[-23:].replace(":", "")), (card, port, f"GUID of {name}"))
    owners = {}
    for name, link in links.items():
        key = ("guid", _hex16(link.guid)) if link.kind == "ipoib" else ("mac", link.mac)
        if key[1] and key in found:
            owners[name] = found[key]
    return owners
