# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d bench`: the HOWTO's iperf3 runs, as one sweep.

The HOWTO runs iperf3 by hand with -P 2, 4 and 8 ("software bottleneck in
iperf3") and then several iperf3 instances on their own ports, to find what
extracts the most from a 40G link. Here `--serve` starts N iperf3 servers on
consecutive ports of the peer, and the client runs, one after the other,
1 instance with -P 1, 2, 4, 8, then 2, 4... instances at once with one stream
each, every run with -J; the table shows each setting and the best, and the
best against what this machine's PCIe slot and port can carry (doctor).

iperf3 runs as child processes we own: each in its own session (Ctrl-C in the
terminal reaches us, not them), with PR_SET_PDEATHSIG so the kernel stops
them if we die, and terminated in a `finally` otherwise. (runner.run waits
for a program to finish; servers and parallel clients must not, hence
Popen here.)
"""

from __future__ import annotations

import argparse
import ctypes
import ipaddress
import json
import os
import signal
import subprocess
import sys
import threading
import time

from ib40d.core.records import dataclass, field
from ib40d.system import addrdump, runner
from ib40d.commands import doctor
from ib40d.core import iperf
from ib40d.system.cliargs import sysroot
from ib40d.core.errors import UserError
from ib40d.system.sysroot import SysRoot

DEFAULT_PORT = 5201
DEFAULT_STREAMS = (1, 2, 4, 8)
DEFAULT_INSTANCES = (1, 2, 4)
CONNECT_TIMEOUT_MS = 3000
# A run gets -t seconds plus this much for connecting and exchanging results.
RUN_SLACK_S = 20
SERVER_START_S = 5
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class Setting:
    instances: int
    streams: int  # -P of each instance

    def label(self) -> str:
        return (f"{self.instances} instance{'s' if self.instances != 1 else ''} x "
                f"{self.streams} stream{'s' if self.streams != 1 else ''}")


@dataclass
class Run:
    setting: Setting
    results: list[iperf.IperfResult] = field(default_factory=list)

    @property
    def sent_gbit_s(self) -> float:
        return sum(r.sent_bps or 0 for r in self.results) / 1e9

    @property
    def received_gbit_s(self) -> float:
        return sum(r.received_bps or 0 for r in self.results) / 1e9

    @property
    def retransmits(self) -> int:
        return sum(r.retransmits or 0 for r in self.results)

    def as_dict(self) -> dict:
        return {
            "instances": self.setting.instances,
            "streams": self.setting.streams,
            "sent_gbit_s": round(self.sent_gbit_s, 3),
            "received_gbit_s": round(self.received_gbit_s, 3),
            "retransmits": self.retransmits,
            "per_instance": [{"remote": r.remote, "sent_gbit_s": r.sent_gbit_s,
                              "received_gbit_s": r.received_gbit_s, "retransmits": r.retransmits}
                             for r in self.results],
        }


# ----------------------------------------------------------------- pure parts

def parse_counts(text: str) -> tuple[int, ...]:
    """"1,2,4,8" -> (1, 2, 4, 8); for argparse."""
    try:
        counts = tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r}: expected numbers like 1,2,4,8") from None
    if not counts or any(not 1 <= c <= 128 for c in counts):
        raise argparse.ArgumentTypeError(f"{text!r}: each count must be 1..128")
    return counts


def sweep(streams: tuple[int, ...], instances: tuple[int, ...]) -> list[Setting]:
    """One instance with each -P, then each number of instances (>1) with
    one stream each: the HOWTO's two ways of getting past one iperf3 thread."""
    settings = [Setting(1, p) for p in streams]
    settings += [Setting(n, 1) for n in instances if n > 1 and Setting(n, 1) not in settings]
    return settings


def client_argv(peer: str, port: int, setting: Setting, seconds: int, bind: str | None) -> list[str]:
    argv = ["iperf3", "-c", peer, "-p", str(port), "-P", str(setting.streams), "-t", str(seconds),
            "-J", "--connect-timeout", str(CONNECT_TIMEOUT_MS)]
    return argv + (["-B", bind] if bind else [])


def server_argv(port: int, bind: str | None) -> list[str]:
    # --forceflush: the "Server listening" line must reach our pipe at once.
    return ["iperf3", "-s", "-p", str(port), "--forceflush"] + (["-B", bind] if bind else [])


def best_run(runs: list[Run]) -> Run | None:
    return max(runs, key=lambda r: r.received_gbit_s, default=None)


def report(peer: str, port: int, seconds: int, runs: list[Run], limit: float | None, why: str) -> dict:
    best = best_run(runs)
    return {
        "peer": peer,
        "port": port,
        "time_s": seconds,
        "runs": [r.as_dict() for r in runs],
        "best": best.as_dict() if best else None,
        "limit_gbit_s": None if limit is None else round(limit, 2),
        "limit_reason": why,
        "best_fraction_of_limit": round(best.received_gbit_s / limit, 3) if best and limit else None,
    }


def render_table(rep: dict) -> str:
    lines = [f"{'instances':>9} {'streams':>7} {'sent Gbit/s':>12} {'received Gbit/s':>16} {'retransmits':>11}"]
    for r in rep["runs"]:
        lines.append(f"{r['instances']:>9} {r['streams']:>7} {r['sent_gbit_s']:>12.2f} "
                     f"{r['received_gbit_s']:>16.2f} {r['retransmits']:>11}")
    best = rep["best"]
    if best:
        setting = Setting(best["instances"], best["streams"])
        lines.append(f"best: {setting.label()}: {best['received_gbit_s']:.2f} Gbit/s received")
    if rep["limit_gbit_s"] is not None:
        share = f"; best is {rep['best_fraction_of_limit']:.0%} of it" if rep["best_fraction_of_limit"] else ""
        lines.append(f"limit here: {rep['limit_gbit_s']:.1f} Gbit/s ({rep['limit_reason']}){share}")
        lines.append("the link carries the lesser of both machines' limits: run `ib40d doctor` on the peer too")
    else:
        lines.append(f"limit here: unknown ({rep['limit_reason']})")
    return "\n".join(lines)


def explain_error(error: str, peer: str, port: int) -> str:
    """iperf3's error text -> one line saying what to do."""
    low = error.lower()
    if "unable to connect" in low or "no route" in low or "refused" in low or "timed out" in low:
        return (f"no iperf3 server answers at {peer} port {port} ({error}); "
                f"run `ib40d bench --serve` on the peer (with as many --instances as here)")
    return f"iperf3 to {peer} port {port}: {error}"


# ----------------------------------------------------------------- processes

try:
    # Looked up here, not in the child: between fork and exec only a plain
    # call is safe (dlopen could wait on a lock another thread held).
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):
    _prctl = None


def _die_with_parent() -> None:
    """In the child before exec: SIGTERM when the process that started us
    ends, so no iperf3 outlives a killed bench."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


class Children:
    """The iperf3 processes of one bench; all stopped on exit."""

    def __init__(self):
        self.procs: list[subprocess.Popen] = []

    def start(self, argv: list[str]) -> subprocess.Popen:
        exe = runner.which(argv[0])
        if exe is None:
            raise runner.ToolMissing(f"{argv[0]}: not installed (apt install {argv[0]})")
        proc = subprocess.Popen([exe, *argv[1:]], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, env=dict(os.environ, LC_ALL="C"),
                                start_new_session=True, preexec_fn=_die_with_parent)
        self.procs.append(proc)
        return proc

    def stop(self) -> None:
        for p in self.procs:
            if p.poll() is None:
                p.terminate()
        for p in self.procs:
            try:
                p.wait(timeout=3)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
            if p.stdout:
                p.stdout.close()
        self.procs.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def _why(log: list[str], proc: subprocess.Popen) -> str:
    """The line of a server's output that says what went wrong: iperf3 ends
    with "iperf3: exiting" after the "iperf3: error - ..." that matters."""
    errors = [line for line in log if line.startswith("iperf3: error")]
    return errors[-1] if errors else (log[-1] if log else f"exit status {proc.poll()}")


class _Terminated(Exception):
    pass


def _raise_terminated(signum, frame):
    raise _Terminated()


class Progress:
    """One line on stderr, rewritten in place on a terminal."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()

    def show(self, text: str, final: bool = False) -> None:
        if self.tty:
            self.stream.write("\r\033[K" + text + ("\n" if final else ""))
        elif final:
            self.stream.write(text + "\n")
        self.stream.flush()


# ----------------------------------------------------------------- client

def run_setting(children: Children, peer: str, base_port: int, setting: Setting, seconds: int,
                bind: str | None) -> Run:
    procs = [(base_port + i, children.start(client_argv(peer, base_port + i, setting, seconds, bind)))
             for i in range(setting.instances)]
    deadline = time.monotonic() + seconds + RUN_SLACK_S
    run = Run(setting)
    try:
        for port, proc in procs:
            try:
                out, _ = proc.communicate(timeout=max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                raise UserError(f"iperf3 to {peer} port {port} gave no result after "
                                f"{seconds + RUN_SLACK_S} s; gave up") from None
            try:
                result = iperf.parse_json(out)
            except ValueError:
                last = out.strip().splitlines()[-1] if out.strip() else f"exit status {proc.returncode}"
                raise UserError(f"iperf3 to {peer} port {port}: {last}") from None
            if result.error:
                raise _RunError(result.error, port)
            run.results.append(result)
    finally:
        children.stop()
    return run


class _RunError(Exception):
    def __init__(self, error: str, port: int):
        super().__init__(error)
        self.error, self.port = error, port


def client(args) -> int:
    settings = sweep(args.streams, args.instances)
    progress = Progress()
    runs: list[Run] = []
    with Children() as children:
        for i, setting in enumerate(settings, 1):
            progress.show(f"bench: [{i}/{len(settings)}] {setting.label()}, {args.time} s ...",
                          final=not progress.tty)
            for attempt in range(3):
                try:
                    run = run_setting(children, args.peer, args.port, setting, args.time, args.bind)
                    break
                except _RunError as e:
                    # The server takes a moment to accept the next test after
                    # the previous one; anything else is final.
                    if "busy" not in e.error or attempt == 2:
                        raise UserError(explain_error(e.error, args.peer, e.port)) from None
                    time.sleep(1)
            runs.append(run)
            progress.show(f"bench: [{i}/{len(settings)}] {setting.label()}: "
                          f"{run.received_gbit_s:.2f} Gbit/s", final=True)
    limit, why = doctor.local_limit(sysroot(args))
    rep = report(args.peer, args.port, args.time, runs, limit, why)
    print(json.dumps(rep, indent=2) if args.json else render_table(rep))
    return 0


# ----------------------------------------------------------------- server

def _drain(proc: subprocess.Popen, port: int, settled: threading.Event, log: list[str],
           progress: Progress) -> None:
    """Read a server's output for as long as it runs (a full pipe would stall
    it); note when it listens and each test it serves."""
    for line in proc.stdout:
        line = line.rstrip()
        if not line or set(line) == {"-"}:
            continue
        log.append(line)
        del log[:-20]
        if line.startswith("Server listening on"):
            settled.set()
        elif line.startswith("Accepted connection from"):
            progress.show(f"bench: port {port}: test from {line.split('from', 1)[1].split(',')[0].strip()}",
                          final=True)
    settled.set()  # output ended: the server failed or was stopped


def serve(args) -> int:
    n = max(args.instances)
    ports = [args.port + i for i in range(n)]
    progress = Progress()
    with Children() as children:
        # All servers first, then their reader threads: no fork while our
        # own threads run.
        servers = [(port, children.start(server_argv(port, args.bind)), threading.Event(), [])
                   for port in ports]
        for port, proc, settled, log in servers:
            threading.Thread(target=_drain, args=(proc, port, settled, log, progress), daemon=True).start()
        for port, proc, settled, log in servers:
            # settled: it listens, or its output ended (then it is exiting)
            settled.wait(SERVER_START_S)
            if not any(line.startswith("Server listening on") for line in log) or proc.poll() is not None:
                time.sleep(0.1)  # let the reader collect the error line
                raise UserError(f"iperf3 server on port {port} did not start: {_why(log, proc)}")
        where = args.bind or "all addresses"
        progress.show(f"bench: serving iperf3 on {where}, port{'s' if n > 1 else ''} "
                      f"{ports[0]}{f'-{ports[-1]}' if n > 1 else ''}; Ctrl-C to stop", final=True)
        while True:
            for port, proc, _, log in servers:
                if proc.poll() is not None:
                    raise UserError(f"iperf3 server on port {port} stopped: {_why(log, proc)}")
            time.sleep(0.5)


# ----------------------------------------------------------------- command

def _is_local_address(addr: str) -> bool:
    """Whether addr is on one of this machine's interfaces (always the live
    machine: --root only points doctor's limit at a captured tree)."""
    try:
        want = ipaddress.ip_address(addr)
        have = addrdump.addresses_by_name(SysRoot("/"))
    except (ValueError, OSError):
        return True  # a name, or no netlink here: let iperf3 judge
    return any(ipaddress.ip_interface(a["cidr"]).ip == want for addrs in have.values() for a in addrs)


def add_arguments(parser) -> None:
    role = parser.add_mutually_exclusive_group(required=True)
    role.add_argument("--peer", metavar="ADDR", help="run the sweep against the iperf3 servers at ADDR")
    role.add_argument("--serve", action="store_true",
                      help="run iperf3 servers (on --bind, ports --port and up) until stopped")
    parser.add_argument("--bind", metavar="ADDR", help="local address to use (iperf3 -B)")
    parser.add_argument("--port", type=int, default=DEFAULT_PORT, help="first port (default %(default)s)")
    parser.add_argument("--time", type=int, default=10, metavar="SECONDS",
                        help="seconds per run (default %(default)s)")
    parser.add_argument("--streams", type=parse_counts, default=DEFAULT_STREAMS, metavar="LIST",
                        help="-P values to try with one instance (default 1,2,4,8)")
    parser.add_argument("--instances", type=parse_counts, default=DEFAULT_INSTANCES, metavar="LIST",
                        help="numbers of parallel iperf3 instances to try (default 1,2,4); "
                             "--serve starts as many servers as the largest")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")


def run(args) -> int:
    if args.time < 1:
        raise UserError("--time must be at least 1 second")
    if not 1 <= args.port <= 65535 - max(args.instances):
        raise UserError(f"--port {args.port}: ports {args.port}..{args.port + max(args.instances) - 1} "
                        "must be valid")
    if runner.which("iperf3") is None:
        raise UserError("iperf3 is not installed (apt install iperf3)")
    if args.bind and not _is_local_address(args.bind):
        # iperf3 itself happily listens on an address the machine lacks.
        raise UserError(f"--bind {args.bind}: not an address of this machine (see `ip -br address`)")
    old = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        return serve(args) if args.serve else client(args)
    except (_Terminated, KeyboardInterrupt) as e:
        # kill or Ctrl-C: the children were stopped on the way out. For
        # --serve that is the normal way to end.
        if args.serve:
            return 0
        if isinstance(e, KeyboardInterrupt):
            raise
        return 128 + signal.SIGTERM
    finally:
        signal.signal(signal.SIGTERM, old)
