# SPDX-License-Identifier: GPL-2.0-or-later
"""Helpers shared by the tests: paths, fixture files, running the real CLI."""

import os
import subprocess
import sys
from pathlib import Path

# The HOWTO's dual-port bond (MachineB), as most tests configure it.
HOWTO_BOND = """\
[link eth40a]
mac = 00:02:c9:3e:ca:b1
txqueuelen = 10000
[link eth40b]
mac = 00:02:c9:3e:ca:b0
txqueuelen = 10000
[bond bond0]
slaves = eth40a eth40b
mode = balance-rr
miimon = 100
updelay = 200
downdelay = 200
address = 10.30.0.2/16
"""

REPO = Path(__file__).resolve().parent.parent
# Real outputs of the tools ib40 reads, each with its source (fixtures/INDEX.md).
FIXTURES = REPO / "tests" / "fixtures"
sys.path.insert(0, str(REPO))


def fixture_output(path: Path | str) -> str:
    """A fixture file's verbatim tool output: what follows the first '# ---' line.
    PATH is a Path, or a string relative to tests/fixtures ("ibstat/x.txt")."""
    path = FIXTURES / path
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


def private_run(cmd: list[str], netns: str | None = None, mount: str = "mount -t tmpfs tmpfs /run") -> list[str]:
    """CMD in its own mount namespace with a fresh tmpfs over /run (MOUNT), so
    that what it writes there (apply's lock) never reaches the host's /run.
    `ip netns exec` comes first: it needs the host's /run/netns."""
    inner = ["unshare", "--mount", "--propagation", "private", "sh", "-c", f'{mount} && exec "$@"', "sh", *cmd]
    return ["ip", "netns", "exec", netns, *inner] if netns else inner


def run_ib40d_private_run(*args, netns: str | None = None, mount: str = "mount -t tmpfs tmpfs /run",
                          check_rc=None):
    """run_ib40d for commands that write to /run (apply): under private_run."""
    cmd = private_run([sys.executable, "-m", "ib40d", *args], netns, mount)
    proc = subprocess.run(cmd, capture_output=True, text=True, env=dict(os.environ, PYTHONPATH=str(REPO)),
                          cwd=REPO, timeout=120)
    if check_rc is not None:
        assert proc.returncode == check_rc, (proc.returncode, proc.stdout, proc.stderr)
    return proc


def wait_for(pred, timeout=30.0) -> bool:
    """Poll pred() until it is true or `timeout` seconds have passed."""
    import time

    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.1)
    return False


def start_daemon(netns: str, conf, root, *args, env: dict | None = None, mounts: str = "",
                 python: tuple = ("-m", "ib40d")) -> subprocess.Popen:
    """`ib40d daemon -c CONF --root ROOT ARGS` in network namespace NETNS and
    a private mount namespace with a tmpfs over /run, so that even a live
    root (`--root /`) leaves the host's /run/ib40 and /run/udev alone.
    MOUNTS: shell commands run there first (e.g. more tmpfs); PYTHON: what
    runs instead of `-m ib40d` (a `-c` wrapper calling cli.main). The Popen's
    pid is the daemon's (every step execs); stdout and stderr are merged."""
    mount = " && ".join(["mount -t tmpfs tmpfs /run", *([mounts] if mounts else [])])
    cmd = private_run([sys.executable, *python, "daemon", "-c", str(conf), "--root", str(root), *args],
                      netns, mount)
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                            env=dict(os.environ, PYTHONPATH=str(REPO), **(env or {})), cwd=REPO)


def connect_unix(path: str, timeout: float = 60.0):
    """A blocking client socket connected to the unix socket PATH."""
    import socket

    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.connect(path)
    return s


def only_problem(text: str) -> str:
    """The one problem `check` finds in config TEXT, rendered (FILE:LINE: ...)."""
    from ib40d.core.config import ConfigError, parse_text

    try:
        parse_text(text)
    except ConfigError as e:
        [problem] = [p.render() for p in e.problems]
        return problem
    raise AssertionError(f"no problem found in {text!r}")


def assert_refused_at(text: str, line: int, words) -> None:
    """`check` finds one problem in TEXT, at LINE, saying each of WORDS."""
    problem = only_problem(text)
    assert problem.startswith(f"ib40.conf:{line}: "), problem
    for word in words:
        assert word in problem, problem
