# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers shared by the tests: paths, fixture files, running the real CLI."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"
sys.path.insert(0, str(REPO))


def fixture_output(path: Path) -> str:
    """A fixture file's verbatim tool output: what follows the first '# ---' line."""
    text = path.read_text()
    _, sep, body = text.partition("# ---\n")
    assert sep, f"{path} has no '# ---' separator"
    return body


def run_ib40d(*args, netns: str | None = None, env: dict | None = None, check_rc=None):
    """Run the real entry point (`python3 -m ib40d`) as a user would."""
    cmd = [sys.executable, "-m", "ib40d", *args]
    if netns:
        cmd = ["ip", "netns", "exec", netns, *cmd]
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=full_env, cwd=REPO, timeout=120)
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc
