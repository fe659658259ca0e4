# SPDX-License-Identifier: GPL-2.0-or-later
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FIXTURES = REPO.parent / "shared" / "fixtures"
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))


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


def _can_netns() -> bool:
    return os.geteuid() == 0 and shutil.which("ip") is not None


@pytest.fixture
def netns():
    """A fresh network namespace, deleted afterwards. Yields a runner of
    `ip -n NS ...` commands and the name."""
    if not _can_netns():
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with iproute2: real-kernel tests must run there, not skip")
        pytest.skip("needs root and iproute2 to create a network namespace")
    name = f"ib40t-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)

    class NS:
        def __init__(self, name):
            self.name = name

        def ip(self, *args) -> str:
            return subprocess.run(["ip", "-n", name, *args], check=True, capture_output=True, text=True).stdout

        def exec(self, *args, **kw):
            return subprocess.run(["ip", "netns", "exec", name, *args], capture_output=True, text=True, **kw)

    try:
        yield NS(name)
    finally:
        subprocess.run(["ip", "netns", "del", name], check=False)
