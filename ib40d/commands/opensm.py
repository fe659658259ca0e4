# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d opensm-gate`: run a subnet manager only on the IB ports that need one.

An InfiniBand link carries no IP traffic until a subnet manager (SM) has
swept it: without one the port stays in INIT and sysfs shows sm_lid 0. Back
to back, one of the two machines must run opensm, bound to its port's GUID
(one opensm instance per port).

With `[opensm] start = auto` (the default) opensm is started for a port only
when its link layer is InfiniBand, it is physically linked (phys_state
LinkUp) and no SM is seen (sm_lid 0). Once started it is left running: on a
link with two machines both on `auto`, both may start one at the same moment;
opensm's own election (SMInfo priority, then the lower port GUID) makes one
MASTER and the other STANDBY, which takes over if the master goes away.
`always` starts one on every IB port, `never` stops ours.

Which unit: ib40's own template `ib40-opensm@<guid>.service`, not Debian's
`opensm@<guid>.service`, because (1) Debian's template is PartOf=opensm.service
and that package unit starts an SM on *every* port at boot (PORTS=ALL in
/etc/default/opensm), which is exactly the decision this gate makes; (2) it
takes no SM priority, which `[opensm] priority` needs; (3) older packagings
(Ubuntu 18.04's LSB script in fixtures/opensm) have no template at all. Ours
declares Conflicts=opensm@%i.service so the two never bind the same port,
and when the distro's instance already runs for a port the gate counts it as
that port's SM and starts nothing.

systemd is reached through a small adapter (SystemdUnits, pystemd); tests
pass a fake with the same three methods.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

from ib40d.core.records import asdict, dataclass
from ib40d.core import ibports
from ib40d.system import sysfs
from ib40d.system.sysroot import SysRoot

OUR_UNIT = "ib40-opensm@{guid}.service"
DISTRO_UNIT = "opensm@{guid}.service"
ENV_FILE = "/run/ib40/opensm.env"
PARTITIONS_FILE = "/run/ib40/partitions.conf"  # ib40-opensm@.service's --Pconfig


# ---------------------------------------------------------------- decisions


@dataclass(frozen=True)
class Decision:
    device: str
    port: int
    guid: str | None
    action: str  # "start" | "stop" | "keep" | "none"
    reason: str

    @property
    def unit(self) -> str | None:
        return OUR_UNIT.format(guid=self.guid) if self.guid else None


def decide(start: str, ports: list[ibports.IBPort], ours_running: set[str],
           distro_running: frozenset[str] | set[str] = frozenset()) -> list[Decision]:
    """Pure: one decision per port. `ours_running`/`distro_running` hold the
    GUIDs for which ib40-opensm@ / Debian's opensm@ units are active."""
    decisions = []
    for p in ports:
        ours = p.guid in ours_running
        if not p.is_infiniband:
            action, why = ("stop", "the port is Ethernet now") if ours else ("none", "Ethernet port: no SM needed")
        elif p.guid is None:
            action, why = "none", "no port GUID in sysfs (gids/0): cannot bind opensm"
        elif p.guid in distro_running and not ours:
            action, why = "none", f"the opensm package already runs {DISTRO_UNIT.format(guid=p.guid)} for it"
        elif start == "never":
            action, why = ("stop", "[opensm] start = never") if ours else ("none", "[opensm] start = never")
        elif ours:
            # Never stop a running SM because an SM is now seen: that SM is
            # usually this one (sm_lid == our lid), or the peer's in STANDBY
            # election with ours; stopping would flap the subnet.
            action, why = "keep", "our opensm runs for this port"
        elif start == "always":
            action, why = "start", "[opensm] start = always"
        elif not p.linked:
            action, why = "none", f"no link (physical state {p.phys_state or 'unknown'}): waiting for a cable or peer"
        elif p.sm_lid:
            action, why = "none", f"a subnet manager is seen at lid {p.sm_lid}"
        else:
            action, why = "start", f"linked, state {p.state or 'unknown'} and no subnet manager seen (sm_lid 0)"
        decisions.append(Decision(p.device, p.port, p.guid, action, why))
    return decisions


# ---------------------------------------------------------------- systemd adapter


class SystemdUnits:
    """The three systemd calls the gate needs, through pystemd (D-Bus)."""

    def __init__(self):
        from pystemd.systemd1 import Manager  # imported here: status must not need D-Bus

        self._manager_cls = Manager

    def active_units(self, pattern: str) -> set[str]:
        with self._manager_cls() as manager:
            units = manager.Manager.ListUnitsByPatterns([b"active", b"activating"], [pattern.encode()])
        return {u[0].decode() for u in units}

    def start(self, unit: str) -> None:
        with self._manager_cls() as manager:
            manager.Manager.StartUnit(unit.encode(), b"replace")

    def stop(self, unit: str) -> None:
        with self._manager_cls() as manager:
            manager.Manager.StopUnit(unit.encode(), b"replace")


def running_guids(units, template: str) -> set[str]:
    """GUIDs of active instances of a template ("ib40-opensm@{guid}.service")."""
    prefix = template.split("{guid}")[0]
    found = set()
    for name in units.active_units(prefix + "*"):
        guid = name[len(prefix):].removesuffix(".service")
        if re.fullmatch(r"0x[0-9a-f]{16}", guid):
            found.add(guid)
    return found


def _default_units(root: SysRoot):
    """The live systemd, or None when looking at a captured tree or when
    systemd is not reachable (a container, a build machine)."""
    if not root.is_live:
        return None
    try:
        units = SystemdUnits()
        units.active_units("ib40-opensm@*")
        return units
    except Exception:  # pystemd missing, no D-Bus, systemd not PID 1
        return None


# ---------------------------------------------------------------- edges


def ports_status(root: SysRoot, units=None) -> list[dict]:
    """For `status`: per port device, port, guid, link_layer, state,
    phys_state, rate, sm_lid, lid, opensm_running (True/False, or None when
    systemd can't be asked)."""
    units = units if units is not None else _default_units(root)
    ours = distro = None
    if units is not None:
        ours, distro = running_guids(units, OUR_UNIT), running_guids(units, DISTRO_UNIT)
    rows = []
    for p in sysfs.read_ports(root):
        row = p.to_json()
        row["opensm_running"] = None if ours is None else p.guid in ours
        row["opensm_distro_running"] = None if distro is None else p.guid in distro
        rows.append(row)
    return rows


def write_priority(root: SysRoot, priority: int | None) -> bool:
    """The unit reads IB40_OPENSM_PRIORITY from /run/ib40/opensm.env."""
    return root.write_atomic(ENV_FILE, f"IB40_OPENSM_PRIORITY={priority or 0}\n")


def write_partitions(root: SysRoot, cfg) -> bool:
    """The [partition] sections as opensm's partitions file; True when it changed."""
    from ib40d.core.partitions import render

    return root.write_atomic(PARTITIONS_FILE, render(cfg, " ".join(cfg.files) or "/etc/ib40.conf"))


def gate(cfg, root: SysRoot, units, dry_run: bool = False) -> tuple[list[Decision], list[str]]:
    """Observe, decide, act. Returns the decisions and one message per act."""
    ports = sysfs.read_ports(root)
    ours = running_guids(units, OUR_UNIT)
    distro = running_guids(units, DISTRO_UNIT)
    decisions = decide(cfg.opensm.start, ports, ours, distro)
    messages = []
    if dry_run:
        return decisions, messages
    if any(d.action == "start" for d in decisions):
        write_priority(root, cfg.opensm.priority)
    if write_partitions(root, cfg) and ours:
        messages.append(f"{PARTITIONS_FILE} changed: opensm reads it at start; restart "
                        f"{', '.join(sorted(OUR_UNIT.format(guid=g) for g in ours))} to apply it")
    for d in decisions:
        if d.action == "start":
            units.start(d.unit)
            messages.append(f"started {d.unit} for {d.device} port {d.port}: {d.reason}")
        elif d.action == "stop":
            units.stop(d.unit)
            messages.append(f"stopped {d.unit} for {d.device} port {d.port}: {d.reason}")
    if distro and cfg.opensm.start != "always":
        messages.append("note: the opensm package's opensm.service runs an SM on every port (PORTS=ALL in "
                        "/etc/default/opensm); to let ib40 decide, set PORTS=NONE or `systemctl disable opensm`")
    return decisions, messages


def waiting_for_link(d: Decision) -> bool:
    return d.action == "none" and d.reason.startswith("no link")


def gate_until_settled(cfg, root: SysRoot, units, wait: float, sleep=time.sleep,
                       clock=time.monotonic) -> tuple[list[Decision], list[str]]:
    """Run the gate; while an IB port still has no link (the peer is booting,
    its port type switching), look again every 2 s for up to `wait` seconds.
    At boot the gate runs once, so a port that links a minute later would
    otherwise never get its SM."""
    deadline = clock() + wait
    decisions, messages = gate(cfg, root, units)
    while cfg.opensm.start == "auto" and any(waiting_for_link(d) for d in decisions) and clock() < deadline:
        sleep(2.0)
        decisions, more = gate(cfg, root, units)
        messages += more
    return decisions, messages


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--dry-run", action="store_true", help="decide and print; start or stop nothing")
    parser.add_argument("--json", action="store_true", help="print the decisions as JSON")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="with start = auto, keep looking at unlinked IB ports for up to SECONDS")


def run(args) -> int:
    from ib40d.system.cliargs import load_config, sysroot
    from ib40d.core.errors import UserError

    cfg = load_config(args)
    root = sysroot(args)
    units = _default_units(root)
    if units is None:
        if not args.dry_run:
            raise UserError("cannot reach systemd (pystemd over D-Bus); use --dry-run to see the decisions")
        units = _NoUnits()
    if args.dry_run or args.wait <= 0:
        decisions, messages = gate(cfg, root, units, dry_run=args.dry_run)
    else:
        decisions, messages = gate_until_settled(cfg, root, units, args.wait)
    if args.json:
        json.dump({"start": cfg.opensm.start, "decisions": [dict(asdict(d), unit=d.unit) for d in decisions],
                   "messages": messages}, sys.stdout, indent=2)
        print()
        return 0
    if not decisions:
        print("no InfiniBand ports (nothing under /sys/class/infiniband)")
    for d in decisions:
        print(f"{d.device} port {d.port} ({d.guid or 'no GUID'}): {d.action}: {d.reason}")
    for m in messages:
        print(m)
    return 0


class _NoUnits:
    """Stand-in for a dry run without systemd: nothing is known to run."""

    def active_units(self, pattern: str) -> set[str]:
        return set()
