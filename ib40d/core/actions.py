# SPDX-License-Identifier: GPL-2.0-or-later
"""What a plan is made of: ordered actions, each a plain value.

Planners (plan.py for links, bonds and IPoIB; porttype.py for the card) return
lists of Action; system/apply_engine.py runs them. `plan --json` prints them as they are.
"""

from __future__ import annotations


from ib40d.core.records import dataclass, field

TYPE_CHECKING = False  # typing's; importing typing costs every command ~3 ms
if TYPE_CHECKING:
    from typing import Any


@dataclass(frozen=True)
class Change:
    attr: str
    old: Any
    new: Any

    def describe(self) -> str:
        return f"{self.attr} {_show(self.old)} -> {_show(self.new)}"


@dataclass(frozen=True)
class Action:
    kind: str  # e.g. "bond.create", "link.set", "link.enslave", "porttype.firmware"
    target: str  # the link name, or the card's PCI address
    changes: tuple[Change, ...] = ()
    reason: str = ""
    params: dict = field(default_factory=dict, compare=False)
    # Actions of one group (a bond and its slaves, or one link) stop together
    # when one of them is refused; other groups go on.
    group: str = ""

    def describe(self) -> str:
        parts = [f"{self.kind} {self.target}"]
        if self.changes:
            parts.append(", ".join(c.describe() for c in self.changes))
        if self.reason:
            parts.append(f"({self.reason})")
        return ": ".join(parts[:2]) + (f" {parts[2]}" if len(parts) > 2 else "")

    def to_json(self) -> dict:
        return {
            "kind": self.kind,
            "target": self.target,
            "changes": [{"attr": c.attr, "old": _jsonable(c.old), "new": _jsonable(c.new)} for c in self.changes],
            "reason": self.reason,
        }


def _show(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, (list, tuple)):
        return "[" + " ".join(str(v) for v in value) + "]" if value else "[]"
    return str(value)


def _jsonable(value: Any) -> Any:
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    return str(value)
