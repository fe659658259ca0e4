# SPDX-License-Identifier: GPL-2.0-or-later
"""bench/cli.py (`make bench`) runs and prints every figure it promises.

Not a timed test: the figures themselves are not judged here, only that the
bench still measures what README.md says it does, on real network
namespaces (it makes its own, in a mount namespace of its own with a tmpfs
over /run).
"""

import os
import re
import shutil
import subprocess

import pytest
from helpers import REPO

COMMANDS = ["ib40d check", "ib40d status (netns)", "ib40d plan (converged netns)",
            "ib40d apply, first (fresh netns)", "ib40d apply, second (converged)"]


@pytest.fixture(autouse=True)
def needs_root():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("unshare"):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with iproute2: the bench must run there, not skip")
        pytest.skip("needs root, ip(8) and unshare(1)")


def bench(*args: str) -> str:
    # BENCH_CHECKOUT: this checkout, even where an ib40 .deb is installed.
    env = dict(os.environ, BENCH_RUNS="3", BENCH_CHECKOUT="1")
    proc = subprocess.run(["/usr/bin/python3", str(REPO / "bench" / "cli.py"), *args],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def ms(text: str, label: str) -> list[float]:
    line = next(line for line in text.splitlines() if line.strip().startswith(label))
    return [float(figure) for figure in re.findall(r"([\d.]+) ms", line)]


def test_bench_prints_each_command_against_the_pyroute2_import_and_judges_the_targets():
    out = bench()
    for label in [*COMMANDS, "python3 -c 'import pyroute2'", "ib40d daemon: first apply, then exit"]:
        assert all(value > 0 for value in ms(out, label)), label
    verdicts = re.findall(r"^\s+(.+?)\s+([\d.]+)\s+(met|NOT met)$", out, re.M)
    assert [label for label, _, _ in verdicts] == [
        "status <= 0.5x import pyroute2", "check <= 0.5x import pyroute2", "second apply <= 0.3x first",
        "second apply <= 0.5x import pyroute2", "daemon boot CPU <= 1.5x import"]


def test_bench_against_another_tree_prints_both_medians_and_their_ratio(tmp_path):
    other = tmp_path / "other"
    shutil.copytree(REPO / "ib40d", other / "ib40d", ignore=shutil.ignore_patterns("__pycache__"))
    out = bench("--against", str(other))
    for label in COMMANDS:
        this, then = ms(out, label)
        ratio = float(next(line for line in out.splitlines() if label in line).split()[-1])
        assert ratio == pytest.approx(this / then, abs=0.01), label


def test_bench_against_a_tree_without_ib40_says_so(tmp_path):
    proc = subprocess.run(["/usr/bin/python3", str(REPO / "bench" / "cli.py"), "--against", str(tmp_path)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert f"{tmp_path}: not an ib40 checkout" in proc.stderr
