# SPDX-License-Identifier: GPL-2.0-or-later
"""The built package: what ./ib40.deb ships, its relations, lintian, and
`systemd-analyze verify` on the units as installed from it.

Uses ./ib40.deb when it is newer than every source it is built from,
otherwise builds it with `make -f mk/deb.mk deb` first."""
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from helpers import REPO
from ib40d.core import tuning
from ib40d.commands.cli import SUBCOMMANDS
from test_units import HOST_UNITS, add_programs, instance_name, systemd_analyze_verify

pytestmark = pytest.mark.deb

DEB = REPO / "ib40.deb"
SOURCES = ("ib40d", "units", "debian", "sysctl", "examples", "setup.cfg", "setup.py", "README.md")
UNIT_DIR = "lib/systemd/system"  # bookworm: units under /lib (merged /usr makes both one)


def newest_source_mtime() -> float:
    newest = 0.0
    for name in SOURCES:
        p = REPO / name
        paths = [p] if p.is_file() else [q for q in p.rglob("*") if q.is_file() and "/out/" not in str(q)]
        for q in paths:
            if q.parts[-2:-1] == ("debian",) and q.name in ("files", "debhelper-build-stamp"):
                continue
            if "debian/ib40/" in str(q) or "debian/.debhelper" in str(q):
                continue
            newest = max(newest, q.stat().st_mtime)
    return newest


@pytest.fixture(scope="module")
def deb() -> Path:
    if not DEB.exists() or DEB.stat().st_mtime < newest_source_mtime():
        proc = subprocess.run(["make", "-f", "mk/deb.mk", "deb"], cwd=REPO, capture_output=True, text=True,
                              timeout=900)
        assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return DEB


@pytest.fixture(scope="module")
def contents(deb) -> set[str]:
    out = subprocess.run(["dpkg-deb", "-c", str(deb)], capture_output=True, text=True, check=True).stdout
    # "drwxr-xr-x root/root 0 2026-11-24 05:00 ./usr/bin/" -> "/usr/bin"
    return {line.split(None, 5)[5].split(" -> ")[0][1:].rstrip("/") for line in out.splitlines()}


@pytest.fixture(scope="module")
def installed(deb, tmp_path_factory) -> Path:
    """The package unpacked over a copy of the host's units: what a machine
    has after `apt install ./ib40.deb`, minus the maintainer scripts."""
    root = tmp_path_factory.mktemp("installed")
    shutil.copytree(HOST_UNITS, root / "usr/lib/systemd/system", symlinks=True)
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root)], check=True)
    add_programs(root)
    return root


def field(deb, name) -> str:
    return subprocess.run(["dpkg-deb", "-f", str(deb), name], capture_output=True, text=True,
                          check=True).stdout.strip()


def test_ships_units_sysctl_entry_point_docs(contents):
    for unit in ("ib40d.service", "ib40-link@.service", "ib40-porttype.service", "ib40-opensm-gate.service",
                 "ib40-sync.path", "ib40-sync-dropins.path", "ib40-sync.service"):
        assert f"/{UNIT_DIR}/{unit}" in contents
    assert "/usr/lib/sysctl.d/60-ib40.conf" in contents
    for rules in ("60-ib40-mlx4.rules", "60-ib40-mlx5.rules"):
        assert f"/lib/udev/rules.d/{rules}" in contents
    assert "/usr/bin/ib40d" in contents
    for program in ("config-changed", "link-configured"):  # the units' ExecCondition= and ExecStart=
        assert f"/usr/lib/ib40/{program}" in contents
    assert "/usr/lib/python3/dist-packages/ib40d/commands/cli.py" in contents
    assert "/usr/share/doc/ib40/README.Debian" in contents  # the units' Documentation=
    assert "/usr/share/doc/ib40/examples/ib40.conf" in contents
    assert "/usr/share/man/man8/ib40d.8.gz" in contents
    assert "/usr/share/man/man5/ib40.conf.5.gz" in contents
    # /etc/ib40.conf is not shipped (its presence turns ib40 on), nor any
    # generated file: those belong to `ib40d sync`.
    assert not any(p.startswith("/etc") for p in contents)


def test_relations(deb):
    depends = [d.strip() for d in field(deb, "Depends").split(",")]
    for dep in ("python3-pyroute2", "python3-pyudev", "python3-pystemd", "python3-sdnotify", "python3-yaml"):
        assert dep in depends
    assert any(d.startswith("python3:any") or d.startswith("python3 ") or d == "python3" for d in depends)
    recommends = [r.strip() for r in field(deb, "Recommends").split(",")]
    assert recommends == ["mstflint", "rdma-core", "infiniband-diags", "opensm", "iperf3"]
    assert field(deb, "Architecture") == "all"


def test_lintian_has_no_errors_and_no_unexplained_warnings(deb):
    proc = subprocess.run(["lintian", "--fail-on", "none", str(deb)], capture_output=True, text=True,
                          timeout=600)
    tags = [line for line in proc.stdout.splitlines() if line[:2] in ("E:", "W:")]
    assert tags == [], proc.stdout
    # every override carries a comment saying why
    lines = (REPO / "debian/ib40.lintian-overrides").read_text().splitlines()
    for i, line in enumerate(lines):
        if line.strip() and not line.startswith("#"):
            assert i > 0 and lines[i - 1].startswith("#"), line


@pytest.mark.parametrize("unit", sorted(p.name for p in (REPO / "units").iterdir()))
def test_installed_units_verify(installed, unit):
    """Verify the units as the package installs them, with the package's own
    /usr/bin/ib40d."""
    unit_dir = installed / UNIT_DIR
    if "@." in unit:
        shutil.copy(unit_dir / unit, unit_dir / instance_name(Path(unit)))
    proc = systemd_analyze_verify(installed, instance_name(Path(unit)))
    assert (proc.returncode, proc.stdout + proc.stderr) == (0, "")


def test_entry_point_runs_from_the_package(installed):
    env = dict(os.environ, PYTHONPATH=str(installed / "usr/lib/python3/dist-packages"))
    script = installed / "usr/bin/ib40d"
    assert script.read_text().startswith("#!/usr/bin/python3")
    # the entry point called directly: no importlib.metadata lookup at each
    # start (debian/rules says what that costs)
    assert "from ib40d.commands.cli import main" in script.read_text()
    assert "metadata" not in script.read_text() and "load_entry_point" not in script.read_text()
    proc = subprocess.run(["/usr/bin/python3", str(script), "--version"], capture_output=True, text=True,
                          env=env, cwd="/", timeout=60)
    assert proc.returncode == 0 and proc.stdout.startswith("ib40d "), proc.stderr
    proc = subprocess.run(["/usr/bin/python3", str(script), "check", "-c",
                           str(installed / "usr/share/doc/ib40/examples/ib40.conf")],
                          capture_output=True, text=True, env=env, cwd="/", timeout=60)
    # the shipped example configures nothing until edited, and is valid
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_shipped_sysctl_is_tunings(installed):
    assert (installed / "usr/lib/sysctl.d/60-ib40.conf").read_text() == tuning.sysctl_d_text()


def test_maintainer_scripts_parse_and_man_page_lists_every_command(deb, tmp_path):
    subprocess.run(["dpkg-deb", "-e", str(deb), str(tmp_path / "control")], check=True)
    for script in ("postinst", "postrm", "prerm"):
        path = tmp_path / "control" / script
        assert path.exists(), script
        subprocess.run(["sh", "-n", str(path)], check=True)
    postinst = (tmp_path / "control/postinst").read_text()
    # installing never starts or restarts the units that touch links
    assert "deb-systemd-invoke $_dh_action 'ib40-sync-dropins.path' 'ib40-sync.path'" in postinst
    for unit in ("ib40d.service", "ib40-opensm-gate.service"):
        assert f"'{unit}'" not in postinst.split("deb-systemd-invoke $_dh_action")[1].split("\n")[0]
        assert f"deb-systemd-helper enable '{unit}'" in postinst
    manpage = (REPO / "debian/ib40d.8").read_text().replace("\\-", "-")
    for command in SUBCOMMANDS:
        assert f".B {command}\n" in manpage, command
