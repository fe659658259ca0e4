# SPDX-License-Identifier: GPL-2.0-or-later
"""Fields the person who pasted a tool's output hid. Pure.

People posting `ibstat` or iperf3 output hide GUIDs, serials and addresses:
"...", "xx:xx", "0x0002c903xxxxxxxx", "x.x.79.106", "<redacted>", "***".
Those read as unknown (None), never as a value.
"""

from __future__ import annotations

import re

_REDACTED = re.compile(
    r"^(?:\.{3,}|…+|\*{2,}.*|.*\*{3,}.*|<[^<>]*>|\[?(?:redacted|hidden|removed|masked|snip)\]?"
    r"|.*(?<![0-9a-f])x{2,}.*|(?:x+[.:])+x*[\d.:]*|.*[.:]x+(?:[.:].*)?)$", re.IGNORECASE)


def is_redacted(value: str | None) -> bool:
    """Whether VALUE is a placeholder someone put in place of the real one."""
    return value is not None and bool(_REDACTED.match(value.strip()))


def known(value: str | None) -> str | None:
    """VALUE stripped, or None when it is empty or redacted."""
    if value is None:
        return None
    value = value.strip()
    return None if not value or is_redacted(value) else value
