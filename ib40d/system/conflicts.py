# SPDX-License-Identifier: GPL-2.0-or-later
"""Other network configurations that name ib40's links.

ifupdown (the HOWTO's /etc/network/interfaces stanzas), systemd-networkd,
NetworkManager keyfiles, netplan (/etc/netplan/*.yaml, and the networkd files
it renders into /run/systemd/network) and cloud-init's network config would
fight ib40 over the same link: one sets the address, the other removes it.
ib40 does not edit their files; `check` and `plan` warn, naming file, line
and the fix. A link is named by its name, a glob (netplan `match: name:`) or
its MAC (netplan `match: macaddress:`, networkd `MACAddress=`, cloud-init's
`mac_address`).

`scan()` reads the files into Claims (what a bundle records: the files
themselves can hold Wi-Fi keys and passwords); `find_conflicts()` matches
them against the configured links.

netplan and cloud-init files are YAML, read with python3-yaml (a dependency
of the package): their nesting, flow style (`{config: disabled}`) and quoting
are what a hand parser gets wrong, and its nodes carry line numbers. It is
imported only when such a file exists.
"""

from __future__ import annotations

import fnmatch
import json
import re

from ib40d.core.records import asdict, dataclass
from ib40d.system.sysroot import SysRoot

_IFUPDOWN_RE = re.compile(r"^\s*(?:auto|allow-hotplug|allow-auto|iface)\s+(.+?)\s*$")
RECORDED = "/bundle/conflicts.json"  # bundle.CONFLICTS_FILE: what scan() found where the bundle was made
CLOUD_INIT_OFF = "/etc/cloud/cloud.cfg.d/99-disable-network-config.cfg"
_FIGHT = "two managers will fight over it"


@dataclass
class Claim:
    """A line of another manager's file that names a link."""
    file: str
    line: int
    manager: str
    value: str  # a name, a glob or a MAC
    kind: str = "name"  # "name" | "glob" | "mac" | "error" (the file could not be read: value says why)
    fix: str = "remove it there"

    def to_json(self) -> dict:
        return asdict(self)


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
    return {value: line for kind, value, line in _networkd_matches(text) if kind == "name"}


def _networkd_matches(text: str) -> list[tuple[str, str, int]]:
    """(kind, value, line) for Name= (names or globs) and MACAddress= in [Match]."""
    found = []
    section = None
    for lineno, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if line.startswith("["):
            section = line
        elif section == "[Match]" and line.startswith(("Name=", "MACAddress=")):
            key, _, values = line.partition("=")
            for value in values.split():
                kind = "mac" if key == "MACAddress" else ("glob" if _is_glob(value) else "name")
                found.append((kind, value.lower() if kind == "mac" else value, lineno))
    return found


def nm_names(text: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        if line.strip().startswith("interface-name="):
            found.setdefault(line.split("=", 1)[1].strip(), lineno)
    return found


def _is_glob(value: str) -> bool:
    return any(ch in value for ch in "*?[")


# ---------------------------------------------------------------- YAML


def _yaml_nodes(text: str):
    """The YAML documents of TEXT as nodes (with line numbers). Raises
    ValueError with the line when the text is not YAML."""
    import yaml  # python3-yaml: only machines with netplan or cloud-init files pay for it

    try:
        return list(yaml.compose_all(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f"line {mark.line + 1}: " if mark is not None else ""
        raise ValueError(f"{where}{getattr(e, 'problem', None) or e}") from None


def _items(node) -> list[tuple[str, object, object]]:
    """(key, key node, value node) of a mapping node; [] for anything else."""
    if node is None or getattr(node, "tag", "").rsplit(":", 1)[-1] != "map":
        return []
    return [(str(k.value), k, v) for k, v in node.value if isinstance(k.value, str)]


def _get(node, key: str):
    return next((v for k, _, v in _items(node) if k == key), None)


def _scalar(node) -> str | None:
    return node.value if node is not None and isinstance(node.value, str) else None


def _sequence(node) -> list:
    return node.value if node is not None and isinstance(node.value, list) \
        and getattr(node, "tag", "").endswith("seq") else []


def _line(node) -> int:
    return node.start_mark.line + 1


# netplan's device sections; bonds and bridges list their members in `interfaces`.
_NETPLAN_SECTIONS = ("ethernets", "bonds", "bridges", "vlans", "wifis", "modems", "tunnels", "vrfs",
                     "dummy-devices", "virtual-ethernets", "nm-devices")


def netplan_claims(network, fix) -> list[tuple[str, str, int, str]]:
    """(kind, value, line, fix) for each link a netplan `network:` mapping
    names: a stanza's id (unless it has `match:`), its match name or MAC,
    its set-name, and the members of a bond's or bridge's `interfaces`.
    FIX(section, id[, member]) says what to remove."""
    out = []
    for section in _NETPLAN_SECTIONS:
        for ident, key, body in _items(_get(network, section)):
            what = fix(section, ident)
            match = _get(body, "match")
            if match is None:
                out.append(("name", ident, _line(key), what))
            for mkey, mnode in (("name", _get(match, "name")), ("macaddress", _get(match, "macaddress"))):
                value = _scalar(mnode)
                if value is None:
                    continue
                kind = "mac" if mkey == "macaddress" else ("glob" if _is_glob(value) else "name")
                out.append((kind, value.lower() if kind == "mac" else value, _line(mnode), what))
            set_name = _scalar(_get(body, "set-name"))
            if set_name:
                out.append(("name", set_name, _line(_get(body, "set-name")), what))
            for member in _sequence(_get(body, "interfaces")):
                if _scalar(member):
                    out.append(("name", member.value, _line(member), fix(section, ident, member.value)))
    return out


def _netplan_fix(path: str, cloud_off: bool):
    # cloud-init writes 50-cloud-init.yaml and rewrites it at boot unless told not to
    cloud = path.endswith("/50-cloud-init.yaml") and not cloud_off

    def fix(section: str, ident: str, member: str | None = None) -> str:
        what = f"{member} from {section} {ident}'s interfaces" if member else f"the `{ident}:` stanza under `{section}:`"
        text = f"remove {what} and run `netplan apply`"
        if cloud:
            text = f"cloud-init wrote this file: put `network: {{config: disabled}}` in {CLOUD_INIT_OFF}, then {text}"
        return text
    return fix


def cloud_init_claims(network) -> list[tuple[str, str, int, str]]:
    """The same for cloud-init's `network:` (version 1 `config:` list or
    version 2, netplan's layout); nothing when it says `config: disabled`."""
    if _scalar(_get(network, "config")) == "disabled":
        return []
    fix = f"put `network: {{config: disabled}}` in {CLOUD_INIT_OFF} (or remove it here)"
    if _scalar(_get(network, "version")) == "1":
        out = []
        for entry in _sequence(_get(network, "config")):
            for key, kind in (("name", "name"), ("mac_address", "mac")):
                node = _get(entry, key)
                if _scalar(node):
                    out.append((kind, node.value.lower() if kind == "mac" else node.value, _line(node), fix))
            for member in _sequence(_get(entry, "bond_interfaces")):
                if _scalar(member):
                    out.append(("name", member.value, _line(member), fix))
        return out
    return netplan_claims(network, lambda section, ident, member=None: fix)


def cloud_init_disabled(text: str) -> bool:
    """Whether a cloud.cfg(.d) file says `network: {config: disabled}`."""
    try:
        docs = _yaml_nodes(text)
    except (ValueError, ImportError):
        return False
    return any(_scalar(_get(_get(d, "network"), "config")) == "disabled" for d in docs)


# ---------------------------------------------------------------- scanning


def _files(root: SysRoot, path: str, suffix: str | None, prefix: str = "") -> list[str]:
    if suffix is None:
        return [path]
    return [f"{path}/{n}" for n in root.listdir(path)
            if n.endswith(suffix) and n.startswith(prefix) and not n.startswith(".")]


def _simple(parse):
    return lambda text, path, cloud_off: [("glob" if _is_glob(n) else "name", n, line, None)
                                          for n, line in parse(text).items()]


def _networkd(text: str, path: str, cloud_off: bool) -> list:
    return [(kind, value, line, None) for kind, value, line in _networkd_matches(text)]


def _rendered(text: str, path: str, cloud_off: bool) -> list:
    return [(kind, value, line, "netplan generated this file from /etc/netplan: remove the stanza there "
             "and run `netplan apply`") for kind, value, line in _networkd_matches(text)]


def _yaml_source(claims_of):
    def parse(text: str, path: str, cloud_off: bool) -> list:
        out = []
        for doc in _yaml_nodes(text):
            network = _get(doc, "network")
            if network is not None:
                out.extend(claims_of(network, path, cloud_off))
        return out
    return parse


def _netplan(network, path: str, cloud_off: bool) -> list:
    return netplan_claims(network, _netplan_fix(path, cloud_off))


def _cloud_init(network, path: str, cloud_off: bool) -> list:
    # cloud-init merges its files: `config: disabled` in any of them turns its network config off
    return [] if cloud_off else cloud_init_claims(network)


_CLOUD_CFG = ("/etc/cloud/cloud.cfg", "/etc/cloud/cloud.cfg.d")
# (directory or file, suffix (None: the file itself), name prefix, parse(text, path, cloud_off), manager)
_SOURCES = (
    ("/etc/network/interfaces", None, "", _simple(ifupdown_names), "ifupdown"),
    ("/etc/network/interfaces.d", "", "", _simple(ifupdown_names), "ifupdown"),
    ("/etc/systemd/network", ".network", "", _networkd, "systemd-networkd"),
    ("/run/systemd/network", ".network", "10-netplan-", _rendered, "netplan"),
    ("/etc/NetworkManager/system-connections", "", "", _simple(nm_names), "NetworkManager"),
    ("/etc/netplan", ".yaml", "", _yaml_source(_netplan), "netplan"),
    (_CLOUD_CFG[0], None, "", _yaml_source(_cloud_init), "cloud-init"),
    (_CLOUD_CFG[1], ".cfg", "", _yaml_source(_cloud_init), "cloud-init"),
)


def scan(root: SysRoot) -> list[Claim]:
    """Every name, glob and MAC the other managers' files claim; a file
    that cannot be read as what it should be is a Claim of kind "error"."""
    cloud_files = _files(root, _CLOUD_CFG[0], None) + _files(root, _CLOUD_CFG[1], ".cfg")
    cloud_off = any(cloud_init_disabled(text) for text in map(root.read, cloud_files) if text)
    claims: list[Claim] = []
    for path, suffix, prefix, parse, manager in _SOURCES:
        for f in _files(root, path, suffix, prefix):
            text = root.read(f)
            if not text:
                continue
            try:
                found = parse(text, f, cloud_off)
            except ImportError:
                claims.append(Claim(f, 0, manager, "python3-yaml is not installed: not checked", "error"))
                continue
            except ValueError as e:
                claims.append(Claim(f, 0, manager, f"not valid YAML ({e}): not checked", "error"))
                continue
            for kind, value, line, fix in found:
                claims.append(Claim(f, line, manager, value, kind, fix or "remove it there"))
    return claims


def _recorded(root: SysRoot) -> list[Claim] | None:
    """A bundle's claims, recorded where it was made (its files are not in it)."""
    if root.is_live:
        return None
    text = root.read(RECORDED)
    if text is None:
        return None
    try:
        return [Claim(**c) for c in json.loads(text)]
    except (ValueError, TypeError):
        return [Claim(RECORDED, 0, "ib40d bundle", "not what ib40d bundle records: not checked", "error")]


def config_macs(cfg) -> dict[str, str]:
    """{MAC: link name} of the configured links that have one."""
    return {link.mac: name for name, link in cfg.links.items() if getattr(link, "mac", None)}


def find_conflicts(root: SysRoot, names: list[str], macs: dict[str, str] | None = None) -> list[str]:
    """One warning per (file, link) that names a link ib40 manages (by name,
    glob, or MAC from MACS, {mac: name}), and one per file not read."""
    wanted = set(names)
    macs = {m.lower(): n for m, n in (macs or {}).items()}
    warnings = []
    seen = set()
    claims = _recorded(root)
    for c in sorted(scan(root) if claims is None else claims, key=lambda c: (c.file, c.line)):
        if c.kind == "error":
            warnings.append(f"{c.file}: {c.manager}: {c.value}")
            continue
        if c.kind == "mac":
            hits = [macs[c.value]] if c.value in macs else []
        elif c.kind == "glob":
            hits = sorted(n for n in wanted if fnmatch.fnmatchcase(n, c.value))
        else:
            hits = [c.value] if c.value in wanted else []
        for name in hits:
            if (c.file, name, c.fix) in seen:
                continue
            seen.add((c.file, name, c.fix))
            by = {"mac": f" (by its MAC {c.value})", "glob": f" (by the pattern {c.value})"}.get(c.kind, "")
            warnings.append(f"{c.file}:{c.line}: {name} is also configured for {c.manager}{by}; {_FIGHT}: {c.fix}")
    return warnings
