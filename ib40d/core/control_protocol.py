# SPDX-License-Identifier: GPL-2.0-or-later
"""What `ib40d link-ready NAME` (ib40-link@NAME.service) and ib40d.service
say to each other over CONTROL_SOCKET: both ends read and write it here.

One request per connection: the line `apply NAME`, at most MAX_REQUEST
bytes. The answer: lines, each of a kind (`done: ...`, `error: ...`,
`applied 2 changes (...)`, see Line), then `END RC`, RC being what `ib40d
apply --link NAME` exits with: OK, REFUSED, or BAD_REQUEST (also a name that
is not configured).

These bytes must not change: an upgrade replaces link-ready's files but
does not restart the daemon (debian/rules says why), so until the next boot
a new client talks to the old daemon.

link-ready imports this module on every boot and hotplug: nothing is
imported here, and nothing is parsed beyond the kind of each line.
"""

from __future__ import annotations

# The daemon listens here; root only (0600), it changes the network.
CONTROL_SOCKET = "/run/ib40/control.sock"
MAX_REQUEST = 512

OK, REFUSED, BAD_REQUEST = 0, 1, 2

# The kinds of answer lines, as they start on the wire ("KIND: text").
DONE = "done"
WARNING = "warning"
NOTE = "note"
ERROR = "error"
NOT_DONE = "not done"
NOT_CONVERGED = "not converged"
NOTHING_TO_DO = "nothing to do"
APPLIED = "applied"  # "applied 2 changes (...)": a space, not a colon
OTHER = ""  # a line of a newer daemon's, printed as it came
_KINDS = (DONE, WARNING, NOTE, ERROR, NOT_DONE, NOT_CONVERGED, NOTHING_TO_DO)


class ProtocolError(Exception):
    """The other end said something that is not this protocol."""


class Line:
    """One line of an answer: its kind (where link-ready prints it, whether
    the daemon logs it) and its text after the kind."""

    __slots__ = ("kind", "text")

    def __init__(self, kind: str, text: str):
        self.kind, self.text = kind, text

    def __str__(self) -> str:
        if self.kind == OTHER:
            return self.text
        return f"{self.kind}{' ' if self.kind == APPLIED else ': '}{self.text}"

    def __repr__(self) -> str:
        return f"Line({self.kind!r}, {self.text!r})"

    def __eq__(self, other) -> bool:
        return isinstance(other, Line) and (self.kind, self.text) == (other.kind, other.text)

    def __hash__(self) -> int:
        return hash((self.kind, self.text))

    @classmethod
    def parse(cls, text: str) -> Line:
        for kind in _KINDS:
            if text.startswith(kind + ": "):
                return cls(kind, text[len(kind) + 2:])
        if text.startswith(APPLIED + " "):
            return cls(APPLIED, text[len(APPLIED) + 1:])
        return cls(OTHER, text)


# ---------------------------------------------------------------- requests


def request(name: str) -> bytes:
    return f"apply {name}\n".encode()


def request_line(received: bytes, closed: bool) -> bytes | None:
    """The request line in what a client sent so far, once it is complete:
    up to its newline, all it sent before it half-closed (CLOSED), or more
    than MAX_REQUEST bytes (too long). None: more is to come."""
    line, newline, _ = received.partition(b"\n")
    if newline or closed or len(received) > MAX_REQUEST:
        return line
    return None


def too_long(line: bytes) -> bool:
    return len(line) > MAX_REQUEST


def requested_link(line: str) -> str:
    """`apply NAME` -> NAME. Raises ProtocolError for anything else."""
    words = line.split()
    if len(words) != 2 or words[0] != "apply":
        raise ProtocolError("bad request")
    return words[1]


# ----------------------------------------------------------------- answers


def answer(lines: list[Line], rc: int) -> bytes:
    return "".join(f"{line}\n" for line in lines).encode() + f"END {rc}\n".encode()


def error(message: str, rc: int = BAD_REQUEST) -> bytes:
    return answer([Line(ERROR, message)], rc)


def read_answer(lines) -> tuple[list[Line], int]:
    """The daemon's answer from LINES (text, as a socket file yields it) ->
    (its lines, RC). Raises ProtocolError when it ends before END."""
    got = []
    for text in lines:
        text = text.rstrip("\n")
        if text.startswith("END "):
            try:
                return got, int(text[4:])
            except ValueError:
                raise ProtocolError(f"ended its answer with {text!r}") from None
        got.append(Line.parse(text))
    raise ProtocolError("closed the connection before answering")


def result_lines(result) -> list[Line]:
    """The answer to a request, from the apply.ApplyResult of that link: the
    lines `ib40d apply --link NAME` prints."""
    lines = [Line(DONE, action.describe()) for action in result.done]
    lines += [Line(WARNING, text) for text in result.warnings]
    lines += [Line(NOTE, text) for text in result.notes]
    lines += [Line(ERROR, text) for text in result.errors]
    lines += [Line(NOT_DONE, action.describe()) for action in result.not_done]
    lines += [Line(NOT_CONVERGED, f"{action.describe()} (the kernel did not keep it)")
              for action in result.not_converged]
    if result.ok:
        n = len(result.done)
        lines.append(Line(APPLIED, f"{n} change{'s' if n != 1 else ''} ({result.writes} netlink/sysfs writes)")
                     if n else Line(NOTHING_TO_DO, "the machine matches the configuration"))
    return lines
