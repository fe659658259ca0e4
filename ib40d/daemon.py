# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d daemon`: ib40d.service, the one process per boot that holds pyroute2.

Importing pyroute2 costs ~0.25 s of CPU and 35 MB; paying it once per unit
would cost a boot several times that. So one Type=notify service does all
link work, and imports pyroute2 once, on its first write (it watches and
reads the kernel with stdlib sockets, rtnl.py):

- at start, applies the whole configuration;
- watches rtnetlink link events and re-applies when a configured link appears
  (boot enumeration, hotplug, a mlx4 port-type switch re-registering netdevs);
- answers `ib40d link-ready NAME` (ib40-link@NAME.service) on a unix socket
  in /run/ib40, so per-link units cost a few ms each;
- sends READY=1 once every bond has all its slaves (STATUS= while waiting),
  or after --ready-timeout with a STATUS saying what is missing, so a dead
  port never holds network.target for ever;
- SIGHUP (systemctl reload) re-reads the config; an invalid one is logged and
  the running one kept. Stopping the service leaves the links as they are.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import sys
import time

import io

# Everything the daemon will ever run is imported at start: a package
# upgrade replaces these files under a running daemon (it is not restarted,
# so links don't flap), and a late import would mix two versions.
from ib40d import notify, rtnl, sync
from ib40d.apply import apply_lock, converge
from ib40d.cli import config_path, load_config, sysroot
from ib40d.config import config_files
from ib40d.cmd_apply import report
from ib40d.netlink import Netlink
from ib40d.observe import observe
from ib40d.errors import ConfigError
from ib40d.linkready import CONTROL_SOCKET
from ib40d.plan import missing_slaves

# A saved config is ib40-sync.service's to sync first (its condition sleeps
# 1 s, a run takes ~3 s in the lab's emulated guests); the daemon steps in
# only when it still isn't synced this long after the save.
SYNC_GRACE_S = 15.0
DEBOUNCE_S = 0.2  # link events come in bursts (rename, up, carrier): apply once per burst


def add_arguments(parser) -> None:
    parser.add_argument("--ready-timeout", type=float, default=30.0, metavar="S",
                        help="send READY=1 after S seconds even if a bond still misses slaves (default 30)")
    parser.add_argument("--exit-when-ready", action="store_true",
                        help="exit after the first convergence (for tests and one-shot use)")


def log(msg: str) -> None:
    print(msg, flush=True)


class Daemon:
    def __init__(self, args):
        self.args = args
        self.root = sysroot(args)
        # Read before parsing: what check_rules may record as synced must
        # be no newer than what self.cfg was parsed from.
        self.cfg_bytes = sync.seen_bytes(config_path(args))
        self.cfg = load_config(args)
        self.cfg_stamp = config_stamp(config_path(args))
        self.saved_stamp = self.cfg_stamp  # the files as watch_saved_config() last saw them
        self.sync_due: float | None = None
        self.nl = Netlink()
        self.ready_sent = False
        self.started = time.monotonic()
        self.pending: set[str] = set()
        self.pending_since: float | None = None
        self.stop = False
        self.last_report: dict[str | None, set[str]] = {}
        self.seen: dict[str, tuple] = {}  # configured name -> what its last event said

    # ------------------------------------------------------------ applying

    def converge(self, only: str | None = None) -> tuple[list[str], bool]:
        """Apply (all, or one link and its bond); log what changed.
        Returns the report lines and whether everything converged."""
        if config_stamp(config_path(self.args)) != self.cfg_stamp:
            # Edited since we read it (and `ib40d apply` run, whose changes
            # woke us): applying the old file would undo the new one.
            self.load_new_config()
        try:
            with apply_lock(self.root):
                result = converge(self.cfg, self.nl, self.root, only)
        except OSError as e:
            # A dump interrupted by a burst of changes (EINTR/ENOBUFS...):
            # log it and let the next event (or request) try again.
            log(f"{only or 'all'}: could not read the kernel's links: {e}; will retry")
            return [f"error: could not read the kernel's links: {e}"], False
        out = io.StringIO()
        report(result, out)
        lines = out.getvalue().splitlines()
        # A lasting refusal (a missing module, a dead port) comes back at
        # every link event; say it when it changes, not every time.
        seen = self.last_report.get(only, set())
        for line in lines:
            if line.startswith(("done:", "applied")) or (line not in seen and not line.startswith("nothing to do")):
                log(f"{only or 'all'}: {line}")
        self.last_report[only] = {l for l in lines if not l.startswith(("done:", "applied"))}
        return lines, result.ok

    def check_ready(self) -> None:
        if self.ready_sent:
            return

        try:
            missing = missing_slaves(self.cfg, observe(self.nl, self.root))
        except OSError as e:
            log(f"could not read the kernel's links: {e}; will retry")
            return
        waited = time.monotonic() - self.started
        if not missing:
            notify.ready("all configured links applied")
            self.ready_sent = True
            log("ready: all configured links applied")
        elif waited >= self.args.ready_timeout:
            text = f"ready after {waited:.0f} s without: {', '.join(missing)}"
            notify.ready(text)
            self.ready_sent = True
            log(text)
        else:
            notify.status(f"waiting for slaves: {', '.join(missing)}")

    # -------------------------------------------------------------- events

    def on_link_event(self, monitor) -> None:
        events = monitor.events()
        configured = set(self.cfg.names())
        if events is None:
            # The kernel dropped events (a burst overflowed the socket):
            # anything may have changed, so look at everything.
            self.pending |= configured
            self.seen.clear()
        else:
            for deleted, link in events:
                name = link["name"]
                if name not in configured:
                    continue
                if deleted:
                    self.seen.pop(name, None)
                    continue
                # Only what ib40 sets, or a new device under the name, calls
                # for an apply; carrier and operstate flaps (a cable pulled,
                # the bond's miimon at work) do not.
                key = (link["index"], link["flags"] & rtnl.IFF_UP, link["master"], link["mtu"],
                       link["txqueuelen"], link["kind"])
                if self.seen.get(name) != key:
                    self.seen[name] = key
                    self.pending.add(name)
        if self.pending and self.pending_since is None:
            self.pending_since = time.monotonic()

    def flush_pending(self) -> None:
        if self.pending_since is None or time.monotonic() - self.pending_since < DEBOUNCE_S:
            return
        self.pending.clear()
        self.pending_since = None
        self.converge()
        self.check_ready()

    def on_client(self, conn: socket.socket) -> None:
        """One request per connection: 'apply NAME\\n' -> result lines, then 'END <rc>'."""
        with conn:
            conn.settimeout(5)
            try:
                request = conn.makefile("r", errors="replace").readline(256).split()
            except OSError:
                return
            if len(request) != 2 or request[0] != "apply":
                conn.sendall(b"error: bad request\nEND 2\n")
                return
            name = request[1]
            if name not in self.cfg.names():
                conn.sendall(f"error: {name} is not configured in {self.cfg.files[0]}\nEND 2\n".encode())
                return
            lines, ok = self.converge(name)
            body = "".join(f"{l}\n" for l in lines)
            try:
                conn.sendall(f"{body}END {0 if ok else 1}\n".encode())
            except OSError:
                pass  # the client gave up; the work is done anyway
        self.check_ready()

    def load_new_config(self) -> bool:
        self.cfg_stamp = config_stamp(config_path(self.args))
        try:
            self.cfg = load_config(self.args)
        except ConfigError as e:
            for problem in e.problems:
                log(f"reload refused: {problem}")
            notify.status("config reload refused: invalid configuration; running the previous one")
            return False
        log("configuration reloaded")
        return True

    def reload(self) -> None:
        if self.load_new_config():
            self.converge()
            self.check_ready()

    def check_rules(self) -> None:
        """The udev naming rules are written by `ib40d sync` when the config
        is saved; if that did not happen (the path unit missed the save),
        the ports keep their kernel names. Write them now and say so: the
        names take effect when the devices are next added."""
        if not self.root.is_live:
            return
        path = config_path(self.args)
        result = sync.sync(self.root, self.cfg, reload=True, sources=path)
        # Tell ib40-sync.service's ExecCondition these files are done, or the
        # first write to /etc of each boot costs a Python start for nothing.
        # Unless the file was saved since we read it: then sync must run.
        if sync.seen_bytes(path) == self.cfg_bytes:
            sync.record_seen(self.root, self.cfg_bytes)
        if result.rules_changed:
            log(f"warning: the udev rules did not match {self.cfg.files[0]}; "
                + "; ".join(result.changed + result.notes))

    def watch_saved_config(self, now: float | None = None) -> None:
        """ib40-sync.path misses a save that lands while ib40-sync.service
        runs (systemd 252 watches nothing then), which leaves the rules of
        the previous file in place until the next write to /etc. The daemon,
        awake every second anyway, notices the files changed; if
        SYNC_GRACE_S later they still differ from what the last sync
        recorded, it syncs them itself. Like a save, this applies no link."""
        now = time.monotonic() if now is None else now
        path = config_path(self.args)
        stamp = config_stamp(path)
        if stamp != self.saved_stamp:
            self.saved_stamp, self.sync_due = stamp, now + SYNC_GRACE_S
            return
        if self.sync_due is None or now < self.sync_due:
            return
        self.sync_due = None
        seen = sync.seen_bytes(path)
        if seen == sync.recorded_seen(self.root):
            return  # ib40-sync.service has done it
        sync.record_seen(self.root, seen)  # as sync does: an invalid file is reported once
        try:
            cfg = load_config(self.args)
        except ConfigError as e:
            log(f"warning: {path} was saved with {len(e.problems)} problem(s) and not synced; "
                "`ib40d check` lists them")
            return
        result = sync.sync(self.root, cfg, reload=self.root.is_live, sources=path)
        log(f"{path} was saved but not synced by ib40-sync.service; "
            + "; ".join(result.changed + result.notes or ["generated files are up to date"]))

    # ---------------------------------------------------------------- loop

    def control_socket(self) -> socket.socket:
        path = self.root.path(CONTROL_SOCKET)
        path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        try:
            path.unlink()
        except FileNotFoundError:
            pass
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(str(path))
        os.chmod(path, 0o600)  # root only: it changes the network
        sock.listen(16)
        return sock

    def run(self) -> int:
        monitor = rtnl.LinkMonitor()  # subscribed before the first apply: no event is missed
        server = self.control_socket()
        sel = selectors.DefaultSelector()
        sel.register(monitor, selectors.EVENT_READ, "netlink")
        sel.register(server, selectors.EVENT_READ, "control")
        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)
        sel.register(wake_r, selectors.EVENT_READ, "signal")
        signals: list[int] = []

        def on_signal(signum, _frame):
            signals.append(signum)
            os.write(wake_w, b"x")

        signal.signal(signal.SIGHUP, on_signal)
        signal.signal(signal.SIGTERM, on_signal)
        signal.signal(signal.SIGINT, on_signal)

        notify.status("applying configuration")
        self.check_rules()
        self.converge()
        self.check_ready()
        if self.args.exit_when_ready and self.ready_sent:
            return 0
        while not self.stop:
            timeout = 1.0
            if self.pending_since is not None:
                timeout = max(0.0, DEBOUNCE_S - (time.monotonic() - self.pending_since))
            for key, _ in sel.select(timeout):
                if key.data == "netlink":
                    self.on_link_event(monitor)
                elif key.data == "control":
                    conn, _ = server.accept()
                    self.on_client(conn)
                elif key.data == "signal":
                    os.read(wake_r, 64)
                    while signals:
                        signum = signals.pop(0)
                        if signum == signal.SIGHUP:
                            self.reload()
                        else:
                            self.stop = True
            self.flush_pending()
            self.check_ready()
            self.watch_saved_config()
            if self.args.exit_when_ready and self.ready_sent:
                break
        server.close()
        try:
            self.root.path(CONTROL_SOCKET).unlink()
        except OSError:
            pass
        monitor.close()
        self.nl.close()
        return 0


def config_stamp(path: str) -> tuple:
    """What changes when the config or a drop-in is saved (or removed)."""
    stamp = []
    for p in config_files(path):
        try:
            st = p.stat()
            stamp.append((str(p), st.st_mtime_ns, st.st_size))
        except OSError:
            stamp.append((str(p), None, None))
    return tuple(stamp)


def run(args) -> int:
    daemon = Daemon(args)
    if not daemon.cfg.names():
        log(f"{daemon.cfg.files[0]} configures no link; nothing to do")
        notify.ready("nothing configured")
        return 0
    sys.stdout.reconfigure(line_buffering=True)
    return daemon.run()
