# SPDX-License-Identifier: GPL-2.0-or-later
"""A kernel refusal, as one line: what we asked, the errno, and what it means.

Kept apart from netlink.py so the apply engine and its fakes never import
pyroute2.
"""

from __future__ import annotations

import errno

_MEANING = {
    errno.EBUSY: "device or resource busy",
    errno.EOPNOTSUPP: "not supported by this device or driver",
    errno.EINVAL: "invalid argument for this device",
    errno.ENODEV: "the link is gone",
    errno.ENOTEMPTY: "the bond still has slaves",
    errno.EPERM: "operation not permitted",
    errno.EEXIST: "already exists",
    errno.ERANGE: "value out of range for this device",
}


class NetlinkRefused(Exception):
    def __init__(self, code: int, what: str, hint: str | None = None):
        self.code = code
        self.what = what
        # ENOTSUP and EOPNOTSUPP are one number on Linux; netlink speaks of the latter.
        name = "EOPNOTSUPP" if code == errno.EOPNOTSUPP else errno.errorcode.get(code, str(code))
        meaning = _MEANING.get(code) or (name.lower() if code in errno.errorcode else "error")
        text = f"{what}: refused by the kernel: {name} ({meaning})"
        if hint:
            text += f"; {hint}"
        super().__init__(text)
