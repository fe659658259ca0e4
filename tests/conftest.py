# SPDX-License-Identifier: GPL-2.0-or-later
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

# The shared helpers live in tests/helpers.py, not here: a second conftest.py
# (tests/lab/) would shadow this one for `from conftest import ...`. The
# layer folders are on the path too: a kernel test imports the fake-system
# test module whose fixtures and constants it extends.
TESTS = Path(__file__).resolve().parent
for _folder in ("package", "kernel", "fake", "unit", "."):
    sys.path.insert(0, str(TESTS / _folder))


HOST_RUN_IB40 = Path("/run/ib40")


def _host_run_ib40() -> list[str] | None:
    try:
        return sorted(os.listdir(HOST_RUN_IB40))
    except FileNotFoundError:
        return None


@pytest.fixture(autouse=True)
def host_run_ib40_untouched():
    """No test writes to the host's /run/ib40: commands that write there run
    under helpers.private_run (a tmpfs over /run) or with their own --root."""
    before = _host_run_ib40()
    yield
    after = _host_run_ib40()
    assert after == before, f"this test changed the host's {HOST_RUN_IB40}: {before} -> {after}"


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
