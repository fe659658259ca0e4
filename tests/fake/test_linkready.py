# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d link-ready NAME`, the command of ib40-link@.service, against a
stand-in for the daemon's control socket: what it sends, what it prints,
its exit status, and that the unit's exact form stays a small process."""
import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from helpers import REPO


def listening(root, backlog=1) -> socket.socket:
    """A unix socket listening where ib40d.service does under ROOT."""
    path = root / "run/ib40/control.sock"
    path.parent.mkdir(parents=True)
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(str(path))
    sock.listen(backlog)
    return sock


class FakeDaemon:
    """Listens where ib40d.service does under a --root; answers each
    request with the given lines and status, records what was asked."""

    def __init__(self, root, lines, status):
        self.sock = listening(root)
        self.requests = []
        self.reply = "".join(line + "\n" for line in lines) + f"END {status}\n"
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        conn, _ = self.sock.accept()
        with conn:
            self.requests.append(conn.makefile("r").readline())
            conn.sendall(self.reply.encode())

    def close(self):
        self.thread.join(timeout=10)
        self.sock.close()


# What the quick path must not import: argparse (and re, gettext), pathlib
# (and urllib), the config parser, pyroute2.
HEAVY = ("argparse", "pathlib", "ib40d.core.config", "ib40d.system.sysroot", "pyroute2", "re")
PROBE = (
    "import sys\n"
    "from ib40d.commands.cli import main\n"
    "rc = main(sys.argv[1:])\n"
    f"print('imported:', [m for m in {HEAVY!r} if m in sys.modules], file=sys.stderr)\n"
    "sys.exit(rc)\n"
)


def run_unit_command(root, *args):
    env = dict(os.environ, PYTHONPATH=str(REPO), IB40_ROOT=str(root))
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True,
                          env=env, timeout=60)


@pytest.mark.parametrize("form", [["link-ready", "eth40a"],
                                  ["link-ready", "eth40a", "--wait", "5", "--timeout", "30"]])
def test_both_forms_ask_the_daemon_and_print_its_answer(tmp_path, form):
    daemon = FakeDaemon(tmp_path, ["nothing to do: the machine matches the configuration"], 0)
    proc = run_unit_command(tmp_path, *form)
    daemon.close()
    assert daemon.requests == ["apply eth40a\n"]
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "nothing to do: the machine matches the configuration\n"


def test_the_units_form_imports_no_parser(tmp_path):
    daemon = FakeDaemon(tmp_path, [], 0)
    proc = run_unit_command(tmp_path, "link-ready", "eth40a")
    daemon.close()
    assert "imported: []" in proc.stderr, proc.stderr
    # while the full form goes through argparse (what the probe would see)
    daemon = FakeDaemon(tmp_path / "again", [], 0)
    proc = run_unit_command(tmp_path / "again", "link-ready", "eth40a", "--wait", "1")
    daemon.close()
    assert "'argparse'" in proc.stderr, proc.stderr


def test_errors_go_to_stderr_with_the_daemons_status(tmp_path):
    daemon = FakeDaemon(tmp_path, ["error: eth40q is not configured in /etc/ib40.conf"], 2)
    proc = run_unit_command(tmp_path, "link-ready", "eth40q")
    daemon.close()
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "error: eth40q is not configured" in proc.stderr


def test_a_daemon_that_hangs_up_is_one_line_not_a_traceback(tmp_path):
    server = listening(tmp_path)

    def hang_up():
        conn, _ = server.accept()
        conn.makefile("r").readline()
        conn.close()

    t = threading.Thread(target=hang_up, daemon=True)
    t.start()
    proc = run_unit_command(tmp_path, "link-ready", "eth40a")
    t.join(timeout=10)
    server.close()
    assert proc.returncode == 1
    assert "ib40d link-ready: ib40d.service closed the connection before answering for eth40a" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_daemon_with_a_full_backlog_is_waited_for(tmp_path):
    # A burst of clients fills the daemon's listen backlog and connect()
    # says EAGAIN: the daemon is busy, not gone; the unit waits for it.
    server = listening(tmp_path, backlog=0)
    fillers = []
    while True:
        filler = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        filler.setblocking(False)
        try:
            filler.connect(server.getsockname())
        except BlockingIOError:
            filler.close()
            break
        fillers.append(filler)

    def serve_later():
        time.sleep(2)  # link-ready meets the full backlog meanwhile
        for _ in fillers:
            server.accept()[0].close()
        conn, _ = server.accept()
        with conn:
            conn.makefile("r").readline()
            conn.sendall(b"applied 1 change\nEND 0\n")

    t = threading.Thread(target=serve_later, daemon=True)
    t.start()
    proc = run_unit_command(tmp_path, "link-ready", "eth40a")
    t.join(timeout=10)
    server.close()
    for filler in fillers:
        filler.close()
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == "applied 1 change\n"


def test_an_answer_that_is_not_the_protocol_is_one_line_not_a_traceback(tmp_path):
    daemon = FakeDaemon(tmp_path, ["done: link.up eth40a: state down -> up"], "x")
    proc = run_unit_command(tmp_path, "link-ready", "eth40a")
    daemon.close()
    assert proc.returncode == 1
    assert "ib40d link-ready: ib40d.service ended its answer with 'END x' for eth40a" in proc.stderr
    assert "Traceback" not in proc.stderr
