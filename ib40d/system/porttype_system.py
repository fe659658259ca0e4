# SPDX-License-Identifier: GPL-2.0-or-later
"""Port types of the card: the system half. Reads what the card runs
(mlx4_portN, the RDMA ports' link layer) and boots with (`mstconfig query`),
runs the porttype.* actions (mstconfig set, mlx4_portN, modprobe.d,
modprobe), and keeps the result in /run/ib40/porttype.json so that `status`
shows "reboot pending: port1 eth->ib at next boot" without running mstconfig.
The planning is porttype_plan.py's.
"""

from __future__ import annotations

import json
import time

from ib40d.core.records import dataclass, field
from ib40d.core import mstconfig, sriov
from ib40d.system import runner, sysfs
from ib40d.core.actions import Action
from ib40d.core.errors import UserError
from ib40d.core.model import CARD_PORTS as PORTS, Card
from ib40d.system.observe import find_cards
from ib40d.core.porttype_plan import IB_MODULES, boot_sets_port_types, LINK_LAYER_TYPES, MODPROBE_CONF, STATE_FILE, PortTypeState, card_states, has_port_types, one_modprobe_file, modprobe_conf_text, parse_mlx4_port, parse_modprobe_conf, pending_reboot, plan_port_types, select_card, status_lines_from
from ib40d.system.sysroot import SysRoot

MSTCONFIG_QUERY_TIMEOUT = 20.0
MSTCONFIG_SET_TIMEOUT = 30.0


# ---------------------------------------------------------------- reading


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
        if sysfs.device_pci(root, dev) != pci:
            continue
        for name in root.listdir(f"/sys/class/infiniband/{dev}/ports"):
            if name.isdigit() and int(name) in PORTS:
                layer = root.read(f"/sys/class/infiniband/{dev}/ports/{name}/link_layer")
                running[int(name)] = LINK_LAYER_TYPES.get(layer)
                auto[int(name)] = False
    return running, auto


def query_mstconfig(pci: str, root: SysRoot | None = None) -> tuple[str, str | None, dict[int, str], tuple]:
    """(status, message, next_boot, (SRIOV_EN, NUM_OF_VFS)) from `mstconfig
    -d <pci> query` (on a bundle, what it answered where the bundle was
    made); None for what it did not say."""
    from ib40d.system.bundle import run_tool

    unknown = (None, None)
    try:
        done = run_tool(root or SysRoot("/"), ["mstconfig", "-d", pci, "query"], timeout=MSTCONFIG_QUERY_TIMEOUT)
    except runner.ToolMissing:
        return "missing", mstconfig.refusal_message("missing", "", pci), {}, unknown
    except UserError as e:  # timeout
        return "error", str(e), {}, unknown
    out = mstconfig.parse(done.stdout + done.stderr)
    refused = mstconfig.refusal(out, done.returncode)
    if refused:
        kind, text = refused
        return kind, mstconfig.refusal_message(kind, text, pci), {}, unknown
    device = out.devices[0] if out.devices else None
    sriov = unknown
    if device is not None:
        enabled, count = device.value("SRIOV_EN"), device.value("NUM_OF_VFS")
        sriov = (None if enabled is None or enabled.number is None else bool(enabled.number),
                 None if count is None else count.number)
    next_boot = device.link_types() if device else {}
    if not next_boot:
        return "no-link-type", f"mstconfig -d {pci}: no LINK_TYPE_P1/P2 (not a VPI card?)", {}, sriov
    return "ok", None, next_boot, sriov


def read_state(root: SysRoot, card: Card) -> PortTypeState:
    running, auto = read_runtime(root, card.pci)
    status, message, next_boot, (sriov_en, fw_num_vfs) = query_mstconfig(card.pci, root)
    dev = f"/sys/bus/pci/devices/{card.pci}"
    driver = root.realpath(f"{dev}/driver")
    conf = root.read(MODPROBE_CONF)
    return PortTypeState(
        pci=card.pci, model=card.model, running=running, running_auto=auto,
        runtime_switch=bool(card.mlx4_ports), next_boot=next_boot, mstconfig=status,
        mstconfig_message=message, modprobe_conf=parse_modprobe_conf(conf),
        modules={m: root.exists(f"/sys/module/{m}") for m in IB_MODULES},
        driver=driver.rsplit("/", 1)[1] if driver else None, sriov_en=sriov_en, fw_num_vfs=fw_num_vfs,
        numvfs=root.read_int(f"{dev}/sriov_numvfs"), totalvfs=root.read_int(f"{dev}/sriov_totalvfs"),
        vfs_modprobe=sriov.parse_modprobe_line(conf),
    )


def plan_card(cfg, root: SysRoot) -> tuple[list[Action], list[str]]:
    """Port-type actions of every card section for `plan` and `apply`, or
    why there are none. A missing card is a note (the links may still be
    configured); several cards under a bare [card] without pci is an error:
    it is the config that must say which."""
    sections = configured(cfg)
    if not sections:
        return [], []
    if not any(c.pci for c in sections) and not find_cards(root):
        return [], ["[card]: no ConnectX card found (vendor 0x15b3); port types are set when one is present"]
    actions, notes = plan_cards(cfg, root)
    actions, merged = one_modprobe_file(actions)
    return actions, notes + merged


def plan_cards(cfg, root: SysRoot) -> tuple[list[Action], list[str]]:
    """Read each configured card (runs mstconfig query) and plan its port
    types and virtual functions."""
    present = find_cards(root)
    actions, notes = [], []
    for card_cfg in configured(cfg):
        card_actions, card_notes = plan_one(card_cfg, read_state(root, select_card(card_cfg, present)))
        actions += card_actions
        notes += card_notes
    return actions, notes


def configured(cfg) -> list:
    """The card sections that ask for something: port types or VFs."""
    return [c for c in cfg.cards if has_port_types(c) or sriov.wants_vfs(c)]


def plan_one(card_cfg, state: PortTypeState, at_boot: bool = False) -> tuple[list[Action], list[str]]:
    """AT_BOOT: for `ib40d porttype` (ib40-porttype.service), which on
    mlx5 gives back only the VFs (porttype_plan.boot_sets_port_types)."""
    wants_types = has_port_types(card_cfg) and (not at_boot or boot_sets_port_types(state))
    actions = plan_port_types(card_cfg, state) if wants_types else []
    vf_actions, notes = sriov.plan_vfs(card_cfg, state)
    return actions + vf_actions, notes


def plan_actions(cfg, root: SysRoot) -> list[Action]:
    return plan_cards(cfg, root)[0]


# ---------------------------------------------------------------- applying


@dataclass
class ApplyResult:
    messages: list[str] = field(default_factory=list)
    reapply_links: bool = False  # a runtime switch re-registered the card's netdevs
    failed: bool = False


def apply_port_actions(actions: list[Action], root: SysRoot) -> ApplyResult:
    result = ApplyResult()
    firmware_failed: set[str] = set()
    wants: dict[str, dict] = {}  # each card's wanted types, in the order of its actions
    for a in actions:
        if not a.kind.startswith(("porttype.", "sriov.")):
            continue
        pci = a.target
        wants[pci] = a.params.get("want", wants.get(pci))
        if a.kind.startswith("sriov."):
            result.messages.append(_apply_vfs(root, a, result))
            continue
        if a.kind == "porttype.firmware":
            ok, msg = _apply_firmware(a)
            if not ok:
                firmware_failed.add(pci)
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
    # mstconfig could query but not set: persist through the module option,
    # which every mlx4 card shares.
    fallback = [Action("porttype.persist", pci, (), params={"content": modprobe_conf_text(wants[pci])})
                for pci in sorted(firmware_failed) if wants.get(pci)]
    if fallback and not any(a.kind == "porttype.persist" for a in actions):
        fallback, notes = one_modprobe_file(fallback)
        result.messages += notes + [_apply_persist(root, MODPROBE_CONF, a.params["content"]) for a in fallback]
    cards = {c.pci: c for c in find_cards(root)}
    for pci, want in wants.items():
        if pci in cards:
            write_state(root, read_state(root, cards[pci]), want, result.reapply_links)
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


def _apply_vfs(root: SysRoot, a: Action, result: ApplyResult) -> str:
    pci, want = a.target, a.changes[0].new
    if a.kind == "sriov.modprobe":
        line = a.params["line"]
        text = sriov.merge_modprobe_text(root.read(a.params["path"]), sriov.MODPROBE_COMMENT, line,
                                         owns=lambda old: sriov.MODPROBE_LINE_PREFIX in old)
        root.write_atomic(a.params["path"], text)
        return (f"{pci}: wrote `{line}` into {a.params['path']}: mlx4 makes the virtual functions when "
                "mlx4_core next loads (reboot, or reload the mlx4 modules)")
    try:
        if a.params["reset_first"]:
            root.write_sysfs(a.params["path"], "0\n")  # the kernel changes a non-zero count only from 0
        root.write_sysfs(a.params["path"], f"{want}\n")
    except OSError as e:
        result.failed = True
        return f"{pci}: sriov_numvfs {want} refused ({e.strerror or e})"
    return f"{pci}: {want} virtual functions (sriov_numvfs)"


def _apply_persist(root: SysRoot, path: str, content: str) -> str:
    options = [line for line in content.splitlines() if line.startswith("options")][0]
    comment = "\n".join(line for line in content.splitlines() if line.startswith("#"))
    content = sriov.merge_modprobe_text(root.read(path), comment, options,
                                        owns=lambda old: "port_type_array=" in old)
    if not root.write_atomic(path, content):
        return f"{path} already holds `{options}`"
    return (f"wrote {path} (`{options}`): used when mlx4_core next loads; "
            "if mlx4_core is in your initramfs, run update-initramfs -u")


# ---------------------------------------------------------------- state for status


def read_states(root: SysRoot) -> dict[str, dict]:
    try:
        return card_states(json.loads(root.read(STATE_FILE) or ""))
    except ValueError:
        return {}


def write_state(root: SysRoot, state: PortTypeState, want: dict | None, reapply_links: bool) -> None:
    """Record STATE as its card's entry, keeping the other cards'."""
    doc = state.to_json()
    doc["want"] = {str(k): v for k, v in (want or {}).items()}
    doc["reapply_links"] = reapply_links
    doc["updated"] = time.strftime("%Y-%m-%dT%H:%M:%S%z")
    cards = dict(read_states(root), **{state.pci: doc})
    root.write_atomic(STATE_FILE, json.dumps({"cards": cards}, indent=1, sort_keys=True) + "\n")


def status_json(root: SysRoot) -> list[dict]:
    """Each card's last state written, with the running types re-read
    from sysfs (cheap) so a reboot or a switch since then shows at once.
    [] when `porttype` never ran."""
    out = []
    for pci, state in sorted(read_states(root).items()):
        running, auto = read_runtime(root, pci)
        if running:
            state["running"] = {str(k): v for k, v in running.items()}
            state["running_auto"] = {str(k): v for k, v in auto.items()}
        state["reboot_pending"] = pending_reboot(state)
        state["numvfs"] = root.read_int(f"/sys/bus/pci/devices/{pci}/sriov_numvfs")
        state["vfs_modprobe"] = sriov.parse_modprobe_line(root.read(MODPROBE_CONF))
        out.append(state)
    return out


def status_lines(root: SysRoot, pci: str | None = None) -> list[str]:
    """status's lines of each card, or of the card at PCI."""
    return [line for state in status_json(root) if pci in (None, state.get("pci"))
            for line in status_lines_from(state)]
