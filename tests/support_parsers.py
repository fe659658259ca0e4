# SPDX-License-Identifier: GPL-2.0-or-later
"""Parsers of tool text that only the tests use: `ibstat`, `ibstat -p`,
`ibstatus`, iperf3's text output, opensm's syslog lines and `systemctl
status opensm`.

They read the real samples in tests/fixtures into ib40's own types (IBPort,
IperfResult), so the fake sysfs trees are built from real outputs and the
sysfs readers are checked against them. ib40 itself reads sysfs and iperf3's
JSON. They were in ib40d/core/ibports.py, iperf.py and opensm.py; support bundles
(#12) will need tolerant text parsers like these in the package again.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from ib40d.core import ibports
from ib40d.core.ibports import IBPort, guid_from_gid, parse_lid, parse_rate_gbps, parse_state
from ib40d.core.iperf import IperfResult, parse_json


def normalize_guid(text: str) -> str:
    """"0002:c903:003f:02f1", "0x0002C903003F02F1" -> "0x0002c903003f02f1"."""
    digits = text.lower().removeprefix("0x").replace(":", "")
    return "0x" + digits.zfill(16)


# ---------------------------------------------------------------- ibstat

# The names ibstat gives the kernel's port states.
IBSTAT_STATES = {"Down": "DOWN", "Initializing": "INIT", "Armed": "ARMED", "Active": "ACTIVE"}


def parse_ibstat(text: str) -> list[dict]:
    """`ibstat` -> [{"ca": "mlx4_0", "ca_type", "firmware", "node_guid",
    "ports": [IBPort...]}]. ibstat names the states ("Active",
    "Initializing") and prints the rate as a number ("40 (FDR10)").
    Indentation is tabs or spaces (or both, when a sample was pasted into
    Markdown), so lines are told apart by their keys."""
    cas: list[dict] = []
    ca = None
    port_fields: dict | None = None

    def close_port():
        nonlocal port_fields
        if ca is not None and port_fields is not None:
            ca["ports"].append(_ibstat_port(ca["ca"], port_fields))
        port_fields = None

    for raw in text.splitlines():
        line = raw.strip()
        if not line:
            continue
        m = re.match(r"^CA '([^']+)'$", line)
        if m:
            close_port()
            ca = {"ca": m.group(1), "ports": []}
            cas.append(ca)
            continue
        m = re.match(r"^Port (\d+):$", line)
        if m and ca is not None:
            close_port()
            port_fields = {"port": int(m.group(1))}
            continue
        key, sep, value = line.partition(":")
        if not sep or ca is None:
            continue
        key, value = key.strip(), value.strip()
        if port_fields is not None:
            port_fields[key] = value
        else:
            ca_key = {"CA type": "ca_type", "Number of ports": "num_ports", "Firmware version": "firmware",
                      "Hardware version": "hardware", "Node GUID": "node_guid",
                      "System image GUID": "system_image_guid"}.get(key)
            if ca_key:
                ca[ca_key] = int(value) if ca_key == "num_ports" else value
    close_port()
    return cas


def _ibstat_port(ca: str, f: dict) -> IBPort:
    state = f.get("State")
    return IBPort(
        device=ca,
        port=f["port"],
        guid=normalize_guid(f["Port GUID"]) if "Port GUID" in f else None,
        link_layer=f.get("Link layer"),
        state=IBSTAT_STATES.get(state, state.upper() if state else None),
        phys_state=f.get("Physical state"),
        rate=f.get("Rate"),
        rate_gbps=parse_rate_gbps(f.get("Rate")),
        sm_lid=parse_lid(f.get("SM lid")),
        lid=parse_lid(f.get("Base lid")),
    )


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

# Text varies by version: the rate column is headed "Bandwidth" in iperf3
# before 3.2 and "Bitrate" after; with -P N the totals are on [SUM] lines; in
# text, byte units are powers of 1024 and bit rates powers of 1000.


@dataclass(frozen=True)
class IperfText(IperfResult):
    source: str = "text"
    header: str | None = None  # "Bandwidth" (old) or "Bitrate" (new)


# "[ ID] Interval           Transfer     Bitrate         Retr  Cwnd"
_HEADER_RE = re.compile(r"^\[ ID\]\s+Interval\s+Transfer\s+(Bandwidth|Bitrate)\b")
# "[  5]   0.00-10.00  sec  10.9 GBytes  9.40 Gbits/sec    0             sender"
# "[SUM]   0.00-10.04  sec  26.0 GBytes  22.2 Gbits/sec                  receiver"
_LINE_RE = re.compile(
    r"^\[\s*(?P<id>\d+|SUM)\]\s+(?P<t0>[\d.]+)-\s*(?P<t1>[\d.]+)\s+sec\s+"
    r"(?P<xfer>[\d.]+)\s+(?P<xunit>[KMGT]?Bytes)\s+"
    r"(?P<rate>[\d.]+)\s+(?P<runit>[KMGT]?bits)/sec"
    r"(?:\s+(?P<retr>\d+))?(?:\s+[\d.]+\s+[KMGT]?Bytes)?"
    r"\s*(?P<role>sender|receiver)?\s*$")
_CONNECTED_RE = re.compile(r"^\[\s*(\d+)\]\s+local\s+\S+\s+port\s+\d+\s+connected\s+to\s+(\S+)\s+port\s+(\d+)")
_ERROR_RE = re.compile(r"^iperf3:\s*error\s*-\s*(.+)$")
_BIT_SCALE = {"bits": 1, "Kbits": 1e3, "Mbits": 1e6, "Gbits": 1e9, "Tbits": 1e12}


def iperf_looks_like(text: str) -> str | None:
    """"json" or "text" when this looks like iperf3 output, else None."""
    stripped = text.lstrip()
    if stripped.startswith("{") and '"start"' in stripped:
        return "json"
    if any(_HEADER_RE.match(line) or _ERROR_RE.match(line.strip()) for line in text.splitlines()):
        return "text"
    return None


def parse_iperf_text(text: str) -> IperfText:
    """A client's text output as users paste it. The final sender/receiver
    lines give the totals: the [SUM] pair with -P > 1, the single stream's
    pair otherwise. Raises ValueError when there is no iperf3 table at all."""
    header = None
    streams: set[str] = set()
    remote = None
    finals: dict[tuple[str, str], re.Match] = {}
    for raw in text.splitlines():
        line = raw.rstrip()
        err = _ERROR_RE.match(line.strip())
        if err:
            return IperfText(error=err.group(1).strip())
        m = _HEADER_RE.match(line)
        if m:
            header = header or m.group(1)
            continue
        m = _CONNECTED_RE.match(line)
        if m:
            streams.add(m.group(1))
            remote = f"{m.group(2)}:{m.group(3)}"
            continue
        m = _LINE_RE.match(line)
        if m and m.group("role"):
            finals[(m.group("id"), m.group("role"))] = m
    if header is None:
        raise ValueError("not iperf3 output: no '[ ID] Interval Transfer Bandwidth/Bitrate' header")
    key = "SUM" if ("SUM", "sender") in finals or ("SUM", "receiver") in finals else None
    if key is None:
        ids = sorted({i for i, _ in finals})
        key = ids[0] if len(ids) == 1 else None

    def rate(role: str) -> float | None:
        m = finals.get((key, role))
        return float(m.group("rate")) * _BIT_SCALE[m.group("runit")] if m else None

    sender = finals.get((key, "sender"))
    return IperfText(
        sent_bps=rate("sender"),
        received_bps=rate("receiver"),
        retransmits=int(sender.group("retr")) if sender and sender.group("retr") else None,
        num_streams=len(streams) or None,
        duration_s=float(sender.group("t1")) - float(sender.group("t0")) if sender else None,
        remote=remote,
        header=header,
    )


def parse_iperf_any(text: str) -> IperfResult:
    """JSON or text, whichever this is."""
    if iperf_looks_like(text) == "json":
        return parse_json(text)
    return parse_iperf_text(text)


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
