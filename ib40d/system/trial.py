# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d try`'s state on the machine, and what the daemon asks of it.

A running trial is a marker, TRIAL_FILE, with its pid (and the pid's start
time, so a reused pid is not taken for it) and its deadline, written under
the apply lock before the trial applies anything, and removed under it once
the trial is confirmed or rolled back. While it is there the daemon applies
nothing (`held_by_trial`, called under the lock where it converges), so it
neither puts the old file back over the trial nor races the rollback. A
trial killed outright leaves a marker whose pid is gone: it no longer holds.

A rolled-back /etc/ib40.conf (a trial of the file itself) stays as it was,
edited: REJECTED_FILE keeps its digest, and the daemon's reload path
(`reload_refused`) keeps the running configuration while the files still
have those bytes, so the rejected file is not applied behind the user's back.

`ib40d try --confirm` talks to the trial over CONFIRM_SOCKET: one line
"confirm", answered with lines, the first "confirmed" or "refused: why".
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import time

from ib40d.core.control_protocol import CONTROL_SOCKET
from ib40d.system.config_reader import config_files
from ib40d.system.sysroot import SysRoot

TRIAL_FILE = "/run/ib40/trial"
REJECTED_FILE = "/run/ib40/trial-rejected"
CONFIRM_SOCKET = "/run/ib40/trial.sock"
CONFIRM = b"confirm\n"
# json, hashlib and core.restore are imported where used: the daemon imports
# this module at every boot and calls it at every apply, where there is no
# marker to read, and it never rolls back (that is `ib40d try`'s).
TYPE_CHECKING = False  # typing's, without importing typing
if TYPE_CHECKING:
    from ib40d.core.restore import Snapshot
ANSWER_TIMEOUT_S = 30.0  # a confirmation writes a file and signals the daemon: seconds at most


# ------------------------------------------------------------ the marker


def _start_time(pid: int) -> str | None:
    """PID's start time, from this machine's /proc whatever the --root: the
    trial and the daemon are processes here, not in a tree."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except OSError:
        return None
    # "pid (comm) state ppid ...": comm may hold spaces and parentheses
    return stat.rsplit(")", 1)[1].split()[19]


def write_marker(root: SysRoot, deadline: float, config: str) -> None:
    import json

    pid = os.getpid()
    marker = {"pid": pid, "start": _start_time(pid), "deadline": deadline, "config": config}
    root.write_atomic(TRIAL_FILE, json.dumps(marker) + "\n")


def remove(root: SysRoot, abspath: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        root.path(abspath).unlink()


def running_trial(root: SysRoot) -> dict | None:
    """The running trial's marker, or None (none, or its process is gone)."""
    text = root.read(TRIAL_FILE)
    if text is None:
        return None
    import json

    try:
        marker = json.loads(text)
        pid = int(marker["pid"])
    except (ValueError, KeyError, TypeError):
        return None
    if _start_time(pid) != marker.get("start"):
        return None  # killed (SIGKILL, a crash): it holds nothing any more
    return marker


def held_by_trial(root: SysRoot) -> str | None:
    """Why the daemon must not converge now (a trial runs), or None.
    Called with the apply lock held."""
    marker = running_trial(root)
    if marker is None:
        return None
    left = max(0, marker["deadline"] - time.time())
    return (f"`ib40d try` (pid {marker['pid']}) is trying {marker['config']}: not applied until it is "
            f"confirmed or rolled back (within {left:.0f} s)")


def config_digest(path: str) -> str:
    """The bytes of the config and its drop-ins, as one digest."""
    import hashlib

    h = hashlib.sha256()
    for p in config_files(path):
        h.update(os.fsencode(str(p)) + b"\0")
        try:
            h.update(p.read_bytes())
        except OSError as e:
            h.update(f"unreadable: {e.errno}".encode())
        h.update(b"\0")
    return h.hexdigest()


def reject(root: SysRoot, path: str) -> None:
    import json

    root.write_atomic(REJECTED_FILE, json.dumps({"config": path, "digest": config_digest(path)}) + "\n")


def reload_refused(root: SysRoot, path: str) -> str | None:
    """Why the daemon must keep its running configuration instead of
    reading PATH now, or None: a trial runs, or PATH still has the bytes of
    a trial that was rolled back."""
    marker = running_trial(root)
    if marker is not None:
        return f"not reloading {path}: `ib40d try` (pid {marker['pid']}) is trying {marker['config']}"
    return rolled_back(root, path, "not reloading")


def rolled_back(root: SysRoot, path: str, what: str = "not applying") -> str | None:
    """Why PATH must not be applied, or None: it still has the bytes of a
    trial that was rolled back."""
    text = root.read(REJECTED_FILE)
    if text is None:
        return None
    import json

    try:
        rejected = json.loads(text)
    except ValueError:
        return None
    if rejected.get("config") == path and rejected.get("digest") == config_digest(path):
        return (f"{what} {path}: `ib40d try` rolled it back and it has not changed since; "
                "edit it, or `ib40d try` it again")
    return None


# ------------------------------------------------------------ the links


def record(nl, root: SysRoot, names) -> Snapshot:
    """The links NAMES as they are now (None: absent), and the order of
    their bonds' slaves."""
    from ib40d.core.bonding import parse_proc_bonding
    from ib40d.core.restore import Snapshot
    from ib40d.system.observe import observe

    machine = observe(nl, root)
    snap = Snapshot({name: machine.get(name) for name in sorted(names)})
    for name, link in snap.links.items():
        text = root.read(f"/proc/net/bonding/{name}") if link is not None and link.kind == "bond" else None
        if text is not None:
            snap.slave_order[name] = [s["name"] for s in parse_proc_bonding(text)["slaves"]]
    return snap


def rollback(snap: Snapshot, nl, root: SysRoot, rounds: int = 3):
    """Converge the links back to SNAP: plan, execute, look again, a few
    rounds at most (a bond re-created takes its MAC from its first slave).
    Returns (ApplyResult of every round together, what still differs)."""
    from ib40d.core.restore import restore_plan
    from ib40d.system.apply_engine import ApplyResult, execute
    from ib40d.system.observe import observe

    total = ApplyResult()
    plan = restore_plan(snap, observe(nl, root))
    total.notes += plan.notes
    for _ in range(rounds):
        if not plan.actions:
            break
        result = execute(plan, nl, root)
        total.planned += result.planned
        total.done += result.done
        total.warnings += result.warnings
        total.errors += result.errors
        plan = restore_plan(snap, observe(nl, root))
    return total, plan.actions


# ------------------------------------------------------------ confirming


def listen(root: SysRoot) -> socket.socket:
    path = root.path(CONFIRM_SOCKET)
    path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
    with contextlib.suppress(FileNotFoundError):
        path.unlink()  # a trial's that was killed: the marker was checked first
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    umask = os.umask(0o177)  # root only: confirming keeps a network change
    try:
        sock.bind(str(path))
    finally:
        os.umask(umask)
    sock.listen(8)
    return sock


def read_request(conn: socket.socket) -> bytes:
    conn.settimeout(5.0)
    data = b""
    with contextlib.suppress(OSError):
        while b"\n" not in data and len(data) < 64:
            chunk = conn.recv(64)
            if not chunk:
                break
            data += chunk
    return data


def send_confirm(root: SysRoot) -> tuple[bool, list[str]]:
    """`ib40d try --confirm`: (confirmed?, the trial's answer lines)."""
    path = root.path(CONFIRM_SOCKET)
    if running_trial(root) is None:
        return False, ["no trial is running (`ib40d try` has ended, or was never started)"]
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(ANSWER_TIMEOUT_S)
        try:
            sock.connect(str(path))
            sock.sendall(CONFIRM)
            answer = b""
            while chunk := sock.recv(4096):
                answer += chunk
        except OSError as e:
            return False, [f"the trial did not answer on {path}: {e.strerror or e}"]
    lines = answer.decode(errors="replace").splitlines()
    return bool(lines) and lines[0] == "confirmed", lines


def tell_daemon_to_reload(root: SysRoot) -> str:
    """SIGHUP to the daemon listening on the control socket (SO_PEERCRED
    names the process that listens, with or without systemd)."""
    import struct

    path = root.path(CONTROL_SOCKET)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.settimeout(5.0)
        try:
            sock.connect(str(path))
            pid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, 12))[0]
            sock.sendall(b"\n")  # an empty request, refused: the daemon drops us at once
        except OSError:
            return "the daemon is not running; it reads the new file when it starts"
    try:
        os.kill(pid, signal.SIGHUP)
    except OSError as e:
        return f"could not tell the daemon (pid {pid}) to reload: {e.strerror}"
    return f"told the daemon (pid {pid}) to reload"
