# SPDX-License-Identifier: GPL-2.0-or-later
"""Parsers of tool text that only the tests use: `ibstat -p`, `ibstatus`,
opensm's syslog lines and `systemctl status opensm`; and, under their old
names, the `ibstat` and iperf3 text parsers, which are in the package now
(ib40d/core/ibstat.py, iperf.py) because bundles and pasted outputs need them.

They read the real samples in tests/fixtures into ib40's own types (IBPort,
IperfResult), so the fake sysfs trees are built from real outputs and the
sysfs readers are checked against them.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from ib40d.core import ibports
from ib40d.core.ibports import IBPort, guid_from_gid, parse_lid, parse_rate_gbps, parse_state
from ib40d.core import ibstat, iperf


def normalize_guid(text: str) -> str:
    """"0002:c903:003f:02f1", "0x0002C903003F02F1" -> "0x0002c903003f02f1"."""
    digits = text.lower().removeprefix("0x").replace(":", "")
    return "0x" + digits.zfill(16)


# ---------------------------------------------------------------- ibstat

IBSTAT_STATES = ibstat.IBSTAT_STATES


def parse_ibstat(text: str) -> list[dict]:
    """`ibstat` -> its CAs (ib40d/core/ibstat.py, which also keeps the error lines)."""
    return ibstat.read_ibstat(text).cas


def parse_ibstat_guids(text: str) -> list[str]:
    """`ibstat -p`: one port GUID per line."""
    return [normalize_guid(line.strip()) for line in text.splitlines()
            if re.fullmatch(r"\s*0x[0-9a-fA-F]{1,16}\s*", line)]


# ---------------------------------------------------------------- ibstatus


def parse_ibstatus(text: str) -> tuple[list[IBPort], list[str]]:
    """`ibstatus` -> (ports, errors). It prints the sysfs texts verbatim."""
    ports: list[IBPort] = []
    errors: list[str] = []
    current: dict | None = None

    def close():
        if current is not None:
            ports.append(_ibstatus_port(current))

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = re.match(r"^Infiniband device '([^']+)' port (\d+) status:$", line)
        if m:
            close()
            current = {"device": m.group(1), "port": int(m.group(2))}
            continue
        if line.startswith("Fatal error:"):
            errors.append(re.sub(r"\s+", " ", line[len("Fatal error:"):]).strip())
            continue
        key, sep, value = line.partition(":")
        if sep and current is not None:
            current[key.strip()] = value.strip()
    close()
    return ports, errors


def _ibstatus_port(f: dict) -> IBPort:
    return IBPort(
        device=f["device"],
        port=f["port"],
        guid=guid_from_gid(f.get("default gid")),
        link_layer=f.get("link_layer"),
        state=parse_state(f.get("state")),
        phys_state=parse_state(f.get("phys state"), ibports.PHYS_STATES),
        rate=f.get("rate"),
        rate_gbps=parse_rate_gbps(f.get("rate")),
        sm_lid=parse_lid(f.get("sm lid")),
        lid=parse_lid(f.get("base lid")),
    )


# ---------------------------------------------------------------- iperf3 text

# In the package now (ib40d/core/iperf.py): bundles and pasted outputs need them.
IperfText = iperf.IperfText
iperf_looks_like = iperf.looks_like
parse_iperf_text = iperf.parse_text
parse_iperf_any = iperf.parse_any


# ---------------------------------------------------------------- opensm logs


_LOG_LINE = re.compile(r"^(?P<stamp>[A-Z][a-z]{2}\s+\d+\s+\d\d:\d\d:\d\d)\s+(?P<host>\S+)\s+"
                       r"(?P<ident>[^\[\s:]+)(?:\[(?P<pid>\d+)\])?:\s?(?P<msg>.*)$")


@dataclass
class LogEvent:
    stamp: str
    host: str
    ident: str  # "OpenSM", "opensm", "systemd", "sh", "opensm-launch"
    pid: int | None
    message: str


def parse_opensm_log(text: str) -> list[LogEvent]:
    """syslog or journal lines. rsyslog's "#012" (escaped newline) is
    dropped; a line without a time stamp continues the previous message
    (samples pasted with wrapped lines)."""
    events: list[LogEvent] = []
    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = _LOG_LINE.match(line)
        if m:
            pid = int(m.group("pid")) if m.group("pid") else None
            events.append(LogEvent(m.group("stamp"), m.group("host"), m.group("ident"), pid,
                                   m.group("msg").replace("#012", "").strip()))
        elif events and not line.startswith(("●", "Loaded:", "Active:")):
            events[-1].message = (events[-1].message + " " + line.replace("#012", "")).strip()
    return events


@dataclass
class SMInstance:
    pid: int
    guid: str | None = None
    log_file: str | None = None
    version: str | None = None
    state: str | None = None  # "DISCOVERING", "MASTER", "STANDBY", "EXITED"...
    subnet_up: bool = False
    port_down: bool = False


def sm_instances(events: list[LogEvent]) -> dict[int, SMInstance]:
    """What each OpenSM process said about itself, by PID."""
    result: dict[int, SMInstance] = {}
    for e in events:
        if e.ident != "OpenSM" or e.pid is None:
            continue
        inst = result.setdefault(e.pid, SMInstance(e.pid))
        msg = e.message
        m = re.match(r"^(\S+) log\s+file opened$", msg)
        if m:
            inst.log_file = m.group(1)
            g = re.search(r"opensm\.(0x[0-9a-fA-F]+)\.log", m.group(1))
            if g:
                inst.guid = normalize_guid(g.group(1))
            continue
        m = re.match(r"^OpenSM (\S+)$", msg)
        if m:
            inst.version = m.group(1)
            continue
        m = re.match(r"^Entering (\w+) state$", msg)
        if m:
            inst.state = m.group(1).upper()
        elif msg == "Exiting SM":
            inst.state = "EXITED"
        elif msg == "SUBNET UP":
            inst.subnet_up = True
        elif msg == "SM port is down":
            inst.port_down = True
    return result


# `systemctl status` header lines: pattern -> the keys its groups fill.
_STATUS_HEADERS = (
    (r"^●\s+(\S+)\s+-\s+(.*)$", ("unit", "description")),
    (r"^Loaded:\s+\S+\s+\(([^;)]+)(?:;\s*([^;)]+))?", ("unit_file", "enabled")),
    (r"^Active:\s+(\S+)\s+\(([^)]+)\)", ("active", "sub")),
    (r"^Main PID:\s+(\d+)", ("main_pid",)),
)


def parse_systemctl_status(text: str) -> dict:
    """`systemctl status opensm` -> {unit, description, unit_file, enabled,
    active, sub, main_pid, processes: [(pid, cmdline)], guids, instances}.
    Label indentation in pasted samples is unreliable; lines are matched by
    their labels."""
    info: dict = {"unit": None, "description": None, "unit_file": None, "enabled": None,
                  "active": None, "sub": None, "main_pid": None, "processes": [], "guids": [],
                  "instances": {}}
    journal = []
    guids: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        header = next(((keys, m) for pattern, keys in _STATUS_HEADERS if (m := re.match(pattern, line))), None)
        if header:
            keys, m = header
            info.update(zip(keys, m.groups()))
            continue
        m = re.match(r"^[│\s]*[└├]─(\d+)\s+(.*)$", line)
        if m:
            info["processes"].append((int(m.group(1)), m.group(2)))
            g = re.search(r"(?:-g|--guid)\s+(0x[0-9a-fA-F]+)", m.group(2))
            if g:
                guids.append(normalize_guid(g.group(1)))
            continue
        if _LOG_LINE.match(line):
            journal.append(line)
    events = parse_opensm_log("\n".join(journal))
    for e in events:
        m = re.match(r"^Starting opensm on (?:following ports:\s*)?(.*?):?$", e.message)
        if m:
            guids += [normalize_guid(g) for g in re.findall(r"0x[0-9a-fA-F]+", m.group(1))]
    instances = sm_instances(events)
    guids += [i.guid for i in instances.values() if i.guid]
    info["main_pid"] = int(info["main_pid"]) if info["main_pid"] else None
    info["guids"] = list(dict.fromkeys(guids))
    info["instances"] = {pid: asdict(i) for pid, i in instances.items()}
    return info
