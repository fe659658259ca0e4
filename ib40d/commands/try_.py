# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d try`: apply a configuration, keep it only if it is confirmed.

Check FILE (an invalid one touches nothing), record the links the running
and the new configuration name, apply, then wait: Enter on a terminal, or
`ib40d try --confirm` from another shell (a session cut off by the change
cannot type). Confirmed: FILE becomes /etc/ib40.conf and the daemon reloads.
Otherwise (time out, SIGINT, SIGTERM, a failed apply): the recorded links
are put back (core/restore.py) and /etc/ib40.conf is left as it was.
How the daemon stays out of the way: system/trial.py.
"""

from __future__ import annotations

import os
import selectors
import signal
import sys
import time

from ib40d.core.errors import ConfigError, UserError
from ib40d.system import trial
from ib40d.system.cliargs import DEFAULT_CONFIG, config_path, load_config, sysroot
from ib40d.system.config_reader import config_files

DEFAULT_TIMEOUT_S = 120.0
MAX_TIMEOUT_S = 86400  # a day: a trial is a safety net, not a state to live in
LOCK_WAIT_S = 30.0


def add_arguments(parser) -> None:
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT_S, metavar="SECONDS",
                        help=f"roll back unless confirmed within SECONDS (default {DEFAULT_TIMEOUT_S:g})")
    parser.add_argument("--confirm", action="store_true",
                        help="keep the change of the `ib40d try` running in another shell")


class Output:
    """stdout/stderr that survive the terminal going away (SIGHUP: the SSH
    session the change cut off): the rollback must not die of EIO."""

    def __init__(self):
        self.lines: list[str] = []

    def say(self, line: str, err: bool = False) -> None:
        self.lines.append(line)
        try:
            print(line, file=sys.stderr if err else sys.stdout, flush=True)
        except OSError:
            self.detach()

    @staticmethod
    def detach() -> None:
        null = os.open(os.devnull, os.O_WRONLY)
        for fd in (1, 2):
            os.dup2(null, fd)
        os.close(null)


def run(args) -> int:
    root = sysroot(args)
    if args.confirm:
        ok, lines = trial.send_confirm(root)
        for line in lines:
            print(line, file=sys.stdout if ok else sys.stderr)
        return 0 if ok else 1
    if not 0 < args.timeout <= MAX_TIMEOUT_S:  # selectors refuse a wait of years (OverflowError)
        raise UserError(f"--timeout must be more than 0 and at most {MAX_TIMEOUT_S} seconds", status=2)
    path = config_path(args)
    cfg = load_config(args)  # before anything: an invalid FILE touches nothing
    target = str(root.path(DEFAULT_CONFIG))
    same = os.path.realpath(path) == os.path.realpath(target)
    if not same and (len(config_files(path)) > 1 or len(config_files(target)) > 1):
        raise UserError(f"{path} or {target} has drop-ins (*.conf in its .d directory): what is tried would not be "
                        f"what {target} configures once confirmed; try {target} itself", status=2)
    old_names = _running_names(target, same)
    holder = trial.running_trial(root)
    if holder is not None:
        raise UserError(f"another trial is running (pid {holder['pid']}, {holder['config']}); nothing was changed")
    return Trial(root, cfg, path, target, same, args.timeout).run(set(cfg.names()) | old_names)


def _running_names(target: str, same: bool) -> set[str]:
    """The links the configuration in force names: recorded too, so that a
    link the new file drops is put back as well. When FILE is /etc/ib40.conf
    itself, its old text is gone; the kernel's state of the new names is
    what can be recorded."""
    if same:
        return set()
    from ib40d.system.config_reader import load

    try:
        return set(load(target).names())
    except (ConfigError, OSError):
        return set()


class Trial:
    def __init__(self, root, cfg, path: str, target: str, same: bool, timeout: float):
        self.root, self.cfg, self.path, self.target, self.same, self.timeout = root, cfg, path, target, same, timeout
        self.out = Output()
        self.signals: list[int] = []

    def run(self, names: set[str]) -> int:
        from ib40d.core.control_protocol import result_lines
        from ib40d.system.apply_engine import LockError, apply_lock, converge
        from ib40d.system.netlink import Netlink

        wake_r, wake_w = os.pipe()
        os.set_blocking(wake_w, False)

        def on_signal(signum, _frame):
            self.signals.append(signum)
            os.write(wake_w, b"x")

        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, on_signal)
        sock = trial.listen(self.root)
        nl = Netlink()
        try:
            try:
                with apply_lock(self.root, LOCK_WAIT_S, lambda line: self.out.say(f"ib40d try: {line}", err=True)):
                    # Marked before anything is written: from here on the daemon holds back.
                    trial.write_marker(self.root, time.time() + self.timeout, self.path)
                    try:
                        snap = trial.record(nl, self.root, names)
                    except OSError as e:
                        raise UserError(f"could not read the kernel's links: {e}; nothing was changed") from None
                    try:
                        result = converge(self.cfg, nl, self.root)
                        snap.note_applied(result.done)
                        failure = None if result.ok else "the apply failed"
                    except OSError as e:
                        result, failure = None, f"the apply failed: {e}"
            except LockError as e:
                trial.remove(self.root, trial.TRIAL_FILE)
                raise UserError(f"{e}; nothing was changed") from None
            if result is not None:
                for line in result_lines(result):
                    self.out.say(str(line))
            if self.cfg.cards:
                self.out.say("note: port types ([card]) are not part of a trial; `ib40d porttype` sets them")
            conn = None
            try:
                if failure is None:
                    trial.write_marker(self.root, time.time() + self.timeout, self.path)
                    failure, conn = self.wait(sock, wake_r)
                if failure is None:
                    failure = self.commit(apply_lock, conn)
                    if failure is None:
                        return 0
            except Exception as e:  # whatever went wrong, the links the trial changed go back
                failure = f"the trial failed ({type(e).__name__}: {e})"
            self.roll_back(snap, nl, apply_lock, failure, conn)
            return 1
        finally:
            nl.close()
            sock.close()
            trial.remove(self.root, trial.CONFIRM_SOCKET)
            marker = trial.running_trial(self.root)
            if marker is not None and marker["pid"] == os.getpid():
                trial.remove(self.root, trial.TRIAL_FILE)

    def wait(self, sock, wake_r):
        """-> (None, the confirming connection or None) when confirmed,
        (why not, None) otherwise."""
        sel = selectors.DefaultSelector()
        sel.register(sock, selectors.EVENT_READ, "confirm")
        sel.register(wake_r, selectors.EVENT_READ, "signal")
        tty = sys.stdin.isatty()
        if tty:
            sel.register(sys.stdin, selectors.EVENT_READ, "tty")
        how = "press Enter, or run" if tty else "run"
        self.out.say(f"keep this configuration? {how} `ib40d try --confirm` within {self.timeout:g} s; "
                     "otherwise it is rolled back")
        deadline = time.monotonic() + self.timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return f"not confirmed within {self.timeout:g} s", None
            for key, _ in sel.select(left):
                if key.data == "confirm":
                    conn, _ = sock.accept()
                    if trial.read_request(conn) == trial.CONFIRM:
                        return None, conn
                    conn.close()
                elif key.data == "tty":
                    if sys.stdin.readline():
                        return None, None
                    sel.unregister(sys.stdin)  # end of input: only --confirm can confirm now
                else:
                    os.read(wake_r, 64)
                    while self.signals:
                        signum = self.signals.pop(0)
                        if signum != signal.SIGHUP:
                            return f"interrupted by {signal.Signals(signum).name}", None
                        # The terminal is gone (often: the change cut the SSH
                        # session off). Wait for --confirm or the deadline.
                        if tty:
                            sel.unregister(sys.stdin)
                            tty = False
                        Output.detach()

    def commit(self, apply_lock, conn) -> str | None:
        """Keep the change: FILE becomes the configuration. Returns None, or
        why it could not be kept (then it is rolled back)."""
        try:
            with apply_lock(self.root, None):
                if not self.same:
                    data = open(self.path, "rb").read()
                    mode = os.stat(self.target).st_mode & 0o7777 if os.path.exists(self.target) else 0o644
                    self.root.write_atomic(DEFAULT_CONFIG, data.decode("utf-8"), mode)
                trial.remove(self.root, trial.REJECTED_FILE)
                trial.remove(self.root, trial.TRIAL_FILE)
        except (OSError, UnicodeDecodeError) as e:
            return f"confirmed, but {self.target} could not be written ({e})"
        lines = ["confirmed",
                 f"{self.target} kept as tried" if self.same else f"{self.target} now has the content of {self.path}",
                 trial.tell_daemon_to_reload(self.root)]
        for line in lines[1:]:
            self.out.say(f"ib40d try: {line}")
        self._answer(conn, lines)
        return None

    def roll_back(self, snap, nl, apply_lock, why: str, conn) -> None:
        err = lambda line: self.out.say(line, err=True)  # noqa: E731
        err(f"ib40d try: {why}; rolling back")
        try:
            with apply_lock(self.root, None):
                result, left = trial.rollback(snap, nl, self.root)
                if self.same:
                    trial.reject(self.root, self.path)
                trial.remove(self.root, trial.TRIAL_FILE)
        except OSError as e:
            err(f"ib40d try: the rollback could not read the kernel's links: {e}")
            self._answer(conn, [f"refused: {why}", "rollback failed"])
            return
        for action in result.done:
            err(f"restored: {action.describe()}")
        for line in result.notes + result.warnings:
            err(f"note: {line}")
        for line in result.errors:
            err(f"error: {line}")
        for action in left:
            err(f"not restored: {action.describe()}")
        if not result.done:
            err("restored: nothing to restore (the links were as before)")
        err(f"ib40d try: {'rolled back' if not left and not result.errors else 'rolled back in part'}; "
            f"{self.target} left as it was")
        self._answer(conn, [f"refused: {why}; rolled back"])

    @staticmethod
    def _answer(conn, lines: list[str]) -> None:
        if conn is None:
            return
        try:
            conn.sendall("".join(line + "\n" for line in lines).encode())
        except OSError:
            pass
        conn.close()
