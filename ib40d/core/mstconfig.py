# SPDX-License-Identifier: GPL-2.0-or-later
"""Parse what `mstconfig` (mstflint) and `mlxconfig` (MFT) print.

Pure: text in, plain data out. The formats come from mstflint's
mlxconfig/mlxcfg_ui.cpp and the samples in fixtures/mstconfig:

    Device #1:
    ----------

    Device type:    ConnectX3
    Device:         /sys/bus/pci/devices/0000:01:00.0/config      ("PCI device:" before 4.x)

    Configurations:                              Next Boot         ("Default Current Next Boot" with -e,
             LINK_TYPE_P1                        VPI(3)             "Next Boot New" on set)
    *        LINK_TYPE_P2                        ETH(2) ...         ('*': next differs from current)

Errors are "-E- text" lines on stdout; `set` asks "Apply new Configuration?
(y/n) [n] :" unless -y is given. Exit status (mlxCfgStatus): 0 ok,
2 aborted by the user, 3 error.
"""

from __future__ import annotations

import re

from ib40d.core.records import dataclass, field

EXIT_OK = 0
EXIT_ABORTED = 2
EXIT_ERROR = 3

# LINK_TYPE_Pn values: IB(1), ETH(2), VPI(3) ("auto": the port senses the cable).
LINK_TYPE_TO_PORT_TYPE = {1: "ib", 2: "eth", 3: "auto"}
PORT_TYPE_TO_LINK_TYPE = {v: k for k, v in LINK_TYPE_TO_PORT_TYPE.items()}

_VALUE = re.compile(r"^(?P<label>.*?)\((?P<num>-?\d+)\)$")
_PCI = re.compile(r"([0-9a-fA-F]{4}:)?([0-9a-fA-F]{2}:[0-9a-fA-F]{2}\.[0-7])")
_PARAM = re.compile(r"^(?P<star>\*)?\s+(?P<name>[A-Z][A-Z0-9_]*(?:\[\d+\])?)\s+(?P<rest>\S.*)$")


@dataclass(frozen=True)
class Value:
    """One cell: "ETH(2)" -> label "ETH", number 2; "16" -> number 16."""
    text: str
    label: str | None
    number: int | None


@dataclass
class Device:
    index: int
    device_type: str | None = None  # "ConnectX3", "ConnectX3Pro", "ConnectX4LX"
    device: str | None = None  # as printed: sysfs config path, bus address or /dev/mst path
    name: str | None = None
    description: str | None = None
    columns: list[str] = field(default_factory=list)  # ["Next Boot"], ["Default", "Current", "Next Boot"], ...
    params: dict[str, dict[str, Value]] = field(default_factory=dict)  # name -> column -> value
    differs: set[str] = field(default_factory=set)  # rows marked '*'
    truncated: bool = False  # a literal "..." line: the listing was cut
    errors: list[str] = field(default_factory=list)

    @property
    def pci(self) -> str | None:
        """The bus address in the Device: line, normalized to 0000:05:00.0."""
        return normalize_pci(self.device or "")

    def value(self, name: str, column: str = "Next Boot") -> Value | None:
        return self.params.get(name, {}).get(column)

    def link_types(self, column: str = "Next Boot") -> dict[int, str]:
        """{1: "eth", 2: "auto"} from LINK_TYPE_P1/P2 in that column."""
        result = {}
        for port in (1, 2):
            v = self.value(f"LINK_TYPE_P{port}", column)
            if v is not None and v.number in LINK_TYPE_TO_PORT_TYPE:
                result[port] = LINK_TYPE_TO_PORT_TYPE[v.number]
        return result


@dataclass
class Output:
    devices: list[Device] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # every "-E-" text, without the prefix
    infos: list[str] = field(default_factory=list)  # "-I-" texts
    applied: bool = False  # "Applying... Done!"
    prompted: bool = False  # the "Apply new Configuration?" question was printed


def normalize_pci(text: str) -> str | None:
    m = _PCI.search(text)
    if not m:
        return None
    domain = (m.group(1) or "0000:").lower()
    return domain + m.group(2).lower()


def parse_value(text: str) -> Value:
    text = text.strip()
    m = _VALUE.match(text)
    if m:
        return Value(text, m.group("label"), int(m.group("num")))
    try:
        return Value(text, None, int(text, 0))
    except ValueError:
        return Value(text, None, None)  # "N/A", "Array[0..7]"


def _split_columns(rest: str, ncols: int) -> list[str]:
    # Cells are printed "%-16s": values never contain spaces, so split on runs.
    cells = rest.split()
    if ncols and len(cells) > ncols:
        cells = cells[:ncols]
    return cells


def parse(text: str) -> Output:
    out = Output()
    dev: Device | None = None
    in_table = False
    for raw in text.splitlines():
        line = raw.rstrip()
        stripped = line.strip()
        if not stripped:
            continue
        m = re.match(r"^Device #(\d+):$", stripped)
        if m:
            dev = Device(index=int(m.group(1)))
            out.devices.append(dev)
            in_table = False
            continue
        if "-E-" in stripped:
            # Also after the prompt on the same line: "... [n] : -E- Aborted by user."
            if "Apply new Configuration" in stripped:
                out.prompted = True
            msg = stripped[stripped.index("-E-") + 3:].strip()
            out.errors.append(msg)
            if dev is not None:
                dev.errors.append(msg)
            continue
        if stripped.startswith("-I-"):
            out.infos.append(stripped[3:].strip())
            continue
        if "Apply new Configuration" in stripped:
            out.prompted = True
            continue
        if stripped.startswith("Applying..."):
            out.applied = stripped.endswith("Done!")
            continue
        if dev is None or stripped.startswith("---"):
            continue
        header = re.match(r"^(Device type|PCI device|Device|Name|Description):\s*(.*)$", stripped)
        if header and not in_table:
            key, val = header.group(1), header.group(2).strip()
            attr = {"Device type": "device_type", "PCI device": "device", "Device": "device",
                    "Name": "name", "Description": "description"}[key]
            setattr(dev, attr, val or None)
            continue
        if stripped.startswith("Configurations:"):
            cols = stripped[len("Configurations:"):].split()
            # Column titles are single words except "Next Boot".
            joined = " ".join(cols).replace("Next Boot", "Next\0Boot")
            dev.columns = [c.replace("\0", " ") for c in joined.split()] or ["Next Boot"]
            in_table = True
            continue
        if stripped == "...":
            dev.truncated = True
            continue
        if in_table:
            pm = _PARAM.match(line)
            if pm:
                cells = _split_columns(pm.group("rest"), len(dev.columns))
                dev.params[pm.group("name")] = {col: parse_value(cell) for col, cell in zip(dev.columns, cells)}
                if pm.group("star"):
                    dev.differs.add(pm.group("name"))
    return out


# How mstconfig refuses a card, from its "-E-" line. Each kind maps to one
# sentence for the user (see refusal_message).
REFUSALS = (
    ("unsupported", "Unsupported device"),
    ("open-failed", "Failed to open device"),
    ("query-failed", "Failed to query device"),
    ("aborted", "Aborted by user"),
)


def refusal(out: Output, returncode: int) -> tuple[str, str] | None:
    """(kind, the -E- text) when mstconfig failed, else None."""
    for kind, needle in REFUSALS:
        for err in out.errors:
            if needle.lower() in err.lower():
                return kind, err
    if returncode != EXIT_OK or out.errors:
        text = out.errors[-1] if out.errors else f"exit status {returncode}"
        return "error", text
    return None


def refusal_message(kind: str, text: str, pci: str) -> str:
    """One line saying why mstconfig can't be used on this card."""
    why = {
        # mstflint 4.26 dropped ConnectX-3; Debian 13 ships 4.31 and Ubuntu
        # 24.04 4.26, so there this is the normal case, not an error.
        "unsupported": ("this mstflint no longer supports the card (mstflint 4.26+ dropped ConnectX-3; "
                        "Debian 13 ships 4.31, Ubuntu 24.04 4.26): ib40 uses the mlx4 driver instead"),
        "open-failed": "it could not open the card (driver or permissions)",
        "query-failed": "it could not read the card's configuration (firmware too old?)",
        "aborted": "it asked for confirmation instead of running non-interactively",
        "missing": "it is not installed (apt install mstflint)",
    }.get(kind, "it failed")
    return f"mstconfig -d {pci}: \"-E- {text}\": {why}" if kind != "missing" else f"mstconfig: {why}"
