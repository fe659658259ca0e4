# SPDX-License-Identifier: GPL-2.0-or-later
"""Reading /etc/ib40.conf and its drop-ins: the files' bytes, for
ib40d.core.config to parse."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from ib40d.core.config import DEFAULT_CONFIG, Config, parse_bytes, shown
from ib40d.core.errors import ConfigError, Problem


def config_files(path: str | Path) -> list[Path]:
    """The main file, then its drop-ins (path + ".d/*.conf") in the byte
    order of their names. Hidden ones (".x.conf") are not drop-ins, as for
    systemd and for the shell glob of ib40-sync.service's comparison."""
    path = Path(path)
    dropin_dir = Path(str(path) + ".d")
    try:
        names = os.listdir(dropin_dir)
    except OSError:  # none, or not a directory
        names = []
    dropins = sorted((n for n in names if n.endswith(".conf") and not n.startswith(".")), key=os.fsencode)
    return [path, *(dropin_dir / n for n in dropins)]


# A configuration is a few KB; a log or a disk image given by mistake is not one.
MAX_FILE_BYTES = 1 << 20
_FILE_KINDS = {
    stat.S_IFIFO: "a FIFO", stat.S_IFCHR: "a character device", stat.S_IFBLK: "a block device",
    stat.S_IFDIR: "a directory", stat.S_IFSOCK: "a socket",
}


class NotRegularFile(OSError):
    def __init__(self, mode: int):
        super().__init__(errno.EINVAL, f"is {_FILE_KINDS.get(stat.S_IFMT(mode), 'not a regular file')}, "
                         "not a regular file")


def read_config_bytes(path: str | Path, limit: int = MAX_FILE_BYTES) -> bytes:
    """PATH's bytes, at most LIMIT + 1 of them (more means too large). Only
    a regular file (symlinks followed) is opened: anything else raises
    NotRegularFile first, as a FIFO would block and /dev/zero never ends."""
    if not stat.S_ISREG(mode := os.stat(path).st_mode):
        raise NotRegularFile(mode)
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY)
    try:
        if not stat.S_ISREG(mode := os.fstat(fd).st_mode):  # replaced since the stat
            raise NotRegularFile(mode)
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, limit + 1 - size)
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def load(path: str | Path = DEFAULT_CONFIG) -> Config:
    """Read and parse the config and its drop-ins. A missing main file, or
    any file that cannot be read, is a ConfigError naming it (FILE: message)."""
    named: list[tuple[str, bytes]] = []
    problems: list[Problem] = []
    for i, p in enumerate(config_files(path)):
        name = shown(str(p))

        def problem(message: str) -> None:
            problems.append(Problem(name, None, None, None, message))

        try:
            data = read_config_bytes(p)
        except FileNotFoundError:
            if os.path.islink(p):
                problem(f"a dangling symbolic link ({_link_target(p)} does not exist)")
            elif i == 0:
                problem("no such file (write one from /usr/share/doc/ib40/examples/ib40.conf)")
            continue  # otherwise a drop-in removed since the listing
        except NotRegularFile as e:
            problem(e.strerror)
            continue
        except OSError as e:
            problem(f"cannot read: {e.strerror or e}")
            continue
        if len(data) > MAX_FILE_BYTES:
            problem(f"larger than {MAX_FILE_BYTES >> 20} MiB: not a configuration")
            continue
        named.append((name, data))
    if problems:
        raise ConfigError(problems)
    return parse_bytes(named)


def _link_target(p: Path) -> str:
    try:
        return shown(os.readlink(p))
    except OSError:
        return "its target"
