# SPDX-License-Identifier: GPL-2.0-or-later
"""The one place ib40 starts external programs (mstconfig, lspci, iperf3...).

Always an argument list (never a shell: config values must not reach one),
always a timeout, and LC_ALL=C so that the output we parse is the C locale's.
Tests swap programs by putting fakes first on PATH.
"""

from __future__ import annotations

import os

from ib40d.core.records import dataclass
from ib40d.core.errors import UserError


@dataclass(frozen=True)
class Completed:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


class ToolMissing(UserError):
    pass


# shutil and subprocess are imported where they are used, not at the top:
# the daemon imports this module at every boot (sync's `udevadm control
# --reload`) and rarely runs anything. shutil brings bz2, lzma and fnmatch
# with it; subprocess brings threading and locale.


def which(program: str) -> str | None:
    import shutil

    return shutil.which(program, path=os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"))


def run(argv: list[str], timeout: float = 30.0, check: bool = False) -> Completed:
    """Run argv[0] found on PATH. Raises ToolMissing when it isn't installed,
    UserError on timeout (or on a non-zero exit with check=True)."""
    import subprocess

    exe = which(argv[0])
    if exe is None:
        raise ToolMissing(f"{argv[0]}: not installed (not found on PATH)")
    env = dict(os.environ, LC_ALL="C")
    try:
        proc = subprocess.run([exe, *argv[1:]], capture_output=True, text=True,
                              timeout=timeout, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise UserError(f"{' '.join(argv)}: no answer after {timeout:g} s, gave up") from None
    done = Completed(tuple(argv), proc.returncode, proc.stdout, proc.stderr)
    if check and proc.returncode != 0:
        detail = (proc.stderr or proc.stdout).strip().splitlines()
        raise UserError(f"{' '.join(argv)}: exit status {proc.returncode}"
                        + (f": {detail[-1]}" if detail else ""))
    return done
