# SPDX-License-Identifier: GPL-2.0-or-later
"""ib40d.system.notify against a real AF_UNIX datagram socket, as systemd listens."""
import socket

from ib40d.system import notify


def _listen(tmp_path, monkeypatch):
    path = str(tmp_path / "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(2)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    return sock


def test_ready_with_status_is_one_datagram(tmp_path, monkeypatch):
    sock = _listen(tmp_path, monkeypatch)
    notify.ready("bond0: 2 of 2 slaves")
    assert sock.recv(4096).decode() == "READY=1\nSTATUS=bond0: 2 of 2 slaves"


def test_status_is_flattened_to_one_line(tmp_path, monkeypatch):
    sock = _listen(tmp_path, monkeypatch)
    notify.status("waiting for slaves:\n eth40b")
    assert sock.recv(4096).decode() == "STATUS=waiting for slaves: eth40b"


def test_follows_a_changed_socket(tmp_path, monkeypatch):
    first = _listen(tmp_path, monkeypatch)
    notify.status("one")
    assert first.recv(4096) == b"STATUS=one"
    (tmp_path / "b").mkdir()
    second = _listen(tmp_path / "b", monkeypatch)
    notify.ready()
    assert second.recv(4096) == b"READY=1"


def test_no_socket_is_a_no_op(monkeypatch):
    monkeypatch.delenv("NOTIFY_SOCKET", raising=False)
    monkeypatch.setattr(notify, "_notifier", None)
    notify.ready("x")
    notify.status("y")
    assert notify._notifier is None  # no socket was even opened
