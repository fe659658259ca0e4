# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d daemon`: ib40d.service, the one Python process a boot needs.

Importing pyroute2 costs CPU and memory (pyroute2_lean.py imports only its
IPRoute); paying it once per unit would cost a boot several times that. So
one Type=notify service does all link work. It reads and watches the kernel
with stdlib sockets (netlink.py) and applies in a forked child (in_child()),
which imports pyroute2 on its first write and takes it away when it exits:
the daemon that stays resident for hotplug holds only what it reads with.

- at start, applies the whole configuration;
- watches rtnetlink link events and re-applies when a configured link appears
  (boot enumeration, hotplug, a mlx4 port-type switch re-registering netdevs);
- answers `ib40d link-ready NAME` (ib40-link@NAME.service) on a unix socket
  in /run/ib40, so per-link units cost a few ms each; each client has a
  deadline, so none can hold the daemon, hotplug or the other clients;
- sends READY=1 once every bond has all its slaves (STATUS= while waiting),
  or after --ready-timeout with a STATUS saying what is missing, so a dead
  port never holds network.target for ever;
- SIGHUP (systemctl reload) re-reads the config; an invalid one is logged and
  the running one kept. Stopping the service leaves the links as they are.

What it says to link-ready, and how, is control_protocol.py's.
"""

from __future__ import annotations

import contextlib
import fcntl
import gc
import marshal
import os
import selectors
import signal
import socket
import sys
import time
from pathlib import Path

# Everything of ib40's the daemon will ever run is imported at start: a
# package upgrade replaces these files under a running daemon (it is not
# restarted, so links don't flap), and a late import would mix two versions.
# (pyudev comes when a port first waits for udev: udevdb.py says why.)
from ib40d.core import control_protocol as protocol
from ib40d.system import notify, rtnl, trial, udevdb
from ib40d.commands import sync
from ib40d.system.apply_engine import apply_lock, converge
from ib40d.system.cliargs import config_path, default_root, load_config, sysroot
from ib40d.system.config_reader import config_files
from ib40d.core.control_protocol import CONTROL_SOCKET, MAX_REQUEST, Line
from ib40d.system.netlink import Netlink
from ib40d.system.observe import observe
from ib40d.core.errors import ConfigError, UserError
from ib40d.core.plan import missing_slaves

# One file per link the daemon has configured as it appeared, holding the
# device's ifindex: ib40-link@NAME.service, which starts right after (at
# boot, on hotplug), finds it, removes it and ends without starting Python
# to ask for what is already done. Any other start of the unit asks.
CONFIGURED_DIR = "/run/ib40/configured"
DEBOUNCE_S = 0.2  # link events come in bursts (rename, up, carrier): apply once per burst
# A control client has this long to send its request, and again to take the
# answer; then it is dropped. Requests are one short line ("apply NAME").
REQUEST_DEADLINE_S = 5.0
MAX_CLIENTS = 256  # more wait in the listen backlog until one is done
# What an apply did this time: logged at every request. The other lines say
# how things are (a lasting refusal comes back at every link event): logged
# when they change.
EVENTS = (protocol.DONE, protocol.APPLIED)


READY_TIMEOUT_S = 30.0


def add_arguments(parser) -> None:
    parser.add_argument("--ready-timeout", type=float, default=READY_TIMEOUT_S, metavar="S",
                        help=f"send READY=1 after S seconds even if a bond still misses slaves (default {READY_TIMEOUT_S:g})")
    parser.add_argument("--exit-when-ready", action="store_true",
                        help="exit after the first convergence (for tests and one-shot use)")


def default_args():
    """What argparse makes of ib40d.service's exact `ib40d daemon`, without
    argparse (see cli.main); a test compares the two."""
    from types import SimpleNamespace

    return SimpleNamespace(command="daemon", root=default_root(), config=None,
                           ready_timeout=READY_TIMEOUT_S, exit_when_ready=False)


def log(msg: str) -> None:
    print(msg, flush=True)


def answering(path: str) -> bool:
    """Whether a process listens on the unix socket PATH (a stale file: no)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
        probe.settimeout(REQUEST_DEADLINE_S)
        try:
            probe.connect(path)
        except (FileNotFoundError, ConnectionRefusedError):
            return False
        except BlockingIOError:
            return True  # listening, its backlog full
        with contextlib.suppress(OSError):
            # Ask something (an empty request, refused) and read the answer:
            # an older daemon, still running after an upgrade, dies of a
            # client that hangs up.
            probe.sendall(b"\n")
            while probe.recv(4096):
                pass
        return True


class Client:
    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.request = b""
        self.reply: bytes | None = None  # once the request is read
        self.deadline = time.monotonic() + REQUEST_DEADLINE_S


class ControlServer:
    """The control socket, served through the daemon's selector: clients are
    non-blocking, each with its own buffers, a bounded request and a
    deadline, so no client holds the daemon, hotplug or the other clients.
    One request per connection; answer(line) -> the bytes to send back."""

    def __init__(self, path: Path, sel: selectors.BaseSelector, answer):
        self.path, self.sel, self.answer = path, sel, answer
        self.clients: set[Client] = set()
        self.listening = False
        self.paused_until = 0.0
        self.sock = self._bind()
        self.inode = os.stat(path).st_ino
        self._listen(True)

    def _bind(self) -> socket.socket:
        self.path.parent.mkdir(mode=0o755, parents=True, exist_ok=True)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        # Locked, so that two daemons starting at once can't both find no
        # one answering and then take the path from each other.
        lock = os.open(self.path.parent, os.O_RDONLY | os.O_DIRECTORY)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if answering(str(self.path)):
                raise UserError(f"another ib40d daemon is answering on {self.path}; not starting")
            with contextlib.suppress(FileNotFoundError):
                self.path.unlink()  # left by a daemon that was killed
            # Root only (it changes the network) from the first instant, not
            # after a chmod: the umask is the process's, and we have one thread.
            umask = os.umask(0o177)
            try:
                sock.bind(str(self.path))
            finally:
                os.umask(umask)
            sock.listen(socket.SOMAXCONN)  # a burst of clients waits there, not refused
        except BaseException:
            sock.close()
            raise
        finally:
            os.close(lock)
        sock.setblocking(False)
        return sock

    def _listen(self, on: bool) -> None:
        if on != self.listening:
            if on:
                self.sel.register(self.sock, selectors.EVENT_READ, "control")
            else:
                self.sel.unregister(self.sock)
            self.listening = on

    def accept(self) -> None:
        while len(self.clients) < MAX_CLIENTS:
            try:
                conn, _ = self.sock.accept()
            except BlockingIOError:
                return
            except OSError as e:  # out of file descriptors: the others wait in the backlog
                log(f"control: cannot accept a client: {e.strerror or e}; trying again in 1 s")
                self._listen(False)
                self.paused_until = time.monotonic() + 1
                return
            conn.setblocking(False)
            client = Client(conn)
            self.clients.add(client)
            self.sel.register(conn, selectors.EVENT_READ, client)
        self._listen(False)

    def serve(self, client: Client) -> None:
        """Read the client's request, answer it, send the answer: as far as
        it goes without waiting."""
        if client not in self.clients:
            return  # dropped earlier in the same round of events
        try:
            if client.reply is None:
                self._read(client)
            if client.reply is not None:
                self._write(client)
        except ConnectionError:
            self.drop(client)  # it hung up; the work it asked for, if any, is done anyway
        except Exception as e:
            log(f"control: dropped a client after an unexpected error: {e!r}")
            print_traceback()
            self.drop(client)

    def _read(self, client: Client) -> None:
        try:
            data = client.sock.recv(MAX_REQUEST + 1 - len(client.request))
        except BlockingIOError:
            return
        client.request += data
        line = protocol.request_line(client.request, closed=not data)
        if line is None:
            return  # more to come
        if not client.request:
            self.drop(client)  # hung up without a word (a liveness probe)
            return
        if protocol.too_long(line):
            client.reply = protocol.error("request too long")
        else:  # a line, or what came before the client half-closed
            client.reply = self.answer(line.decode(errors="replace"))
        client.deadline = time.monotonic() + REQUEST_DEADLINE_S

    def _write(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.reply)
        except BlockingIOError:
            sent = 0
        client.reply = client.reply[sent:]
        if client.reply:
            self.sel.modify(client.sock, selectors.EVENT_WRITE, client)
        else:
            self.drop(client)

    def drop(self, client: Client) -> None:
        if client in self.clients:
            self.clients.remove(client)
            self.sel.unregister(client.sock)
            client.sock.close()

    def tick(self) -> None:
        """Drop the clients past their deadline; listen again when there is room."""
        now = time.monotonic()
        dropped = 0
        for client in [c for c in self.clients if c.deadline <= now]:
            # A last look first: its request may have come while we were busy.
            self.serve(client)
            if client in self.clients and client.deadline <= now:
                self.drop(client)
                dropped += 1
        if dropped:
            log(f"control: dropped {dropped} client(s) that did not send a request, "
                f"or take its answer, within {REQUEST_DEADLINE_S:g} s")
        if not self.listening and len(self.clients) < MAX_CLIENTS and now >= self.paused_until:
            self._listen(True)

    def close(self) -> None:
        for client in list(self.clients):
            self.drop(client)
        self._listen(False)
        self.sock.close()
        with contextlib.suppress(OSError):
            if os.stat(self.path).st_ino == self.inode:  # ours, not a later daemon's
                self.path.unlink()


class Daemon:
    def __init__(self, args):
        self.args = args
        self.root = sysroot(args)
        # Read before parsing: what check_rules may record as synced must
        # be no newer than what self.cfg was parsed from.
        self.cfg_bytes = sync.seen_bytes(config_path(args))
        self.cfg = load_config(args)
        self.cfg_stamp = config_stamp(config_path(args))
        self.nl = Netlink()
        self.ready_sent = False
        self.started = time.monotonic()
        self.pending: set[str] = set()
        self.pending_since: float | None = None
        self.stop = False
        self.last_report: dict[str | None, set[Line]] = {}
        self.seen: dict[str, tuple] = {}  # configured name -> what its last event said
        # Ports udev has not finished with (renamed, rules run) are left
        # alone until it has, as systemd-networkd does (udevdb.py says why).
        self.udev = udevdb.Watcher()
        self.not_yet: frozenset[str] = frozenset()
        self.following_udev = False  # its announcements are in the selector
        self.marked: dict[str, str] = {}  # name -> the ifindex its CONFIGURED_DIR mark was made for
        # Started on a file `ib40d try` rolled back (a restart after the
        # trial): there is no other to run, so none is applied until the
        # file changes. The reason, or None.
        self.rolled_back = trial.rolled_back(self.root, config_path(args))
        self.last_refusal: str | None = None  # a refused reload is logged once, not at every event
        self.held_by_trial = False  # an apply was held off by a trial: all is applied again after it

    # ------------------------------------------------------------ applying

    def converge(self, only: str | None = None) -> tuple[list[Line], bool]:
        """Apply (all, or one link and its bond); log what changed.
        Returns the answer's lines and whether everything converged."""
        if config_stamp(config_path(self.args)) != self.cfg_stamp:
            # Edited since we read it (and `ib40d apply` run, whose changes
            # woke us): applying the old file would undo the new one.
            self.load_new_config()
        if self.rolled_back:
            return [Line(protocol.NOTE, self.rolled_back)], True
        not_yet = frozenset(self.udev.uninitialized(self.cfg.links))
        if not_yet - self.not_yet:
            log(f"waiting for udev to finish with {', '.join(sorted(not_yet - self.not_yet))}")
        self.not_yet = not_yet

        def work():
            result = converge(self.cfg, self.nl, self.root, only, not_yet, self.udev.uninitialized)
            return [(line.kind, line.text) for line in protocol.result_lines(result)], result.ok, result.made_true

        try:
            with apply_lock(self.root):
                if held := trial.held_by_trial(self.root):  # `ib40d try` owns the links for now
                    log(f"{only or 'all'}: {held}")
                    self.held_by_trial = True
                    return [Line(protocol.NOTE, held)], True
                kinds_texts, ok, made_true = in_child(work)
        except OSError as e:
            # A dump interrupted by a burst of changes (EINTR/ENOBUFS...):
            # log it and let the next event (or request) try again.
            log(f"{only or 'all'}: could not read the kernel's links: {e}; will retry")
            return [Line(protocol.ERROR, f"could not read the kernel's links: {e}")], False
        lines = [Line(kind, text) for kind, text in kinds_texts]
        if only is None:
            self.mark_configured(ok, made_true)
        seen = self.last_report.get(only, set())
        for line in lines:
            if line.kind in EVENTS or (line not in seen and line.kind != protocol.NOTHING_TO_DO):
                log(f"{only or 'all'}: {line}")
        self.last_report[only] = {line for line in lines if line.kind not in EVENTS}
        return lines, ok

    def mark_configured(self, ok: bool, made_true: list[str]) -> None:
        """After an apply of the whole file: CONFIGURED_DIR names the links
        it saw and made true, by ifindex (not a port that appeared as it
        ran: its event's apply is still to come); after a refusal, none
        (their units then ask, and fail with the refusal as before)."""
        where = self.root.path(CONFIGURED_DIR)
        done = {}
        if not ok:
            self.marked.clear()
        if ok:
            for name in made_true:
                with contextlib.suppress(OSError):
                    done[name] = self.root.path(f"/sys/class/net/{name}/ifindex").read_text().strip()
        try:
            where.mkdir(mode=0o755, parents=True, exist_ok=True)
            for old in os.listdir(where):
                if old not in done:
                    self.unmark_configured(old)
                    self.marked.pop(old, None)
            for name, index in done.items():
                if self.marked.get(name) == index:
                    continue  # marked once per device: a unit that took it must not find it again
                self.marked[name] = index
                tmp = where / f".{name}.tmp"
                tmp.write_text(index + "\n")
                os.replace(tmp, where / name)
        except OSError as e:  # the units ask the daemon instead, as without it
            log(f"warning: cannot record the configured links in {where}: {describe(e)}")

    def unmark_configured(self, name: str) -> None:
        with contextlib.suppress(OSError):
            self.root.path(CONFIGURED_DIR).joinpath(name).unlink()

    def after_trial(self) -> None:
        """Links that appeared or changed while a trial held the daemon off
        get their apply once it is over (confirmed, rolled back or killed):
        the events that asked for it are gone."""
        if self.held_by_trial and trial.running_trial(self.root) is None:
            self.held_by_trial = False
            self.pending |= set(self.cfg.names())
            if self.pending_since is None:
                self.pending_since = time.monotonic()

    def check_ready(self) -> None:
        if self.ready_sent:
            return
        if self.rolled_back:
            notify.ready(self.rolled_back)
            self.ready_sent = True
            log(f"ready: {self.rolled_back}")
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

    def on_udev_progress(self) -> None:
        """A port udev was busy with may be ready now: apply it (after the
        debounce, with whatever else is pending)."""
        if self.not_yet and self.udev.uninitialized(self.not_yet) != self.not_yet:
            self.pending |= self.not_yet
            if self.pending_since is None:
                self.pending_since = time.monotonic()

    def follow_udev(self, sel: selectors.BaseSelector) -> None:
        """A port waits for udev: from now on, udev's announcements wake us
        (udevdb.py opens them on this first need). One finished before we
        listened is found by looking once more now."""
        if self.not_yet and not self.following_udev:
            self.following_udev = True
            try:
                if (fd := self.udev.fileno()) is not None:
                    sel.register(fd, selectors.EVENT_READ, "udev")
            except (OSError, ImportError) as e:
                log(f"warning: cannot follow udev's announcements ({e}); "
                    "looking at its database every second instead")
            self.on_udev_progress()

    def flush_pending(self) -> None:
        if self.pending_since is None or time.monotonic() - self.pending_since < DEBOUNCE_S:
            return
        self.pending.clear()
        self.pending_since = None
        self.converge()
        self.check_ready()

    def answer(self, line: str) -> bytes:
        """One request line -> the answer (control_protocol.py)."""
        try:
            name = protocol.requested_link(line)
        except protocol.ProtocolError as e:
            return protocol.error(str(e))
        if name not in self.cfg.names():
            return protocol.error(f"{name} is not configured in {self.cfg.files[0]}")
        self.unmark_configured(name)  # asked: the answer says it, not the mark
        lines, ok = self.converge(name)
        return protocol.answer(lines, protocol.OK if ok else protocol.REFUSED)

    def load_new_config(self) -> bool:
        if refused := trial.reload_refused(self.root, config_path(self.args)):
            if refused != self.last_refusal:
                log(refused)
            self.last_refusal = refused
            return False
        self.last_refusal = None
        self.cfg_stamp = config_stamp(config_path(self.args))
        try:
            self.cfg = load_config(self.args)
        except ConfigError as e:
            for problem in e.problems:
                log(f"reload refused: {problem}")
            notify.status("config reload refused: invalid configuration; running the previous one")
            return False
        self.rolled_back = None
        log("configuration reloaded")
        return True

    def reload(self) -> None:
        """SIGHUP: `systemctl reload ib40d` (after its ExecReload check)."""
        # Before the first READY=1, RELOADING=1 then READY=1 would end the
        # start while bonds still miss slaves: the start's READY comes as usual.
        notifying = self.ready_sent
        if notifying:
            notify.reloading()
        reloaded = self.load_new_config()
        if reloaded:
            self.converge()
            self.check_ready()
        if notifying:
            notify.ready("configuration reloaded" if reloaded else None)

    def record_synced(self) -> None:
        """Record the files read at start as synced, for ib40-sync.service's
        ExecCondition (the record is in /run, gone after a reboot): else
        the first write to /etc of each boot costs a Python start for
        nothing. Done before the first apply, as /etc is written during
        boot; check_rules() then makes it true, or takes it back."""
        if self.root.is_live:
            with contextlib.suppress(OSError):  # no record: one more sync, later
                sync.record_seen(self.root, self.cfg_bytes)

    def check_rules(self) -> None:
        """The udev naming rules are written by `ib40d sync` when the config
        is saved; if that did not happen (the file was written while the
        system was down, or ib40-sync.path was stopped), the ports keep their
        kernel names. Write them now and say so: the names take effect when
        the devices are next added, so this comes after the first apply."""
        if not self.root.is_live:
            return
        try:
            result = sync.sync(self.root, self.cfg, reload=True, sources=config_path(self.args))
        except OSError as e:
            # /etc read-only (a rescue boot, an immutable image) or full: the
            # links matter more than their names. Not synced: take the record back.
            with contextlib.suppress(OSError):
                self.root.path(sync.SEEN_COPY).unlink()
            log(f"warning: could not write the generated files for {self.cfg.files[0]} ({describe(e)}); "
                "the links are applied anyway")
            return
        if result.rules_changed:
            log(f"warning: the udev rules did not match {self.cfg.files[0]}; "
                + "; ".join(result.changed + result.notes))

    # ---------------------------------------------------------------- loop

    def run(self) -> int:
        sel = selectors.DefaultSelector()
        # First: next to a running daemon, refuse before anything is done.
        control = ControlServer(self.root.path(CONTROL_SOCKET), sel, self.answer)
        monitor = rtnl.LinkMonitor()  # subscribed before the first apply: no event is missed
        sel.register(monitor, selectors.EVENT_READ, "netlink")
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
        # The bonds first: everything else at start waits until they are
        # made and have the slaves present (or have been tried).
        self.record_synced()
        self.converge()
        self.check_ready()
        self.check_rules()
        if self.args.exit_when_ready and self.ready_sent:
            self.stop = True
        while not self.stop:
            self.follow_udev(sel)
            timeout = 1.0
            if self.pending_since is not None:
                timeout = max(0.0, DEBOUNCE_S - (time.monotonic() - self.pending_since))
            for key, _ in sel.select(timeout):
                if key.data == "netlink":
                    self.on_link_event(monitor)
                elif key.data == "control":
                    control.accept()
                elif key.data == "udev":
                    self.udev.drain()  # which ports are ready: on_udev_progress() below
                elif key.data == "signal":
                    os.read(wake_r, 64)
                    while signals:
                        signum = signals.pop(0)
                        if signum == signal.SIGHUP:
                            self.reload()
                        else:
                            self.stop = True
                else:
                    control.serve(key.data)
            control.tick()
            self.after_trial()
            self.on_udev_progress()
            self.flush_pending()
            self.check_ready()
            if self.args.exit_when_ready and self.ready_sent:
                break
        notify.stopping()
        for name in self.cfg.links:  # no one left to keep them true
            self.unmark_configured(name)
        control.close()
        monitor.close()
        self.nl.close()
        return 0


def in_child(work):
    """work() in a forked child -> what it returned (marshal's types).

    The daemon stays up for as long as the machine runs, and what it imports
    stays resident: pyroute2 (imported on the first write, netlink.py)
    doubled it. So every apply runs in a child that inherits everything
    else imported at start, writes, and exits with its pyroute2; the daemon
    itself only reads (stdlib sockets). A child costs a fork, not a Python
    start; a converged machine's apply imports nothing. An OSError in the
    child is raised here again; anything else it raised is a RuntimeError
    here (its traceback is in the log), as it would have crashed the daemon."""
    sys.stdout.flush()  # or the child, which flushes as it exits, prints it again
    sys.stderr.flush()
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: never returns
        # No cyclic garbage collection in a process that lives for one
        # apply: each pass walks every object inherited from the daemon,
        # writing to their pages, which the fork then copies. Measured in
        # the lab's trixie guest (an idle one, median of 7): 0.34 s of CPU
        # and 2637 page faults per child with it, 0.31 s and 2285 without.
        gc.disable()
        try:
            os.close(read_end)
            try:
                payload = ("ok", work())
            except OSError as e:
                payload = ("oserror", e.errno, e.strerror or str(e))
            except BaseException as e:
                print_traceback()
                payload = ("crash", f"{type(e).__name__}: {e}")
            data = marshal.dumps(payload)
            while data:
                data = data[os.write(write_end, data):]
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(0)
    os.close(write_end)
    with open(read_end, "rb") as pipe:
        data = pipe.read()
    _, status = os.waitpid(pid, 0)
    if not data:
        raise RuntimeError(f"the apply's child process ended without an answer (wait status {status})")
    payload = marshal.loads(data)
    if payload[0] == "oserror":
        raise OSError(payload[1], payload[2]) if payload[1] else OSError(payload[2])
    if payload[0] == "crash":
        raise RuntimeError(f"the apply's child process failed: {payload[1]}")
    return payload[1]


def print_traceback() -> None:
    """The exception being handled, to the journal. traceback is imported
    here, on a crash, not at every start (it brings linecache and tokenize)."""
    import traceback

    traceback.print_exc()


def describe(e: OSError) -> str:
    """'PATH: Read-only file system', not '[Errno 30] ...'."""
    return f"{e.filename}: {e.strerror}" if e.filename and e.strerror else str(e)


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
    try:
        return daemon.run()
    except BrokenPipeError:
        # cli.main exits 0 on it (`ib40d status | head`); here it is a crash,
        # which Restart=on-failure must see.
        print_traceback()
        return 1
