# SPDX-License-Identifier: GPL-2.0-or-later
"""Hypothesis fuzz of the configuration parser, through `ib40d check`.

Whatever the bytes: exit 0 or 2, never a traceback; every problem on one
line, as FILE:LINE inside the file; the same bytes give the same answer; and
a file that passes renders udev rules in which every value from the file is
taken literally. Deterministic (derandomize, no example database) and
bounded: about 3000 inputs, a few seconds, plus a few runs of the real CLI.
"""

import contextlib
import io
import itertools
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from hypothesis.configuration import set_hypothesis_home_dir

from helpers import REPO
from ib40d.commands import cli
from ib40d.core import udev
from ib40d.core.schema import BOND_MODES
from ib40d.system.config_reader import load
from ib40d.core.schema import SECTIONS
from test_udev import parse_rule

EXAMPLES = sorted((REPO / "examples").glob("*.conf"))


def fuzz_settings(n):
    return settings(max_examples=n, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


# ------------------------------------------------------------- running check

_work = {}  # "dir": this module's scratch directory (see _workdir)
_runs = itertools.count(1)


def _write(files: list[bytes]) -> tuple[str, list[str]]:
    """The main file and its drop-ins in a fresh directory -> (main path,
    every path in the order ib40 reads them)."""
    d = os.path.join(_work["dir"], str(next(_runs)))
    os.mkdir(d)
    main = os.path.join(d, "ib40.conf")
    paths = [main] + [os.path.join(d, "ib40.conf.d", f"{i:02d}-fuzz.conf") for i in range(1, len(files))]
    if len(files) > 1:
        os.mkdir(main + ".d")
    for path, data in zip(paths, files):
        with open(path, "wb") as f:
            f.write(data)
    return main, paths


def check_in_process(main: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        # --root: an empty machine, so [card] does not look at the host's PCI bus
        rc = cli.main(["check", "-c", main, "--root", os.path.dirname(main)])
    return rc, out.getvalue(), err.getvalue()


def lines_in(data: bytes) -> int:
    return data.count(b"\n") + (1 if data and not data.endswith(b"\n") else 0)


def assert_check_invariants(files: list[bytes], rc: int, out: str, err: str, paths: list[str]) -> None:
    assert rc in (0, 2), (rc, out, err)
    assert "Traceback" not in err
    if rc == 0:
        drop_ins = f" (+{len(paths) - 1} drop-in)" if len(paths) > 1 else ""
        assert err == "" and out.startswith(f"{paths[0]}{drop_ins}: valid; "), out
        return
    *problems, summary = err.splitlines()
    n = len(problems)
    # one line per problem: the count matches what the summary says
    assert summary == f"ib40d: {n} problem{'s' if n != 1 else ''} in the configuration; nothing was changed", err
    for problem in problems:
        assert problem.isprintable(), problem
        for path, data in zip(paths, files):
            m = re.match(re.escape(path) + r":(\d+): \S", problem)
            if m:
                assert 1 <= int(m.group(1)) <= lines_in(data), (problem, data)
                break
        else:
            raise AssertionError(f"no FILE:LINE: in {problem!r}")


_SAFE_VALUE = re.compile(r"[A-Za-z0-9_.:@-]+")
# The rules' own tokens: anything else in a rule came from the file.
_FIXED_TOKENS = {
    ("SUBSYSTEM", None, "==", "net"), ("SUBSYSTEM", None, "!=", "net"), ("ACTION", None, "==", "add"),
    ("ACTION", None, "==", "remove"), ("DRIVERS", None, "==", "?*"), ("ATTR", "{type}", "==", "1"),
    ("ATTR", "{type}", "==", "32"), ("ATTR", "{dev_id}", "==", "0x0"), ("ENV", "{NM_UNMANAGED}", "=", "1"),
    ("TAG", None, "+=", "systemd"), ("GOTO", None, "=", "ib40_hooks_end"), ("LABEL", None, "=", "ib40_hooks_end"),
}


def assert_rules_take_values_literally(main: str) -> None:
    """A valid config's udev rules: every rule line parses, and each value
    from the file is one of its names, MACs or GUIDs, with no quote, glob, %
    or $ in it."""
    cfg = load(main)
    names = set(cfg.names())
    macs = {link.mac for link in cfg.links.values() if link.mac}
    globs = {udev.guid_address_glob(g) for g in (getattr(link, "guid", None) for link in cfg.links.values()) if g}
    units = {udev.link_unit(n) for n in names}
    for name in names:
        assert re.fullmatch(r"[A-Za-z0-9_.-]{1,15}", name) and name not in ("lo", "all", "default", ".", "..")
    for text in udev.rule_files(cfg, ", ".join(cfg.files)).values():
        for line in (text or "").splitlines():
            assert not line.endswith("\\"), line
            if not line or line.startswith("#"):
                continue
            for key, attr, op, value in parse_rule(line):
                if (key, attr, op, value) in _FIXED_TOKENS or (key, value) == ("NAME", ""):
                    continue
                if key in ("NAME", "KERNEL"):
                    assert value in names, line
                elif (key, attr) == ("ATTR", "{address}"):
                    assert value in macs | globs, line
                    value = value.removeprefix("?*:")  # the glob's own part
                else:
                    assert (key, attr) == ("ENV", "{SYSTEMD_WANTS}") and value in units, line
                assert _SAFE_VALUE.fullmatch(value), line


def run_and_check(files: list[bytes]) -> int:
    main, paths = _write(files)
    try:
        rc, out, err = check_in_process(main)
        assert_check_invariants(files, rc, out, err, paths)
        # the same bytes, the same answer
        assert check_in_process(main) == (rc, out, err)
        if rc == 0:
            assert_rules_take_values_literally(main)
        return rc
    finally:
        shutil.rmtree(os.path.dirname(main))


@pytest.fixture(scope="module", autouse=True)
def _workdir():
    _work["dir"] = tempfile.mkdtemp(prefix="ib40-fuzz-")
    # Hypothesis caches Unicode tables in ./.hypothesis: not in the source tree
    set_hypothesis_home_dir(os.path.join(_work["dir"], "hypothesis"))
    yield
    shutil.rmtree(_work.pop("dir"), ignore_errors=True)


# ------------------------------------------------------------- strategies

# What ends, splits or pads a line somewhere, and what does not.
ODD_SPACE = ["\t", " ", "\f", "\v", "\r", "\x1c", "\x1d", "\x1e", "\x1f", "\x85", "\xa0", "\u2028", "\u2029",
             "\ufeff", "\u3000", "\x00"]
INTERESTING_BYTES = [s.encode() for s in ODD_SPACE] + [
    b"\n", b"\r\n", b"\xef\xbb\xbf", b"\xff", b"\xc3", b"\xe2\x80", b"[", b"]", b"=", b"#", b";", b"%", b'"',
    b"*", b"?", b",", b"/", b":", b"lo", b"\\", b"$", b"|", b"\xef\xbc\x99",  # a full-width 9
]

NAMES = ["eth40a", "eth40b", "ib0", "ib1", "bond0", "bond1", "a-b.c_d", "lo", "all", "default", ".", "..",
         "eth*", "e?", "e[0]", 'x",RUN+="y', "bond%d", "n$x", "a|b", "a\\b", "toolongname12345", "\u00e9th0"]
NUMBERS = ["0", "1", "67", "68", "100", "200", "250", "1500", "4092", "4093", "9000", "65520", "65521",
           "-1", "+5", "007", "1_000", "0x10", "\uff19\uff10\uff10\uff10", "\u0669", "9" * 40, "1.5", "4294967296",
           "9" * 5000, "0" * 5000 + "1"]  # int() refuses more than 4300 digits
ADDRESSES = ["10.30.0.2/16", "10.30.0.1/24", "10.30.0.2", "0.0.0.0/32", "0.0.0.0/0", "255.255.255.255/32",
             "10.30.0.255/24", "10.30.0.0/24", "10.30.0.0/31", "10.30.0.1/31", "10.30.0.7/32", "224.0.0.5/24",
             "169.254.1.1/16", "2001:db8::1/64", "2001:db8::/64", "2001:db8::/127", "fe80::1/64",
             "2001:db8::1%v1/64", "fe80::1%eth0/64", "ff02::1/64", "::/128", "::1/128", "1.2.3.4/33",
             "1.2.3.4/-1", "10.30.0.2/16 10.30.0.2/24", "\uff11.2.3.4/8"]
VALUES = {
    "mac": ["00:02:c9:3e:ca:b1", "00:02:C9:3E:CA:B0", "00:00:00:00:00:00", "ff:ff:ff:ff:ff:ff",
            "01:00:5e:00:00:01", "02:00:00:00:00:01", "00:02:c9:3e:ca", "00-02-c9-3e-ca-b1"],
    "guid": ["0x0002c903003f02f1", "0002:c903:003f:02f1", "0x0002C903003F02F2", "0x0000000000000000",
             "0000:0000:0000:0000", "0002c903003f02f1", "0x0002c903003f02f"],
    "address": ADDRESSES,
    "netmask": ["255.255.255.0", "255.255.0.0", "24", "0.0.0.0", "255.255.255.255", "255.0.255.0", "/24"],
    "broadcast": ["10.30.0.255", "10.30.255.255", "255.255.255.255", "0.0.0.0", "10.31.0.255", "nope"],
    "slaves": ["eth40a eth40b", "eth40a,eth40b", "ib0 ib1", ",", ", ,", "eth40a eth40a", "bond0", "lo",
               "eth40a ib0", "eth*"],
    "mode": [*BOND_MODES, "connected", "datagram", "0", "1", "6", "7", "ACTIVE-BACKUP",
             "active-bac\u212aup", "reliable"],
    "arp_ip_target": ["10.30.0.1", "10.30.0.1 10.30.0.2", "0.0.0.0", "255.255.255.255", "10.30.0.1 10.30.0.1",
                      " ".join(f"10.30.0.{i}" for i in range(1, 19)), "fe80::1", "10.30.0.1%x"],
    "use_carrier": ["yes", "no", "1", "0", "on", "off", "true", "maybe"],
    "tuning": ["yes", "no", "TRUE", "2"],
    "pci": ["05:00.0", "0000:05:00.0", "0000:05:00.8", "5:0.0", "0000:05:00"],
    "port1": ["ib", "eth", "auto", "IB", "infiniband"],
    "port2": ["ib", "eth", "auto", "vpi"],
    "start": ["auto", "always", "never", "sometimes"],
}
for _key in ("mtu", "txqueuelen", "miimon", "updelay", "downdelay", "arp_interval", "priority"):
    VALUES[_key] = NUMBERS
KINDS = sorted(SECTIONS)
NAMED = [kind for kind in KINDS if SECTIONS[kind].named]
ALL_KEYS = sorted({key for section in SECTIONS.values() for key in section.key_names})

# one draw each: data generation is most of the time these tests take
space = st.sampled_from(["", "", " ", "  ", " \t"] + ODD_SPACE)
any_text = st.text(max_size=16)


@st.composite
def sections(draw):
    kind = draw(st.sampled_from(KINDS + ["nic"]))
    name = draw(st.sampled_from(NAMES) | any_text) if kind in NAMED or draw(
        st.integers(0, 9)) == 0 else None
    header = f"[{kind} {name}]" if name is not None else f"[{kind}]"
    lines = [draw(space) + header + draw(space)]
    keys = sorted(SECTIONS[kind].key_names) if kind in SECTIONS else ALL_KEYS
    for _ in range(draw(st.integers(0, 6))):
        key = draw(st.sampled_from(keys) | st.sampled_from(ALL_KEYS + ["speed", "MTU"]))
        value = draw(st.sampled_from(VALUES.get(key.lower(), NUMBERS)) | any_text)
        comment = draw(st.sampled_from(["", " # a comment", " ; why", "# glued"]))
        lines.append(f"{draw(space)}{key}{draw(space)}={draw(space)}{value}{comment}")
    if draw(st.booleans()):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(["", "# note", "; note", "[", "x"])))
    return lines


@st.composite
def config_texts(draw):
    lines = [line for section in draw(st.lists(sections(), max_size=6)) for line in section]
    ends = draw(st.sampled_from(["\n", "\r\n", "mixed"]))
    text = "".join(line + (draw(st.sampled_from(["\n", "\r\n"])) if ends == "mixed" else ends) for line in lines)
    if draw(st.booleans()):
        text = text.rstrip("\r\n")  # no newline at the end
    if draw(st.integers(0, 4)) == 0:
        text = "\ufeff" + text
    return text.encode("utf-8")


def _uncommented(data: bytes) -> bytes:
    """examples/ib40.conf configures nothing until its lines are uncommented."""
    return re.sub(rb"(?m)^# (?=\[|[a-z_0-9]+ = )", b"", data)


CORPUS = [p.read_bytes() for p in EXAMPLES] + [_uncommented(p.read_bytes()) for p in EXAMPLES]


@st.composite
def mutated_examples(draw):
    data = bytearray(draw(st.sampled_from(CORPUS)))
    payload = st.sampled_from(INTERESTING_BYTES) | st.binary(min_size=1, max_size=6)
    for _ in range(draw(st.integers(1, 6))):
        op = draw(st.sampled_from(["insert", "replace", "delete", "duplicate-line", "drop-line"]))
        at = draw(st.integers(0, len(data)))
        if op == "insert":
            data[at:at] = draw(payload)
        elif op == "replace":
            data[at:at + 1] = draw(payload)
        elif op == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        else:
            lines = bytes(data).split(b"\n")
            i = draw(st.integers(0, len(lines) - 1))
            if op == "duplicate-line":
                lines.insert(i, lines[i])
            else:
                del lines[i]
            data = bytearray(b"\n".join(lines))
    return bytes(data)


# ------------------------------------------------------------- the fuzz tests

def test_the_corpus_is_mostly_valid():
    # mutations of files that pass check reach the checks behind the syntax
    rcs = [run_and_check([data]) for data in CORPUS]
    assert rcs.count(0) >= len(EXAMPLES) + 1, rcs


@fuzz_settings(700)
@given(st.binary(max_size=600))
def test_raw_bytes(data):
    run_and_check([data])


@fuzz_settings(900)
@given(mutated_examples())
def test_mutated_examples(data):
    run_and_check([data])


_valid_structured = []


@fuzz_settings(800)
@given(config_texts())
def test_structured_configs(data):
    if run_and_check([data]) == 0:
        _valid_structured.append(data)


def test_structured_configs_reach_valid_ones():
    # the strategy is not all noise: some of its files pass check (and so
    # had their udev rules checked)
    assert len(_valid_structured) >= 10, len(_valid_structured)


@fuzz_settings(300)
@given(st.lists(config_texts() | mutated_examples(), min_size=2, max_size=4))
def test_main_file_and_dropins(files):
    run_and_check(files)


@fuzz_settings(12)
@given(config_texts() | mutated_examples() | st.binary(max_size=200))
def test_real_cli(data):
    """A few through the installed entry point, as a user runs it."""
    main, paths = _write([data])
    try:
        proc = subprocess.run([sys.executable, "-m", "ib40d", "check", "-c", main, "--root", os.path.dirname(main)],
                              capture_output=True, text=True, cwd=REPO, timeout=120,
                              env=dict(os.environ, PYTHONPATH=str(REPO)))
        assert_check_invariants([data], proc.returncode, proc.stdout, proc.stderr, paths)
        assert (proc.returncode, proc.stdout, proc.stderr) == check_in_process(main)
    finally:
        shutil.rmtree(os.path.dirname(main))
