# SPDX-License-Identifier: GPL-2.0-or-later
"""Errors that reach the user as one clear line, never as a traceback."""

from collections import namedtuple


class UserError(Exception):
    """A problem the user can act on (missing tool, unreachable peer, a
    refused netlink request...). cli.main prints it and exits with `status`."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


# Not a @dataclass: link-ready imports this module at every boot and hotplug,
# and dataclasses (with inspect) costs it several ms; socket has already
# imported collections.
class Problem(namedtuple("Problem", "file line section key message")):
    """One problem of the configuration, as data: FILE, LINE (None: the
    file as a whole), SECTION as written in messages ("[bond bond0]", or
    None), KEY (or None) and MESSAGE."""

    __slots__ = ()

    def render(self) -> str:
        """The one text form: FILE:LINE: [section] key: message, leaving
        out what the problem has not (FILE: message for a whole file)."""
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        label = " ".join(part for part in (self.section, self.key) if part)
        return f"{where}: {label}: {self.message}" if label else f"{where}: {self.message}"

    __str__ = render


class ConfigError(Exception):
    """Every problem found in the configuration, as Problem objects, in the
    order to report them. cli.main prints them (rendered) and exits 2."""

    def __init__(self, problems: list[Problem]):
        self.problems = list(problems)
        super().__init__("\n".join(p.render() for p in self.problems))
