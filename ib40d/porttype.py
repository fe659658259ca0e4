# SPDX-License-Identifier: GPL-2.0-or-later
"""Port types of the card (`[card] port1/port2 = ib | eth | auto`).

Two places hold a ConnectX-3 port's type:
- the firmware's "Next Boot" value (LINK_TYPE_Pn: IB(1), ETH(2), VPI(3)),
  read and set with `mstconfig` (mstflint); it takes effect at the next boot;
- the mlx4 driver's running type, /sys/bus/pci/devices/<bdf>/mlx4_portN
  ("ib", "eth", "auto (eth)"), which accepts "ib\\n", "eth\\n" or "auto\\n"
  and switches at once (mlx4 main.c set_port_type).

ib40 sets the firmware (persistent) and, where mlx4 allows it, switches now
too, so no reboot is needed. A switch unregisters and re-registers every
netdev of the card: the caller re-applies links as on hotplug
(ApplyResult.reapply_links). mlx4 refuses port 1 Ethernet while port 2 is
InfiniBand, so the ports are changed in an order that never passes through
that pair (port 2 first when going to Ethernet).

When mstconfig is missing or refuses the card (mstflint 4.26+ dropped
ConnectX-3: "-E- Unsupported device"), the fallback for persistence is the
mlx4_core module option port_type_array in /etc/modprobe.d/ib40-mlx4.conf;
the runtime switch still works. The user is told which was used.

What was observed is kept in /run/ib40/porttype.json so that `status` shows
"reboot pending: port1 eth->ib at next boot" without running mstconfig.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import asdict, dataclass, field

from ib40d import ibports, mstconfig, runner
from ib40d.actions import Action, Change
from ib40d.errors import UserError
from ib40d.sysroot import SysRoot

MELLANOX_VENDOR = 0x15B3
# PCI device ids of Mellanox physical functions (pci.ids), for naming cards.
CONNECTX_MODELS = {
    0x673C: "ConnectX-2", 0x6750: "ConnectX-2 EN", 0x1003: "ConnectX-3", 0x1007: "ConnectX-3 Pro",
    0x1013: "ConnectX-4", 0x1015: "ConnectX-4 Lx", 0x1017: "ConnectX-5", 0x1019: "ConnectX-5 Ex",
    0x101B: "ConnectX-6", 0x101D: "ConnectX-6 Dx", 0x101F: "ConnectX-6 Lx", 0x1021: "ConnectX-7",
}
STATE_FILE = "/run/ib40/porttype.json"
MODPROBE_CONF = "/etc/modprobe.d/ib40-mlx4.conf"
# mlx4_core port_type_array: 1 = IB, 2 = Ethernet, 0 = driver default (the
# firmware's suggestion, with link sensing where the card allows it).
PORT_TYPE_ARRAY = {"ib": 1, "eth": 2, "auto": 0, None: 0}
IB_MODULES = ("ib_ipoib", "ib_umad")
MSTCONFIG_QUERY_TIMEOUT = 20.0
MSTCONFIG_SET_TIMEOUT = 30.0
PORTS = (1, 2)
LINK_LAYER_TYPES = {"InfiniBand": "ib", "Ethernet": "eth"}


# ---------------------------------------------------------------- the card


@dataclass(frozen=True)
class Card:
    pci: str
    device_id: int | None
    model: str
    mlx4_ports: tuple[int, ...]  # ports with a mlx4_portN attribute

    def describe(self) -> str:
        return f"{self.pci} ({self.model})"


def find_cards(root: SysRoot) -> list[Card]:
    """Mellanox physical functions under /sys/bus/pci/devices (virtual
    functions, which have a `physfn` link, are not cards)."""
    cards = []
    for bdf in root.listdir("/sys/bus/pci/devices"):
        base = f"/sys/bus/pci/devices/{bdf}"
        if root.read_int(f"{base}/vendor") != MELLANOX_VENDOR or root.exists(f"{base}/physfn"):
            continue
        pci_class = root.read_int(f"{base}/class")
        if pci_class is not None and pci_class >> 16 != 0x02:  # network controllers only
            continue
        device_id = root.read_int(f"{base}/device")
        model = CONNECTX_MODELS.get(device_id, f"Mellanox device {device_id:#06x}" if device_id else "Mellanox")
        ports = tuple(p for p in PORTS if root.exists(f"{base}/mlx4_port{p}"))
        cards.append(Card(bdf, device_id, model, ports))
    return cards


def select_card(card_cfg, cards: list[Card]) -> Card:
    """The card [card] means: its pci, or the only one present."""
    if card_cfg is not None and card_cfg.pci:
        for c in cards:
            if c.pci == card_cfg.pci:
                return c
        present = ", ".join(c.describe() for c in cards) or "none"
        raise UserError(f"[card] pci = {card_cfg.pci}: no Mellanox card there (present: {present})")
    if not cards:
        raise UserError("no Mellanox ConnectX card found under /sys/bus/pci/devices (vendor 0x15b3)")
    if len(cards) > 1:
        listing = ", ".join(c.describe() for c in cards)
        raise UserError(f"{len(cards)} ConnectX cards are present: set [card] pci = one of {listing}")
    return cards[0]


# ---------------------------------------------------------------- observing


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


@dataclass
class Observed:
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

    def running_mode(self, port: int) -> str | None:
        return "auto" if self.running_auto.get(port) else self.running.get(port)

    def to_json(self) -> dict:
        d = asdict(self)
        for key in ("running", "running_auto", "next_boot", "modprobe_conf"):
            if d[key] is not None:
                d[key] = {str(k): v for k, v in d[key].items()}
        return d


def read_runtime(root: SysRoot, pci: str) -> tuple[dict, dict]:
    """What each port runs now: mlx4_portN, or without it (cards not driven
    by mlx4) the link layer of the card's RDMA ports."""
    running, auto = {}, {}
    for p in PORTS:
        text = root.read(f"/sys/bus/pci/devices/{pci}/mlx4_port{p}")
        if text is not None:
            running[p], auto[p] = parse_mlx4_port(text)
    if running:
        return running, auto
    for dev in root.listdir("/sys/class/infiniband"):
        if ibports.device_pci(root, dev) != pci:
            continue
        for name in root.listdir(f"/sys/class/infiniband/{dev}/ports"):
            if name.isdigit() and int(name) in PORTS:
                layer = root.read(f"/sys/class/infiniband/{dev}/ports/{name}/link_layer")
                running[int(name)] = LINK_LAYER_TYPES.get(layer)
                auto[int(name)] = False
    return running, auto


def query_mstconfig(pci: str) -> tuple[str, str | None, dict[int, str]]:
    """(status, message, next_boot) from `mstconfig -d <pci> query`."""
    try:
        done = runner.run(["mstconfig", "-d", pci, "query"], timeout=MSTCONFIG_QUERY_TIMEOUT)
    except runner.ToolMissing:
        return "missing", mstconfig.refusal_message("missing", "", pci), {}
    except UserError as e:  # timeout
        return "error", str(e), {}
    out = mstconfig.parse(done.stdout + done.stderr)
    refused = mstconfig.refusal(out, done.returncode)
    if refused:
        kind, text = refused
        return kind, mstconfig.refusal_message(kind, text, pci), {}
    next_boot = out.devices[0].link_types() if out.devices else {}
    if not next_boot:
        return "no-link-type", f"mstconfig -d {pci}: no LINK_TYPE_P1/P2 (not a VPI card?)", {}
    return "ok", None, next_boot


def observe(root: SysRoot, card: Card) -> Observed:
    running, auto = read_runtime(root, card.pci)
    status, message, next_boot = query_mstconfig(card.pci)
    return Observed(
        pci=card.pci, model=card.model, running=running, running_auto=auto,
        runtime_switch=bool(card.mlx4_ports), next_boot=next_boot, mstconfig=status,
        mstconfig_message=message, modprobe_conf=parse_modprobe_conf(root.read(MODPROBE_CONF)),
        modules={m: root.exists(f"/sys/module/{m}") for m in IB_MODULES},
    )


# ---------------------------------------------------------------- planning (pure)


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


def plan_port_types(card_cfg, observed: Observed) -> list[Action]:
    """Pure: what to change so the card runs, and boots with, card_cfg's types."""
    if card_cfg is None:
        return []
    want = wanted_types(card_cfg)
    pci = observed.pci
    params_common = {"want": want}
    actions: list[Action] = []

    if observed.mstconfig == "ok":
        differ = [p for p in PORTS if want[p] and p in observed.next_boot and observed.next_boot[p] != want[p]]
        for p in safe_order(observed.next_boot, want, differ):
            value = mstconfig.PORT_TYPE_TO_LINK_TYPE[want[p]]
            argv = ["mstconfig", "-y", "-d", pci, "set", f"LINK_TYPE_P{p}={value}"]
            actions.append(Action("porttype.firmware", pci, (Change(f"port{p} next boot", observed.next_boot[p], want[p]),),
                                  reason=f"mstconfig LINK_TYPE_P{p}={value}, takes effect at next boot",
                                  params=dict(params_common, port=p, argv=argv)))

    if observed.runtime_switch:
        differ = [p for p in PORTS if want[p] and p in observed.running and observed.running_mode(p) != want[p]]
        for p in safe_order(observed.running, want, differ):
            actions.append(Action("porttype.runtime", pci, (Change(f"port{p}", observed.running_mode(p), want[p]),),
                                  reason=f"switch now through mlx4_port{p}; the card's links re-register and are re-applied",
                                  params=dict(params_common, port=p,
                                              path=f"/sys/bus/pci/devices/{pci}/mlx4_port{p}")))

    # Persistence without mstconfig; an existing file of ours is kept in step
    # either way, since mlx4_core applies it over the firmware at every load.
    if observed.mstconfig != "ok" or observed.modprobe_conf is not None:
        new = {p: PORT_TYPE_ARRAY[want[p]] for p in PORTS}
        if observed.modprobe_conf != new and any(want.values()):
            old = None if observed.modprobe_conf is None else [observed.modprobe_conf.get(p) for p in PORTS]
            why = observed.mstconfig_message or "keeping the existing file in step"
            actions.append(Action("porttype.persist", pci, (Change("port_type_array", old, [new[p] for p in PORTS]),),
                                  reason=f"{why}; persistence through {MODPROBE_CONF}",
                                  params=dict(params_common, path=MODPROBE_CONF, content=modprobe_conf_text(want))))

    # A port left alone (None) keeps what it runs; an IB port needs the modules.
    uses_ib = any(want[p] == "ib" or (want[p] is None and observed.running.get(p) == "ib") for p in PORTS)
    missing = [m for m in IB_MODULES if not observed.modules.get(m)]
    if uses_ib and missing:
        actions.append(Action("porttype.modprobe", pci, (Change("modules", None, missing),),
                              reason="an InfiniBand port needs IPoIB (ib_ipoib) and opensm's MAD access (ib_umad)",
                              params=dict(params_common, modules=missing)))
    return actions


def pending_reboot(observed_json: dict) -> list[str]:
    """"port1 eth->ib" for each port whose next-boot type differs from what
    runs now. Pure, over the JSON kept in /run/ib40/porttype.json."""
    result = []
    running = observed_json.get("running") or {}
    auto = observed_json.get("running_auto") or {}
    next_boot = observed_json.get("next_boot") or {}
    if not next_boot and observed_json.get("modprobe_conf"):
        # No firmware value known: mlx4_core's module option decides at next load.
        by_value = {v: k for k, v in PORT_TYPE_ARRAY.items() if k in ("ib", "eth")}
        next_boot = {p: by_value[v] for p, v in observed_json["modprobe_conf"].items() if v in by_value}
    for p in ("1", "2"):
        if p not in next_boot or p not in running:
            continue
        now = "auto" if auto.get(p) else running[p]
        if now != next_boot[p]:
            result.append(f"port{p} {now or 'unknown'}->{next_boot[p]}")
    return result


# ---------------------------------------------------------------- applying


@dataclass
class ApplyResult:
    messages: list[str] = field(default_factory=list)
    reapply_links: bool = False  # a runtime switch re-registered the card's netdevs
    failed: bool = False


def apply_port_actions(actions: list[Action], root: SysRoot) -> ApplyResult:
    result = ApplyResult()
    firmware_failed = False
    want = None
    pci = None
    for a in actions:
        if not a.kind.startswith("porttype."):
            continue
        want, pci = a.params.get("want", want), a.target
        if a.kind == "porttype.firmware":
            ok, msg = _apply_firmware(a)
            firmware_failed |= not ok
            result.failed |= not ok
            result.messages.append(msg)
        elif a.kind == "porttype.runtime":
            port, value = a.params["port"], a.changes[0].new
            try:
                root.write_sysfs(a.params["path"], value + "\n")  # mlx4 compares with "eth\n"
            except OSError as e:
                result.failed = True
                result.messages.append(f"{pci}: mlx4 refused port{port} -> {value} now ({e.strerror or e}); "
                                       "it takes effect at next boot")
            else:
                result.reapply_links = True
                result.messages.append(f"{pci}: port{port} switched to {value} now (mlx4_port{port}); "
                                       "links are re-applied")
        elif a.kind == "porttype.persist":
            result.messages.append(_apply_persist(root, a.params["path"], a.params["content"]))
        elif a.kind == "porttype.modprobe":
            for module in a.params["modules"]:
                done = runner.run(["modprobe", module], timeout=30.0)
                if done.returncode != 0:
                    result.failed = True
                    detail = (done.stderr or done.stdout).strip().splitlines()
                    result.messages.append(f"modprobe {module} failed" + (f": {detail[-1]}" if detail else ""))
                else:
                    result.messages.append(f"loaded {module}")
    if firmware_failed and want and not any(a.kind == "porttype.persist" for a in actions):
        # mstconfig could query but not set: persist through the module option.
        result.messages.append(_apply_persist(root, MODPROBE_CONF, modprobe_conf_text(want)))
    if pci is not None:
        cards = {c.pci: c for c in find_cards(root)}
        if pci in cards:
            write_state(root, observe(root, cards[pci]), want, result.reapply_links)
    return result


def _apply_firmware(a: Action) -> tuple[bool, str]:
    pci, port = a.target, a.params["port"]
    try:
        done = runner.run(a.params["argv"], timeout=MSTCONFIG_SET_TIMEOUT)
    except UserError as e:
        return False, f"{pci}: port{port} next boot not set: {e}"
    out = mstconfig.parse(done.stdout + done.stderr)
    refused = mstconfig.refusal(out, done.returncode)
    if refused or not out.applied:
        kind, text = refused or ("error", "no \"Applying... Done!\"")
        return False, f"{pci}: port{port} next boot not set: {mstconfig.refusal_message(kind, text, pci)}"
    change = a.changes[0]
    return True, f"{pci}: port{port} set to {change.new} at next boot (mstconfig; was {change.old})"


def _apply_persist(root: SysRoot, path: str, content: str) -> str:
    options = [line for line in content.splitlines() if line.startswith("options")][0]
    if not root.write_atomic(path, content):
        return f"{path} already holds `{options}`"
    return (f"wrote {path} (`{options}`): used when mlx4_core next loads; "
            "if mlx4_core is in your initramfs, run update-initramfs -u")


def apply_actions(actions: list[Action], root: SysRoot) -> list[str]:
    """For `ib40d apply`: run the porttype.* actions, return the messages."""
    return apply_port_actions(actions, root).messages


def plan_actions(cfg, root: SysRoot) -> list[Action]:
    """For `ib40d plan`/`apply`: observe the card (runs mstconfig query) and plan."""
    if cfg.card is None or (cfg.card.port1 is None and cfg.card.port2 is None):
        return []
    card = select_card(cfg.card, find_cards(root))
    return plan_port_types(cfg.card, observe(root, card))


# ---------------------------------------------------------------- state for status


def write_state(root: SysRoot, observed: Observed, want: dict | None, reapply_links: bool) -> None:
    state = observed.to_json()
    state["want"] = {str(k): v for k, v in (want or {}).items()}
    state["reapply_links"] = reapply_links
    state["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    root.write_atomic(STATE_FILE, json.dumps(state, indent=1, sort_keys=True) + "\n")


def status_json(root: SysRoot) -> dict:
    """The last observed state, with the running types re-read from sysfs
    (cheap) so a reboot or a switch since then shows at once. {} when
    `porttype` never ran."""
    try:
        state = json.loads(root.read(STATE_FILE) or "")
    except ValueError:
        return {}
    running, auto = read_runtime(root, state.get("pci", ""))
    if running:
        state["running"] = {str(k): v for k, v in running.items()}
        state["running_auto"] = {str(k): v for k, v in auto.items()}
    state["reboot_pending"] = pending_reboot(state)
    return state


def status_lines(root: SysRoot) -> list[str]:
    return status_lines_from(status_json(root))


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
    if state.get("mstconfig") != "ok" and state.get("mstconfig_message"):
        how = f"port types persist through {MODPROBE_CONF}" if state.get("modprobe_conf") else "no persistent setting"
        lines.append(f"{state['mstconfig_message']}; {how}")
    return lines


# ---------------------------------------------------------------- subcommand


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="show what would change; change nothing")
    parser.add_argument("--json", action="store_true", help="print the observed state and the plan as JSON")


def run(args) -> int:
    from ib40d import cli

    cfg = cli.load_config(args)
    root = cli.sysroot(args)
    if cfg.card is None or (cfg.card.port1 is None and cfg.card.port2 is None):
        print("no port1/port2 in [card]: port types are left as they are")
        return 0
    card = select_card(cfg.card, find_cards(root))
    observed = observe(root, card)
    actions = plan_port_types(cfg.card, observed)
    if args.json:
        json.dump({"observed": observed.to_json(), "actions": [a.to_json() for a in actions]}, sys.stdout, indent=2)
        print()
    if args.dry_run:
        if observed.mstconfig != "ok":  # a real run says it with the status lines
            print(observed.mstconfig_message, file=sys.stderr)
        if not args.json:
            for a in actions:
                print(a.describe())
            if not actions:
                print(f"card {card.describe()}: port types already as configured")
        return 0
    if not actions:
        write_state(root, observed, wanted_types(cfg.card), False)
        if not args.json:
            print(f"card {card.describe()}: port types already as configured")
        for line in status_lines(root)[1:]:
            print(line)
        return 0
    result = apply_port_actions(actions, root)
    for m in result.messages:
        print(m)
    for line in status_lines(root)[1:]:
        print(line)
    return 1 if result.failed else 0
