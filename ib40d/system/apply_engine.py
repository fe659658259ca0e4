# SPDX-License-Identifier: GPL-2.0-or-later
"""Run a plan through the netlink adapter and sysfs, then verify.

`converge()` is what `ib40d apply` and the daemon call: observe, plan, execute,
observe again and plan again — a non-empty second plan means the kernel did
not take what we asked, and is reported as such. A refused request stops the
run with one line naming the link and the errno, and the result says what was
done and what was not.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import time
from collections.abc import Callable, Iterable

from ib40d.core.records import dataclass, field
from ib40d.core.actions import Action
from ib40d.core.config import Config
from ib40d.core.netlink_errors import NetlinkRefused
from ib40d.system.observe import observe
from ib40d.core.plan import Plan, make_plan
from ib40d.system.sysroot import SysRoot


@dataclass
class ApplyResult:
    planned: list[Action] = field(default_factory=list)
    done: list[Action] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    not_converged: list[Action] = field(default_factory=list)
    # The configured links an apply of the whole file made true, when it is
    # ok: not a port that was absent (or that udev was not done with) when
    # it was planned, though it may have appeared while the apply ran.
    made_true: list[str] = field(default_factory=list)
    writes: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors and not self.not_converged

    @property
    def not_done(self) -> list[Action]:
        done = set(map(id, self.done))
        return [a for a in self.planned if id(a) not in done]

    def to_json(self) -> dict:
        return {
            "ok": self.ok,
            "writes": self.writes,
            "done": [a.to_json() for a in self.done],
            "not_done": [a.to_json() for a in self.not_done],
            "not_converged": [a.to_json() for a in self.not_converged],
            "warnings": self.warnings,
            "notes": self.notes,
            "errors": self.errors,
        }


class LinkRenamed(Exception):
    """The ifindex a write is aimed at now carries another name: the link
    was renamed (or the index reused) since the plan was made."""

    def __init__(self, name: str, now: str, index: int):
        super().__init__(f"{name} was renamed to {now} during the apply (ifindex {index}); "
                         "refused: nothing more is written to it or its group")


class _Indexes:
    """name -> ifindex, checked before every write: the index must still
    carry that name, or the write would land on a renamed link."""

    def __init__(self, nl, known: dict[str, int]):
        self.nl = nl
        self.map = dict(known)

    def __call__(self, name: str) -> int:
        if name not in self.map:  # a bond this run created
            self.map.update({l.name: l.index for l in self.nl.dump_links() if l.name not in self.map})
        if name not in self.map:
            raise NetlinkRefused(errno.ENODEV, f"find {name}")
        index = self.map[name]
        now = self.nl.link_name(index)
        if now is None:
            raise NetlinkRefused(errno.ENODEV, f"find {name}")
        if now != name:
            raise LinkRenamed(name, now, index)
        return index


def _ipoib_mode(root: SysRoot, name: str, mode: str) -> None:
    try:
        # ipoib_set_mode() compares the buffer with "connected\n" and
        # "datagram\n": without the newline every write is EINVAL.
        root.write_sysfs(f"/sys/class/net/{name}/mode", mode + "\n")
    except OSError as e:
        if e.errno == errno.EINVAL and mode == "connected":
            raise NetlinkRefused(e.errno, f"set {name} to connected mode",
                                 "this card or kernel has no IPoIB connected mode (mlx5 enhanced IPoIB "
                                 f"does not); set mode = datagram and mtu <= 4092 in [ipoib {name}]") from None
        raise NetlinkRefused(e.errno or errno.EIO, f"set {name} to {mode} mode") from None


def _record_child(root: SysRoot, name: str, created: bool) -> None:
    """Keep CHILDREN_FILE the P_Key children this machine's applies created
    (in /run: they are gone after a reboot too)."""
    from ib40d.system.observe import CHILDREN_FILE

    path = root.path(CHILDREN_FILE)
    names = set((root.read(CHILDREN_FILE) or "").split())
    names = names | {name} if created else names - {name}
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(f"{n}\n" for n in sorted(names)))
    os.replace(tmp, path)


def execute_action(action: Action, nl, root: SysRoot, index: _Indexes, result: ApplyResult) -> None:
    name = action.target
    kind = action.kind
    if kind == "bond.create":
        nl.create_bond(name, action.params["options"])
    elif kind == "bond.set":
        nl.set_bond(index(name), name, action.params["options"])
    elif kind == "bond.use_carrier":
        try:
            nl.set_bond(index(name), name, {"use_carrier": action.params["value"]})
        except NetlinkRefused as e:
            # Kernels from 6.x on deprecate use_carrier; not worth failing a bond for.
            result.warnings.append(f"{name}: use_carrier not set: {e}")
    elif kind == "ipoib.create":
        parent = action.params["parent"]
        nl.create_ipoib_child(name, index(parent), parent, action.params["pkey"])
        _record_child(root, name, True)
    elif kind == "ipoib.delete":
        nl.delete_link(index(name), name)
        _record_child(root, name, False)
    elif kind == "vlan.create":
        parent = action.params["link"]
        nl.create_vlan(name, index(parent), parent, action.params["id"])
    elif kind == "bond.primary":
        slave = action.params["slave"]
        nl.set_bond_primary(index(name), name, index(slave), slave)
    elif kind == "link.up":
        nl.set_state(index(name), name, True)
    elif kind == "link.down":
        nl.set_state(index(name), name, False)
    elif kind == "link.mtu":
        nl.set_mtu(index(name), name, action.changes[0].new)
    elif kind == "link.txqueuelen":
        nl.set_txqueuelen(index(name), name, action.changes[0].new)
    elif kind == "link.enslave":
        master = action.params["master"]
        nl.set_master(index(name), name, index(master), master)
    elif kind == "link.delete":  # ib40d try's rollback: a bond the trial created
        nl.delete_link(index(name), name)
    elif kind == "link.release":
        nl.set_master(index(name), name, 0, None)
    elif kind == "ipoib.mode":
        index(name)  # ENODEV early if it went away
        _ipoib_mode(root, name, action.changes[0].new)
    elif kind == "vf.guid":
        p = action.params
        nl.set_vf_guids(index(name), name, p["vf"], p["node_guid"], p["port_guid"])
    elif kind == "addr.add":
        nl.add_address(index(name), name, action.params["cidr"], action.params["broadcast"])
    elif kind == "addr.del":
        nl.del_address(index(name), name, action.params["cidr"])
    elif kind == "route.add":
        nl.add_route(index(name), name, **action.params)
    elif kind == "route.del":
        nl.del_route(index(name), name, **action.params)
    else:
        raise ValueError(f"unknown action kind {kind}")


def execute(plan: Plan, nl, root: SysRoot) -> ApplyResult:
    planned = plan.actions + plan.resend
    result = ApplyResult(planned=planned, notes=list(plan.notes), errors=list(plan.refusals))
    index = _Indexes(nl, plan.indexes)
    failed_groups: set[str] = set()
    downed: dict[str, list[str]] = {}  # group -> links this run set down
    for action in planned:
        if action.group in failed_groups:
            continue
        try:
            execute_action(action, nl, root, index, result)
        except (NetlinkRefused, LinkRenamed) as e:
            result.errors.append(f"{action.target}: {e}")
            failed_groups.add(action.group)
            _restore(downed.get(action.group, []), nl, index, result)
            continue
        result.done.append(action)
        if action.kind == "link.down":
            downed.setdefault(action.group, []).append(action.target)
        elif action.kind in ("link.up", "link.enslave"):  # the bond driver opens a slave
            group_downed = downed.get(action.group, [])
            if action.target in group_downed:
                group_downed.remove(action.target)
    return result


def _restore(names: list[str], nl, index: _Indexes, result: ApplyResult) -> None:
    """A group failed after we set some of its links down (for a mode
    change, an IPoIB switch, an enslave): bring them back up rather than
    leave the machine with less network than before."""
    for name in reversed(names):
        try:
            nl.set_state(index(name), name, True)
            result.warnings.append(f"{name}: set up again after the failure above")
        except (NetlinkRefused, LinkRenamed) as e:
            result.errors.append(f"{name}: could not set it up again: {e}")


LOCK_FILE = "/run/ib40/apply.lock"


class LockError(OSError):
    """The apply lock can't be had: /run is read-only, or another apply held
    it for longer than the caller waits. One line, as str()."""

    def __str__(self) -> str:
        return self.strerror


@contextlib.contextmanager
def apply_lock(root: SysRoot, wait: float | None = None, waiting=None):
    """One apply at a time on a machine: the daemon, a hand-run `ib40d
    apply`, and link units applying in-process (no daemon) would otherwise
    race, e.g. two of them creating the same bond (EEXIST).
    WAIT: how many seconds another holder may keep us waiting before
    LockError (None: as long as it takes); WAITING(line) is called once when
    the wait starts, with who holds the lock."""
    path = root.path(LOCK_FILE)
    try:
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        f = open(path, "a")
    except OSError as e:
        raise LockError(e.errno, f"cannot open the apply lock {path}: {e.strerror}") from None
    with f:
        if wait is None:
            fcntl.flock(f, fcntl.LOCK_EX)
        else:
            _wait_for_lock(f, root, wait, waiting)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def _wait_for_lock(f, root: SysRoot, wait: float, waiting) -> None:
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            pass
        if time.monotonic() >= deadline:
            raise LockError(errno.EWOULDBLOCK, f"gave up after {wait:g} s waiting for the apply lock "
                                               f"{f.name}, held by {_lock_holder(f, root)}")
        if not told and waiting is not None:
            waiting(f"waiting for the apply lock {f.name}, held by {_lock_holder(f, root)}; "
                    f"giving up after {wait:g} s")
            told = True
        time.sleep(0.1)


def _lock_holder(f, root: SysRoot) -> str:
    """'pid 1234 (ib40d daemon)' for the process holding F's flock, from
    /proc/locks: it names any holder, not only one that wrote its pid."""
    st = os.fstat(f.fileno())
    inode = f"{os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino}"
    for line in (root.read("/proc/locks") or "").splitlines():
        # "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5678 0 EOF"; "1: -> FLOCK ..." is a waiter
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == inode:
            pid = fields[4]
            command = (root.read(f"/proc/{pid}/cmdline") or "").replace("\0", " ").strip()
            return f"pid {pid} ({command})" if command else f"pid {pid}"
    return "a process /proc/locks does not name"


def converge(cfg: Config, nl, root: SysRoot, only: str | None = None,
             not_yet: frozenset[str] = frozenset(),
             udev_busy: Callable[[Iterable[str]], Iterable[str]] | None = None) -> ApplyResult:
    """Plan, execute, verify. NOT_YET: ports that exist but that udev has not
    finished with (udevdb); they are planned as absent, so nothing is done
    to them until they are ready. UDEV_BUSY(names) asks udev that again."""
    def without(observed, absent):
        for name in absent:
            observed.links.pop(name, None)
        return observed

    before = without(observe(nl, root), not_yet)
    plan = make_plan(cfg, before, only)
    if plan.actions and nl.prepare_writes():
        # Importing pyroute2 takes seconds in a slow boot (the lab's emulated
        # machines), while udev names the ports: plan again, so a port that
        # appeared meanwhile joins its bond now, not in the next apply,
        # which would import pyroute2 again.
        if udev_busy is not None:
            not_yet = frozenset(udev_busy(cfg.links))
        before = without(observe(nl, root), not_yet)
        plan = make_plan(cfg, before, only)
    writes_before = nl.writes
    result = execute(plan, nl, root)
    # Ports come and go with the hardware; P_Key children are ib40's to make.
    absent_ports = {name for name, link in cfg.links.items()
                    if getattr(link, "parent", None) is None and name not in before.links}
    result.made_true = [name for name in cfg.links if name not in absent_ports]
    if plan.actions:
        # Verify: what is still planned was not kept by the kernel, except
        # in groups that failed, which already have their error. A port
        # that appeared meanwhile (udev renamed it while the apply ran, at
        # boot) was planned as absent: it is the next event's to apply,
        # not something the kernel refused, so it is left out here too.
        failed = {a.group for a in result.not_done}
        again = make_plan(cfg, without(observe(nl, root), not_yet | absent_ports), only)
        result.not_converged = [a for a in again.actions if a.group not in failed]
    result.writes = nl.writes - writes_before
    return result
