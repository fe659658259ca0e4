# SPDX-License-Identifier: GPL-2.0-or-later
"""The daemon's control server in this process, without root: an error in
one request, a client past its deadline, and a daemon dying of a broken pipe
(the network-namespace fault tests are tests/kernel/test_daemon_faults.py)."""

import os
import selectors
import subprocess
import sys
import time

import pytest

from helpers import REPO, connect_unix as connect

CONF = "[link v1]\nmtu = 9000\n"
DEADLINE_S = 60  # liveness only: the machine is slow and shared


class InProcess:
    """A ControlServer in this process on ANSWER, served by pump(): its
    clients are blocking sockets of the test that send, then wait for pump."""

    def __init__(self, tmp_path, answer):
        from ib40d.commands.daemon import ControlServer

        self.path = str(tmp_path / "control.sock")
        self.sel = selectors.DefaultSelector()
        self.server = ControlServer(tmp_path / "control.sock", self.sel, answer)

    def pump(self, until) -> bool:
        end = time.monotonic() + DEADLINE_S
        while not until() and time.monotonic() < end:
            for key, _ in self.sel.select(0.05):
                if key.data == "control":
                    self.server.accept()
                else:
                    self.server.serve(key.data)
            self.server.tick()
        return until()


def test_an_unexpected_error_in_one_request_drops_that_client_only(tmp_path, capsys):
    asked = []

    def answer(line):
        asked.append(line)
        if line == "apply boom":
            raise RuntimeError("a bug")
        return b"END 0\n"

    control = InProcess(tmp_path, answer)
    boom, fine = connect(control.path), connect(control.path)
    boom.sendall(b"apply boom\n")
    fine.sendall(b"apply v1\n")
    assert control.pump(lambda: len(asked) == 2 and not control.server.clients), asked
    assert boom.recv(100) == b""
    assert fine.recv(100) == b"END 0\n"
    out = capsys.readouterr()
    assert "control: dropped a client after an unexpected error: RuntimeError('a bug')\n" in out.out
    assert "Traceback" in out.err  # a bug: the journal gets the whole story
    late = connect(control.path)  # and the server goes on
    late.sendall(b"apply v1\n")
    assert control.pump(lambda: len(asked) == 3 and not control.server.clients)
    assert late.recv(100) == b"END 0\n"
    control.server.close()


def test_past_its_deadline_a_client_is_answered_if_its_request_came_else_dropped(tmp_path, capsys):
    control = InProcess(tmp_path, lambda line: b"END 0\n")
    came, silent = connect(control.path), connect(control.path)
    assert control.pump(lambda: len(control.server.clients) == 2)
    for client in control.server.clients:
        client.deadline = time.monotonic() - 1  # the daemon was busy (a long apply) past it
    came.sendall(b"apply v1\n")  # while it was busy
    control.server.tick()
    assert came.recv(100) == b"END 0\n"
    assert silent.recv(100) == b""
    assert not control.server.clients
    assert "control: dropped 1 client(s) that did not send a request" in capsys.readouterr().out
    control.server.close()
    assert not os.path.exists(control.path)


# A daemon that dies of a BrokenPipeError, started as `ib40d daemon` is.
CRASH = """\
import sys
from ib40d.commands import cli, daemon
def crash(self):
    raise BrokenPipeError(32, "Broken pipe")
daemon.Daemon.run = crash
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_broken_pipe_in_the_daemon_is_a_failure_systemd_restarts(tmp_path):
    # cli.main exits 0 on BrokenPipeError (`ib40d status | head`); a daemon
    # that dies of one must not look like a clean stop to Restart=on-failure.
    conf = tmp_path / "ib40.conf"
    conf.write_text(CONF)
    proc = subprocess.run([sys.executable, "-c", CRASH, "daemon", "-c", str(conf), "--root", str(tmp_path)],
                          capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          timeout=DEADLINE_S)
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    assert "BrokenPipeError" in proc.stderr


@pytest.mark.parametrize("ib40_root", [None, "/srv/a-bundle"])
def test_the_units_command_line_gets_the_defaults_argparse_gives(monkeypatch, ib40_root):
    """cli.main takes ib40d.service's `ib40d daemon` without argparse; an
    option added to the daemon's parser must get its default there too."""
    from ib40d.commands import cli, daemon

    if ib40_root is None:
        monkeypatch.delenv("IB40_ROOT", raising=False)
    else:
        monkeypatch.setenv("IB40_ROOT", ib40_root)
    command, module, parsed = cli.parse(["daemon"])
    assert (command, module) == ("daemon", daemon)
    assert vars(daemon.default_args()) == vars(parsed)
    assert parsed.root == (ib40_root or "/")
