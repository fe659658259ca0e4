# SPDX-License-Identifier: GPL-2.0-or-later
"""The shipped systemd units: `systemd-analyze verify` and the rules the
units are built on (ordering of a network configurator, a comment on every
line, no udev-settle).

systemd is not PID 1 on the build machine. `systemd-analyze verify UNIT-PATH`
then fails when ExecStart's program is not installed on the host, so each
unit is verified by name with --root=DIR, DIR holding a copy of the host's
unit directory, the units, and /usr/bin/ib40d (a shim running this tree). A
template is checked as an instance (ib40-link@eth40a.service). It exits 0
on unknown keys but prints them: any output at all is a failure.
"""
import configparser
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import REPO

UNITS = REPO / "units"
# The package's own programs the units run besides /usr/bin/ib40d, from the
# tree (debian/ib40.install puts them there).
SHIPPED_PROGRAMS = {"/usr/lib/ib40/config-changed": REPO / "libexec/config-changed",
                    "/usr/lib/ib40/link-configured": REPO / "libexec/link-configured"}
UNIT_FILES = sorted(p for p in UNITS.iterdir() if p.suffix in (".service", ".path", ".socket", ".timer"))
HOST_UNITS = Path("/usr/lib/systemd/system")
# Keys that describe rather than decide: no "why" comment needed.
SELF_EXPLAINING = {"Description", "Documentation", "Unit"}
# Programs of recommended packages that units run: present in the verify
# root as they are on a machine with the Recommends installed.
RECOMMENDED_PROGRAMS = ("/usr/sbin/opensm",)
# Programs of essential packages that units run (/bin/kill, systemctl, the
# shell of config-changed): copied from the host into the verify root.
ESSENTIAL_PROGRAMS = ("/bin/sh", "/bin/kill", "/bin/systemctl")


def add_programs(root: Path) -> None:
    """What a real machine has besides ib40: essential programs (from the
    host) and those of the recommended packages (shims)."""
    for program in ESSENTIAL_PROGRAMS:
        p = root / program.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(program, p)
    for program in RECOMMENDED_PROGRAMS:
        p = root / program.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text("#!/bin/sh\nexit 0\n")
        p.chmod(0o755)


def instance_name(path: Path) -> str:
    name = path.name
    if "@." in name:
        # any valid instance; eth40a as in `systemctl enable ib40-link@eth40a`
        name = name.replace("@.", "@eth40a." if name.startswith("ib40-link@") else "@1.")
    return name


def verify_root(tmp_path: Path, unit_files, ib40d_shim: bool = True) -> Path:
    root = tmp_path / "root"
    unit_dir = root / "usr/lib/systemd/system"
    shutil.copytree(HOST_UNITS, unit_dir, symlinks=True)
    for f in unit_files:
        shutil.copy(f, unit_dir / f.name)
        if "@." in f.name:
            shutil.copy(f, unit_dir / instance_name(f))
    if ib40d_shim:
        (root / "usr/bin").mkdir(parents=True)
        shim = root / "usr/bin/ib40d"
        shim.write_text(f'#!/bin/sh\nPYTHONPATH={REPO} exec /usr/bin/python3 -m ib40d "$@"\n')
        shim.chmod(0o755)
    for program, source in SHIPPED_PROGRAMS.items():
        (root / program.lstrip("/")).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(source, root / program.lstrip("/"))
    add_programs(root)
    return root


def systemd_analyze_verify(root: Path, unit: str) -> subprocess.CompletedProcess:
    return subprocess.run(["systemd-analyze", "verify", f"--root={root}", unit],
                          capture_output=True, text=True, cwd=root, timeout=60)


@pytest.fixture(scope="module")
def verify_env(tmp_path_factory):
    if shutil.which("systemd-analyze") is None or not HOST_UNITS.is_dir():
        pytest.fail("systemd-analyze and /usr/lib/systemd/system are needed (Build-Depends: systemd)")
    return verify_root(tmp_path_factory.mktemp("verify"), UNIT_FILES)


def test_the_units_we_ship_are_there():
    names = {p.name for p in UNIT_FILES}
    assert {"ib40d.service", "ib40-link@.service", "ib40-porttype.service", "ib40-opensm-gate.service",
            "ib40-sync.path", "ib40-sync-dropins.path", "ib40-sync.service", "ib40-sync-check.service"} <= names


@pytest.mark.parametrize("unit", UNIT_FILES, ids=lambda p: p.name)
def test_systemd_analyze_verify_is_silent(verify_env, unit):
    proc = systemd_analyze_verify(verify_env, instance_name(unit))
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_verify_method_catches_mistakes(tmp_path):
    """The method above would let nothing through: a typo and a missing
    program both produce output."""
    bad = tmp_path / "ib40-bad.service"
    bad.write_text((UNITS / "ib40-sync.service").read_text().replace("Type=oneshot", "Tpye=oneshot"))
    root = verify_root(tmp_path, [bad])
    assert "Unknown key 'Tpye'" in systemd_analyze_verify(root, bad.name).stderr
    root2 = verify_root(tmp_path / "2", [UNITS / "ib40-sync.service"], ib40d_shim=False)
    assert "/usr/bin/ib40d is not executable" in systemd_analyze_verify(root2, "ib40-sync.service").stderr


def parse(path: Path) -> configparser.RawConfigParser:
    cp = configparser.RawConfigParser(strict=False, interpolation=None, delimiters=("=",))
    cp.optionxform = str
    # systemd allows repeated keys (After=, ExecReload=); keep the last for lookups
    cp.read_string(path.read_text())
    return cp


def directives(path: Path):
    """(line number, key, value) of every directive, in order."""
    for n, line in enumerate(path.read_text().splitlines(), 1):
        s = line.strip()
        if s and not s.startswith(("#", ";", "[")):
            key, _, value = s.partition("=")
            yield n, key.strip(), value.strip()


def all_values(path: Path, key: str) -> list[str]:
    return [w for _, k, v in directives(path) if k == key for w in v.split()]


@pytest.mark.parametrize("unit", UNIT_FILES, ids=lambda p: p.name)
def test_every_line_says_why(unit):
    """Each directive sits in a block of directives that starts right after
    a comment (rdma-core kernel-boot style)."""
    lines = unit.read_text().splitlines()
    missing = []
    for n, key, _ in directives(unit):
        if key in SELF_EXPLAINING:
            continue
        i = n - 2
        while i >= 0 and lines[i].strip() and not lines[i].lstrip().startswith(("#", "[")):
            i -= 1
        if i < 0 or not lines[i].lstrip().startswith("#"):
            missing.append(f"{unit.name}:{n}: {key}= has no comment saying why")
    assert missing == []


@pytest.mark.parametrize("unit", UNIT_FILES, ids=lambda p: p.name)
def test_no_udev_settle_and_the_config_switch(unit):
    text = unit.read_text()
    assert "systemd-udev-settle" not in "\n".join(l for l in text.splitlines() if not l.lstrip().startswith("#"))
    # Units that touch links are idle until /etc/ib40.conf exists; sync runs
    # without it (it removes the rules of a deleted config).
    if not unit.name.startswith(("ib40-sync", "ib40-opensm@")):
        assert "/etc/ib40.conf" in all_values(unit, "ConditionPathExists")


def test_daemon_is_ordered_as_a_network_configurator():
    unit = UNITS / "ib40d.service"
    cp = parse(unit)
    assert cp["Service"]["Type"] == "notify"
    # an invalid config: the daemon exits 2 before touching anything, and
    # that status is not worth a restart
    assert all_values(unit, "ExecStartPre") == []
    assert cp["Service"]["RestartPreventExitStatus"] == "2"
    assert cp["Service"]["ExecStart"] == "/usr/bin/ib40d daemon"
    assert "network-pre.target" in all_values(unit, "After")
    # systemd.special(7): network managers never pull network-pre.target in
    assert "network-pre.target" not in all_values(unit, "Wants") + all_values(unit, "Requires")
    assert "network.target" in all_values(unit, "Before")
    assert "network.target" in all_values(unit, "Wants")
    assert "ib40-porttype.service" in all_values(unit, "After")
    assert "$MAINPID" in " ".join(all_values(unit, "ExecReload"))
    assert cp["Install"]["WantedBy"] == "multi-user.target"
    # /run/ib40 outlives a daemon restart: porttype and opensm state live there
    assert cp["Service"]["RuntimeDirectory"] == "ib40"
    assert cp["Service"]["RuntimeDirectoryPreserve"] == "yes"


def test_link_unit_follows_its_device_and_asks_the_daemon():
    unit = UNITS / "ib40-link@.service"
    cp = parse(unit)
    dev = "sys-subsystem-net-devices-%i.device"
    assert all_values(unit, "BindsTo") == [dev]
    assert dev in all_values(unit, "After")
    assert "ib40d.service" in all_values(unit, "Wants") and "ib40d.service" in all_values(unit, "After")
    assert cp["Service"]["Type"] == "oneshot" and cp["Service"]["RemainAfterExit"] == "yes"
    # %I: the unescaped interface name for the program, %i for the unit name
    # a shell test first (the daemon's mark, tests/kernel/test_link_unit.py), then the client
    assert cp["Service"]["ExecStart"] == "/usr/lib/ib40/link-configured %I"
    assert (REPO / "libexec/link-configured").read_text().rstrip().endswith(
        'exec ${IB40D:-/usr/bin/ib40d} link-ready "$name"')
    assert cp["Install"]["WantedBy"] == dev


def test_porttype_runs_before_links_and_gate_after():
    assert "ib40d.service" in all_values(UNITS / "ib40-porttype.service", "Before")
    gate_after = all_values(UNITS / "ib40-opensm-gate.service", "After")
    assert {"ib40d.service", "ib40-porttype.service"} <= set(gate_after)


def test_sync_path_watches_the_config_and_its_dropins():
    unit = UNITS / "ib40-sync.path"
    # /etc itself: a file renamed over /etc/ib40.conf is seen only there
    assert all_values(unit, "PathChanged") == ["/etc"]
    # one path per unit (systemd 252 drops events across paths of one unit)
    assert all_values(UNITS / "ib40-sync-dropins.path", "PathChanged") == ["/etc/ib40.conf.d"]
    for path_unit in ("ib40-sync.path", "ib40-sync-dropins.path"):
        assert parse(UNITS / path_unit)["Path"]["Unit"] == "ib40-sync.service"
    assert parse(UNITS / "ib40-sync.service")["Service"]["ExecStart"] == "/usr/bin/ib40d sync"


def test_a_save_while_sync_runs_is_checked_once_systemd_watches_again():
    """systemd stops watching /etc while ib40-sync.service runs. The one
    backstop: ib40-sync-check.service, started at the end of every run
    (skipped, synced or failed), compares again and runs the sync again."""
    sync_unit, check_unit = UNITS / "ib40-sync.service", UNITS / "ib40-sync-check.service"
    assert all_values(sync_unit, "OnSuccess") == all_values(sync_unit, "OnFailure") == ["ib40-sync-check.service"]
    # what it checks is what the last finished run recorded
    assert all_values(check_unit, "After") == ["ib40-sync.service"]
    # watched while it runs: no path unit triggers it
    assert all(parse(unit)["Path"].get("Unit") == "ib40-sync.service" for unit in UNITS.glob("*.path"))
    # syncs run in ib40-sync.service only, and the check is over before one ends
    assert parse(check_unit)["Service"]["ExecStart"] == "/bin/systemctl --no-block start ib40-sync.service"
    # one comparison for both, and no sleep in either
    assert all_values(sync_unit, "ExecCondition") == all_values(check_unit, "ExecCondition") == ["/usr/lib/ib40/config-changed"]
    assert os.access(SHIPPED_PROGRAMS["/usr/lib/ib40/config-changed"], os.X_OK)
    # started at every write to /etc: no start limit that a burst would hit
    for unit in (sync_unit, check_unit):
        assert parse(unit)["Unit"]["StartLimitIntervalSec"] == "0"


def sync_condition(root: Path) -> list[str]:
    """ib40-sync.service's ExecCondition, pointed at a fake root."""
    (program,) = all_values(UNITS / "ib40-sync.service", "ExecCondition")
    return ["env", f"IB40_ROOT={root}", "/bin/sh", str(SHIPPED_PROGRAMS[program])]


def test_sync_condition_passes_only_when_the_config_changed(tmp_path):
    from helpers import run_ib40d

    root = tmp_path
    (root / "etc").mkdir()
    conf = root / "etc/ib40.conf"
    cond = sync_condition(root)

    def goes_on():
        return subprocess.run(cond, timeout=10).returncode == 0

    def sync():
        run_ib40d("sync", "--root", str(root), check_rc=0)

    assert goes_on()  # nothing recorded yet (first event after boot)
    sync()
    assert not goes_on()  # no config, none recorded: unrelated /etc event
    conf.write_text("[link eth40a]\nmac = 00:02:c9:3e:ca:b1\n")
    assert goes_on()
    sync()
    assert not goes_on()
    # renamed over, as sed -i does: same bytes -> skip, other bytes -> go
    tmp = root / "etc/.ib40.conf.new"
    tmp.write_text(conf.read_text())
    os.replace(tmp, conf)
    assert not goes_on()
    tmp.write_text(conf.read_text() + "txqueuelen = 10000\n")
    os.replace(tmp, conf)
    assert goes_on()
    sync()
    (root / "etc/ib40.conf.d").mkdir()
    (root / "etc/ib40.conf.d/10-mtu.conf").write_text("[link eth40a]\nmtu = 9000\n")
    assert goes_on()
    sync()
    assert not goes_on()
    (root / "etc/ib40.conf.d/10-mtu.conf").unlink()
    assert goes_on()
    sync()
    conf.unlink()  # the rules generated from it must go: sync must run
    assert goes_on()
    sync()
    assert not (root / "etc/udev/rules.d/90-ib40-hooks.rules").exists()
    assert not goes_on()
    # an invalid file is recorded too: unrelated /etc events don't repeat its errors
    conf.write_text("[link eth40a]\nmac = nope\n")
    assert goes_on()
    run_ib40d("sync", "--root", str(root), check_rc=2)
    assert not goes_on()


@pytest.mark.parametrize("unit", UNIT_FILES, ids=lambda p: p.name)
def test_every_program_the_units_run_is_a_registered_subcommand(unit):
    from ib40d.commands.cli import SUBCOMMANDS

    for _, key, value in directives(unit):
        if key.startswith("Exec") and value.startswith("/usr/bin/ib40d"):
            assert value.split()[1] in SUBCOMMANDS, f"{unit.name}: {value}"


def test_daemon_refuses_an_invalid_config_with_the_status_the_unit_wont_restart(tmp_path):
    from helpers import run_ib40d

    bad = tmp_path / "ib40.conf"
    bad.write_text("[link eth40a]\nmac = 00:02:c9:3e:ca\n")
    proc = run_ib40d("daemon", "-c", str(bad), "--root", str(tmp_path), check_rc=2)
    assert "nothing was changed" in proc.stderr
    assert parse(UNITS / "ib40d.service")["Service"]["RestartPreventExitStatus"] == "2"


def test_static_udev_rules_hand_card_work_to_units():
    # Every rule of the shipped file is commented and hands its work to a
    # unit (a RUN+= program would be killed for running long).
    text = (UNITS.parent / "udev" / "60-ib40-mlx4.rules").read_text()
    lines = text.splitlines()
    rules = [i for i, l in enumerate(lines) if l and not l.startswith("#")]
    assert len(rules) == 2
    for i in rules:
        assert lines[i - 1].startswith("#"), lines[i]
        assert "RUN" not in lines[i] and 'TAG+="systemd"' in lines[i]
    assert 'DRIVER=="mlx4_core"' in lines[rules[0]] and "ib40-porttype.service" in lines[rules[0]]
    assert 'SUBSYSTEM=="infiniband"' in lines[rules[1]] and "ib40-opensm-gate.service" in lines[rules[1]]
    # the units they start exist and are not pulled in unconditionally
    assert "Wants=ib40-porttype.service" not in (UNITS / "ib40d.service").read_text()
