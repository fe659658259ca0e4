# SPDX-License-Identifier: GPL-2.0-or-later
"""The control protocol of ib40d.service and `ib40d link-ready`
(ib40d/core/control_protocol.py): its bytes, which must stay as they are (a new
client meets the old daemon after an upgrade), and both ends' reading."""
import io

import pytest

from ib40d.core import control_protocol as protocol
from ib40d.core.actions import Action, Change
from ib40d.system.apply_engine import ApplyResult
from ib40d.commands.apply import report
from ib40d.core.control_protocol import Line

MTU = Action("link.mtu", "eth40a", (Change("mtu", 1500, 9000),), group="eth40a")
UP = Action("link.up", "eth40a", (Change("state", "down", "up"),), group="eth40a")
ENSLAVE = Action("link.enslave", "eth40b", (Change("master", None, "bond0"),), group="bond0")


def results():
    """ApplyResults with every kind of line an answer carries."""
    converged = ApplyResult()
    applied = ApplyResult(planned=[MTU, UP], done=[MTU, UP], writes=2, notes=["a note"])
    refused = ApplyResult(planned=[MTU, ENSLAVE], done=[MTU], writes=1, warnings=["a warning"],
                          errors=["bond0: enslave eth40b: refused by the kernel: EBUSY"],
                          not_converged=[UP])
    return {"converged": converged, "applied": applied, "refused": refused}


@pytest.mark.parametrize("name", ["converged", "applied", "refused"])
def test_the_answer_says_what_apply_says(name):
    # The daemon answers a request with what `ib40d apply --link NAME` would
    # print, and link-ready prints it again as it came.
    result = results()[name]
    printed = io.StringIO()
    report(result, printed)
    wire = protocol.answer(protocol.result_lines(result), protocol.OK if result.ok else protocol.REFUSED)
    assert wire.decode() == printed.getvalue() + f"END {0 if result.ok else 1}\n"
    lines, rc = protocol.read_answer(io.StringIO(wire.decode()))
    assert "".join(f"{line}\n" for line in lines) == printed.getvalue()
    assert rc == (0 if result.ok else 1)


def test_the_bytes_of_a_request_and_an_answer():
    # What the daemon and link-ready of every ib40 version say: an upgrade
    # does not restart the daemon, so old and new ends meet.
    assert protocol.request("eth40a") == b"apply eth40a\n"
    assert protocol.error("eth40q is not configured in /etc/ib40.conf") == \
        b"error: eth40q is not configured in /etc/ib40.conf\nEND 2\n"
    lines = protocol.result_lines(results()["applied"])
    assert protocol.answer(lines, protocol.OK) == (
        b"done: link.mtu eth40a: mtu 1500 -> 9000\n"
        b"done: link.up eth40a: state down -> up\n"
        b"note: a note\n"
        b"applied 2 changes (2 netlink/sysfs writes)\n"
        b"END 0\n")
    assert (protocol.OK, protocol.REFUSED, protocol.BAD_REQUEST) == (0, 1, 2)  # apply's exit statuses


def test_each_line_is_read_back_as_the_kind_it_was_written():
    for line in [line for result in results().values() for line in protocol.result_lines(result)]:
        assert Line.parse(str(line)) == line
    assert [line.kind for line in protocol.result_lines(results()["refused"])] == [
        protocol.DONE, protocol.WARNING, protocol.ERROR, protocol.NOT_DONE, protocol.NOT_CONVERGED]
    # a line of some other daemon's is printed as it came, on stdout
    other = Line.parse("elsewhere: what a newer daemon says")
    assert (other.kind, str(other)) == (protocol.OTHER, "elsewhere: what a newer daemon says")
    assert Line.parse("error:no space").kind == protocol.OTHER


def test_the_daemon_reads_one_line_of_at_most_max_request_bytes():
    assert protocol.request_line(b"apply eth", closed=False) is None  # more to come
    assert protocol.request_line(b"apply eth40a\nrest", closed=False) == b"apply eth40a"
    assert protocol.request_line(b"apply eth40a", closed=True) == b"apply eth40a"  # half-closed
    assert protocol.request_line(b"", closed=True) == b""
    full = b"x" * protocol.MAX_REQUEST
    assert protocol.request_line(full, closed=False) is None
    assert protocol.too_long(protocol.request_line(full + b"x", closed=False))
    assert not protocol.too_long(full)
    assert protocol.requested_link("apply eth40a") == "eth40a"
    for bad in ("", "apply", "apply a b", "APPLY eth40a", "status eth40a"):
        with pytest.raises(protocol.ProtocolError, match="bad request"):
            protocol.requested_link(bad)


def test_an_answer_that_ends_early_or_badly_is_a_protocol_error():
    with pytest.raises(protocol.ProtocolError, match="closed the connection before answering"):
        protocol.read_answer(io.StringIO("done: link.up eth40a\n"))
    with pytest.raises(protocol.ProtocolError, match="ended its answer with 'END x'"):
        protocol.read_answer(io.StringIO("END x\n"))
    assert protocol.read_answer(io.StringIO("END 2\n")) == ([], 2)
