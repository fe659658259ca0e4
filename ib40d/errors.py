# SPDX-License-Identifier: GPL-2.0-or-later
"""Errors that reach the user as one clear line, never as a traceback."""


class UserError(Exception):
    """A problem the user can act on (missing tool, unreachable peer, a
    refused netlink request...). cli.main prints it and exits with `status`."""

    def __init__(self, message: str, status: int = 1):
        super().__init__(message)
        self.status = status


class ConfigError(Exception):
    """Every problem found in the configuration, already formatted as
    FILE:LINE: [section] key: message. cli.main prints them and exits 2."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))
