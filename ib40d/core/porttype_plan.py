# SPDX-License-Identifier: GPL-2.0-or-later
"""Port types of the card (`[card] port1/port2 = ib | eth | auto`): the
pure half. What the card runs and boots with, as data (PortTypeState), the
actions that change it, and what status says of it. porttype_system.py reads
the card and runs the actions; porttype.py is the command.

Two places hold a ConnectX-3 port's type:
- the firmware's "Next Boot" value (LINK_TYPE_Pn: IB(1), ETH(2), VPI(3)),
  read and set with `mstconfig` (mstflint); it takes effect at the next boot;
- the mlx4 driver's running type, /sys/bus/pci/devices/<bdf>/mlx4_portN
  ("ib", "eth", "auto (eth)"), which accepts "ib\\n", "eth\\n" or "auto\\n"
  and switches at once (mlx4 main.c set_port_type).

ib40 sets the firmware (persistent) and, where mlx4 allows it, switches now
too, so no reboot is needed. A switch unregisters and re-registers every
netdev of the card: the caller re-applies links as on hotplug. mlx4 refuses
port 1 Ethernet while port 2 is InfiniBand, so the ports are changed in an
order that never passes through that pair (port 2 first when going to
Ethernet).

When mstconfig is missing or refuses the card (mstflint 4.26+ dropped
ConnectX-3: "-E- Unsupported device"), the fallback for persistence is the
mlx4_core module option port_type_array in /etc/modprobe.d/ib40-mlx4.conf;
the runtime switch still works. The user is told which was used.
"""

from __future__ import annotations


from ib40d.core.records import asdict, dataclass, field
from ib40d.core.actions import Action, Change
from ib40d.core.errors import UserError
from ib40d.core.model import CARD_PORTS as PORTS, MODPROBE_CONF, Card
from ib40d.core.mstconfig import PORT_TYPE_TO_LINK_TYPE

STATE_FILE = "/run/ib40/porttype.json"
# mlx4_core port_type_array: 1 = IB, 2 = Ethernet, 0 = driver default (the
# firmware's suggestion, with link sensing where the card allows it).
PORT_TYPE_ARRAY = {"ib": 1, "eth": 2, "auto": 0, None: 0}
IB_MODULES = ("ib_ipoib", "ib_umad")
LINK_LAYER_TYPES = {"InfiniBand": "ib", "Ethernet": "eth"}


def select_card(card_cfg, cards: list[Card]) -> Card:
    """The card a card section means: its pci, or the only one present."""
    if card_cfg is not None and card_cfg.pci:
        for c in cards:
            if c.pci == card_cfg.pci:
                return c
        present = ", ".join(c.describe() for c in cards) or "none"
        said = f"[card] pci = {card_cfg.pci}" if card_cfg.section == "card" else card_cfg.label
        raise UserError(f"{said}: no Mellanox card there (present: {present})")
    if not cards:
        raise UserError("no Mellanox ConnectX card found under /sys/bus/pci/devices (vendor 0x15b3)")
    if len(cards) > 1:
        listing = ", ".join(c.describe() for c in cards)
        raise UserError(f"{len(cards)} ConnectX cards are present: set [card] pci = one of {listing}")
    return cards[0]


def boot_sets_port_types(state: "PortTypeState") -> bool:
    """Whether `ib40d porttype` (ib40-porttype.service) sets this card's
    port types. Not on mlx5: it has no mlx4_portN and no port_type_array,
    its types change only in firmware (check refuses a [card] that asks
    otherwise than it runs), so at boot it needs only sriov_numvfs again."""
    return state.driver != "mlx5_core"


def has_port_types(card_cfg) -> bool:
    return card_cfg is not None and (card_cfg.port1 is not None or card_cfg.port2 is not None)


def card_states(doc) -> dict[str, dict]:
    """{pci: state} from /run/ib40/porttype.json: {"cards": {pci: state}},
    or one card's state at the top, as ib40 wrote it before several cards."""
    if not isinstance(doc, dict):
        return {}
    if isinstance(doc.get("cards"), dict):
        return {pci: st for pci, st in doc["cards"].items() if isinstance(st, dict)}
    return {doc["pci"]: doc} if isinstance(doc.get("pci"), str) else {}


# ---------------------------------------------------------------- parsing


def parse_mlx4_port(text: str | None) -> tuple[str | None, bool]:
    """"eth" -> ("eth", False); "auto (ib)" -> ("ib", True);
    "auto (not detected)" -> (None, True)."""
    if not text:
        return None, False
    text = text.strip()
    auto = text.startswith("auto")
    if auto:
        inner = text[text.find("(") + 1:text.rfind(")")] if "(" in text else ""
        return (inner if inner in ("ib", "eth") else None), True
    return (text if text in ("ib", "eth") else None), False


def parse_modprobe_conf(text: str | None) -> dict[int, int] | None:
    """port_type_array from an `options mlx4_core ...` line, as {port: value}."""
    if not text:
        return None
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if len(words) >= 3 and words[0] == "options" and words[1] == "mlx4_core":
            for w in words[2:]:
                if w.startswith("port_type_array="):
                    values = w.split("=", 1)[1].split(",")
                    try:
                        return {i + 1: int(v) for i, v in enumerate(values)}
                    except ValueError:
                        return None
    return None


def modprobe_conf_text(want: dict[int, str | None]) -> str:
    values = ",".join(str(PORT_TYPE_ARRAY[want.get(p)]) for p in PORTS)
    return ("# Written by `ib40d porttype` from [card] in /etc/ib40.conf because mstconfig could not\n"
            "# set the card's firmware. mlx4_core reads it when it loads; it applies to every mlx4 card.\n"
            "# port_type_array: 1 = InfiniBand, 2 = Ethernet, 0 = driver default.\n"
            f"options mlx4_core port_type_array={values}\n")


# ---------------------------------------------------------------- the card's port types


@dataclass
class PortTypeState:
    """The port types of one card: what runs, what boots, and how ib40 can
    change them."""
    pci: str
    model: str
    running: dict[int, str | None] = field(default_factory=dict)  # what mlx4 runs: "ib" | "eth" | None
    running_auto: dict[int, bool] = field(default_factory=dict)
    runtime_switch: bool = False  # mlx4_portN present: switching now is possible
    next_boot: dict[int, str] = field(default_factory=dict)  # mstconfig "Next Boot"
    mstconfig: str = "missing"  # "ok" | "missing" | "unsupported" | "open-failed" | "query-failed" | "error" ...
    mstconfig_message: str | None = None
    modprobe_conf: dict[int, int] | None = None
    modules: dict[str, bool] = field(default_factory=dict)
    # SR-IOV (sriov.py): the firmware's SRIOV_EN / NUM_OF_VFS (Next Boot),
    # sysfs's sriov_numvfs / sriov_totalvfs, ib40's num_vfs module line
    driver: str | None = None
    sriov_en: bool | None = None
    fw_num_vfs: int | None = None
    numvfs: int | None = None
    totalvfs: int | None = None
    vfs_modprobe: str | None = None

    def running_mode(self, port: int) -> str | None:
        return "auto" if self.running_auto.get(port) else self.running.get(port)

    def to_json(self) -> dict:
        d = asdict(self)
        for key in ("running", "running_auto", "next_boot", "modprobe_conf"):
            if d[key] is not None:
                d[key] = {str(k): v for k, v in d[key].items()}
        return d


# ---------------------------------------------------------------- planning


def safe_order(current: dict[int, str | None], want: dict[int, str | None], ports: list[int]) -> list[int]:
    """Order the ports so no step leaves port 1 on Ethernet with port 2 on
    InfiniBand, which mlx4 refuses (mlx4_check_port_params)."""
    for order in ((1, 2), (2, 1)):
        state = dict(current)
        ok = True
        for p in order:
            if p in ports:
                state[p] = want[p]
                if state.get(1) == "eth" and state.get(2) == "ib":
                    ok = False
                    break
        if ok:
            return [p for p in order if p in ports]
    return sorted(ports)


def wanted_types(card_cfg) -> dict[int, str | None]:
    return {1: card_cfg.port1, 2: card_cfg.port2}


def plan_port_types(card_cfg, state: PortTypeState) -> list[Action]:
    """What to change so the card runs, and boots with, card_cfg's types."""
    if card_cfg is None:
        return []
    want = wanted_types(card_cfg)
    pci = state.pci
    params_common = {"want": want}
    actions: list[Action] = []

    if state.mstconfig == "ok":
        differ = [p for p in PORTS if want[p] and p in state.next_boot and state.next_boot[p] != want[p]]
        for p in safe_order(state.next_boot, want, differ):
            value = PORT_TYPE_TO_LINK_TYPE[want[p]]
            argv = ["mstconfig", "-y", "-d", pci, "set", f"LINK_TYPE_P{p}={value}"]
            actions.append(Action("porttype.firmware", pci, (Change(f"port{p} next boot", state.next_boot[p], want[p]),),
                                  reason=f"mstconfig LINK_TYPE_P{p}={value}, takes effect at next boot",
                                  params=dict(params_common, port=p, argv=argv)))

    if state.runtime_switch:
        differ = [p for p in PORTS if want[p] and p in state.running and state.running_mode(p) != want[p]]
        for p in safe_order(state.running, want, differ):
            actions.append(Action("porttype.runtime", pci, (Change(f"port{p}", state.running_mode(p), want[p]),),
                                  reason=f"switch now through mlx4_port{p}; the card's links re-register and are re-applied",
                                  params=dict(params_common, port=p,
                                              path=f"/sys/bus/pci/devices/{pci}/mlx4_port{p}")))

    # Persistence without mstconfig; an existing file of ours is kept in step
    # either way, since mlx4_core applies it over the firmware at every load
    # (and never for an mlx5 card, which that option does not reach).
    if state.driver != "mlx5_core" and (state.mstconfig != "ok" or state.modprobe_conf is not None):
        new = {p: PORT_TYPE_ARRAY[want[p]] for p in PORTS}
        if state.modprobe_conf != new and any(want.values()):
            old = None if state.modprobe_conf is None else [state.modprobe_conf.get(p) for p in PORTS]
            why = state.mstconfig_message or "keeping the existing file in step"
            actions.append(Action("porttype.persist", pci, (Change("port_type_array", old, [new[p] for p in PORTS]),),
                                  reason=f"{why}; persistence through {MODPROBE_CONF}",
                                  params=dict(params_common, path=MODPROBE_CONF, content=modprobe_conf_text(want))))

    # A port left alone (None) keeps what it runs; an IB port needs the modules.
    uses_ib = any(want[p] == "ib" or (want[p] is None and state.running.get(p) == "ib") for p in PORTS)
    missing = [m for m in IB_MODULES if not state.modules.get(m)]
    if uses_ib and missing:
        actions.append(Action("porttype.modprobe", pci, (Change("modules", None, missing),),
                              reason="an InfiniBand port needs IPoIB (ib_ipoib) and opensm's MAD access (ib_umad)",
                              params=dict(params_common, modules=missing)))
    return actions


_MODULE_OPTIONS = {  # action kind: (its param holding the option, the option, what differs, the way out)
    "porttype.persist": ("content", "port_type_array", "port types",
                         "only their firmware (mstconfig) can keep each its own"),
    "sriov.modprobe": ("line", "num_vfs", "virtual functions", "give them the same vfs keys"),
}


def one_modprobe_file(actions: list[Action]) -> tuple[list[Action], list[str]]:
    """The module-option actions of several cards, made one per option:
    upstream mlx4_core's port_type_array and num_vfs are options for every
    mlx4 card, so cards that want different values cannot share them.
    Same value: one action; different: none, and a note saying why."""
    notes = []
    for kind, (param, option, what, way_out) in _MODULE_OPTIONS.items():
        mine = [a for a in actions if a.kind == kind]
        if len(mine) <= 1:
            continue
        if len({a.params[param] for a in mine}) == 1:
            actions = [a for a in actions if a.kind != kind or a is mine[0]]
            continue
        actions = [a for a in actions if a.kind != kind]
        notes.append(f"{MODPROBE_CONF} not written: mlx4_core's {option} applies to every mlx4 card, and cards "
                     f"{', '.join(a.target for a in mine)} want different {what}; {way_out}")
    return actions, notes


# ---------------------------------------------------------------- what status shows


def pending_reboot(state_json: dict) -> list[str]:
    """"port1 eth->ib" for each port whose next-boot type differs from what
    runs now, over the JSON kept in /run/ib40/porttype.json."""
    result = []
    running = state_json.get("running") or {}
    auto = state_json.get("running_auto") or {}
    next_boot = state_json.get("next_boot") or {}
    if not next_boot and state_json.get("modprobe_conf"):
        # No firmware value known: mlx4_core's module option decides at next load.
        by_value = {v: k for k, v in PORT_TYPE_ARRAY.items() if k in ("ib", "eth")}
        next_boot = {p: by_value[v] for p, v in state_json["modprobe_conf"].items() if v in by_value}
    for p in ("1", "2"):
        if p not in next_boot or p not in running:
            continue
        now = "auto" if auto.get(p) else running[p]
        if now != next_boot[p]:
            result.append(f"port{p} {now or 'unknown'}->{next_boot[p]}")
    return result


def status_lines_from(state: dict) -> list[str]:
    if not state:
        return []
    ports = []
    for p in ("1", "2"):
        now = state.get("running", {}).get(p)
        if now is None and p not in state.get("next_boot", {}):
            continue
        shown = f"auto ({now})" if state.get("running_auto", {}).get(p) else (now or "?")
        ports.append(f"port{p} {shown}")
    lines = [f"card {state.get('pci')} ({state.get('model')}): " + (", ".join(ports) or "no port types known")]
    if state["reboot_pending"]:
        lines.append(f"reboot pending: {', '.join(state['reboot_pending'])} at next boot")
    from ib40d.core.sriov import status_line as vfs_line  # sriov imports this module

    if vfs := vfs_line(state):
        lines.append(vfs)
    if state.get("mstconfig") != "ok" and state.get("mstconfig_message"):
        how = f"port types persist through {MODPROBE_CONF}" if state.get("modprobe_conf") else "no persistent setting"
        lines.append(f"{state['mstconfig_message']}; {how}")
    return lines
