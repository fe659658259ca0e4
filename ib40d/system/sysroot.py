# SPDX-License-Identifier: GPL-2.0-or-later
"""One root for every system path ib40 reads or writes.

`--root DIR` on every subcommand makes ib40 look at DIR/sys, DIR/proc,
DIR/etc and DIR/run instead of the live ones: that is how `status` reads a
support bundle captured on another machine and how tests build fake machines.
Nothing else in ib40 opens a path under /sys, /proc, /etc or /run directly.
"""

from __future__ import annotations

import os
from pathlib import Path


class SysRoot:
    def __init__(self, root: str | os.PathLike = "/"):
        self.root = Path(root)

    @property
    def is_live(self) -> bool:
        return self.root.resolve() == Path("/")

    def path(self, abspath: str) -> Path:
        """Map an absolute system path ("/sys/class/net") under the root."""
        if not abspath.startswith("/"):
            raise ValueError(f"system path must be absolute: {abspath!r}")
        return self.root / abspath.lstrip("/")

    def read(self, abspath: str) -> str | None:
        """Text of a file with surrounding whitespace stripped, or None when
        it is missing or unreadable (sysfs attributes of a link that went away
        mid-read, or that the driver refuses to show, both land here)."""
        try:
            return self.path(abspath).read_text().strip()
        except (OSError, UnicodeDecodeError):
            return None

    def read_int(self, abspath: str) -> int | None:
        text = self.read(abspath)
        if text is None:
            return None
        try:
            return int(text, 0)
        except ValueError:
            return None

    def exists(self, abspath: str) -> bool:
        return self.path(abspath).exists()

    def listdir(self, abspath: str) -> list[str]:
        try:
            return sorted(os.listdir(self.path(abspath)))
        except OSError:
            return []

    def realpath(self, abspath: str) -> str | None:
        """Resolve a symlink (e.g. /sys/class/net/X/device) and return the
        result as a system path relative to the root, or None."""
        p = self.path(abspath)
        if not p.exists():
            return None
        resolved = p.resolve()
        try:
            rel = resolved.relative_to(self.root.resolve())
        except ValueError:
            return str(resolved)
        return "/" + str(rel)

    def write_sysfs(self, abspath: str, value: str) -> None:
        """Write one sysfs attribute. No temp file: sysfs attributes are not
        regular files and take one write() each."""
        with open(self.path(abspath), "w") as f:
            f.write(value)

    def write_atomic(self, abspath: str, content: str, mode: int = 0o644) -> bool:
        """Write a regular file atomically: temp file in the same directory,
        fsync, rename over. Returns False (and writes nothing) when the file
        already holds exactly this content, so callers can skip reloads."""
        import tempfile  # only writers pay for it; status and check never write

        target = self.path(abspath)
        try:
            if target.read_text() == content:
                return False
        except OSError:
            pass
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        try:
            with os.fdopen(fd, "w") as f:
                f.write(content)
                f.flush()
                os.fsync(f.fileno())
            os.chmod(tmp, mode)
            os.replace(tmp, target)
        except BaseException:
            try:
                os.unlink(tmp)
            except OSError:
                pass
            raise
        dirfd = os.open(target.parent, os.O_DIRECTORY)
        try:
            os.fsync(dirfd)
        finally:
            os.close(dirfd)
        return True
