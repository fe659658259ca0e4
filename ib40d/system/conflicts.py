# SPDX-License-Identifier: GPL-2.0-or-later
"""Other network configurations that name ib40's links.

ifupdown (the HOWTO's /etc/network/interfaces stanzas), systemd-networkd and
NetworkManager keyfiles would fight ib40 over the same link: one sets the
address, the other removes it. ib40 does not edit their files; `check` and
`plan` warn, naming file and line. Parsing is pure; `find_conflicts()` reads
the files through SysRoot.
"""

from __future__ import annotations

import re

from ib40d.system.sysroot import SysRoot

_IFUPDOWN_RE = re.compile(r"^\s*(?:auto|allow-hotplug|allow-auto|iface)\s+(.+?)\s*$")


def ifupdown_names(text: str) -> dict[str, int]:
    """{interface name: first line} for names an interfaces(5) file manages."""
    found: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0]
        m = _IFUPDOWN_RE.match(line)
        if m:
            words = m.group(1).split()
            names = words[:1] if line.strip().startswith("iface") else words
            for name in names:
                found.setdefault(name, lineno)
    return found


def networkd_names(text: str) -> dict[str, int]:
    """Names matched by Name= in the [Match] section of a .network/.link file."""
    found: dict[str, int] = {}
    section = None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Match]" and line.startswith("Name="):
            for name in line[5:].split():
                found.setdefault(name, lineno)
    return found


def nm_names(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("interface-name="):
            found.setdefault(line.split("=", 1)[1].strip(), lineno)
    return found


_SOURCES = (
    ("/etc/network/interfaces", None, ifupdown_names, "ifupdown"),
    ("/etc/network/interfaces.d", "", ifupdown_names, "ifupdown"),
    ("/etc/systemd/network", ".network", networkd_names, "systemd-networkd"),
    ("/etc/NetworkManager/system-connections", "", nm_names, "NetworkManager"),
)


def find_conflicts(root: SysRoot, names: list[str]) -> list[str]:
    """One warning per (file, link) that names a link ib40 manages."""
    wanted = set(names)
    warnings = []
    for path, suffix, parse, manager in _SOURCES:
        files = [path] if suffix is None else [f"{path}/{n}" for n in root.listdir(path)
                                                if n.endswith(suffix) and not n.startswith(".")]
        for f in files:
            text = root.read(f)
            if not text:
                continue
            for name, line in sorted(parse(text).items(), key=lambda kv: kv[1]):
                if name in wanted:
                    warnings.append(f"{f}:{line}: {name} is also configured for {manager}; "
                                    f"two managers will fight over it: remove it there")
    return warnings
