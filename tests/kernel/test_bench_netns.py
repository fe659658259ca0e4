# SPDX-License-Identifier: GPL-2.0-or-later
"""bench: real iperf3 between two network namespaces.

The namespaces are joined by a veth pair; 192.0.2.1/24 and 192.0.2.2/24
(TEST-NET-1) exist only inside them, so no traffic leaves this machine.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid

import pytest
from fake_pci import downgraded_gen3_x4
from helpers import REPO
from test_bench import CLIENT, SERVER


needs_netns = pytest.mark.netns


def ip(*args):
    subprocess.run(["ip", *args], check=True, capture_output=True, timeout=10)


def ns_pids(ns: str) -> list[str]:
    out = subprocess.run(["ip", "netns", "pids", ns], capture_output=True, text=True, timeout=10).stdout
    return out.split()


@pytest.fixture
def netns_pair():
    if os.geteuid() != 0 or not shutil.which("ip") or not shutil.which("iperf3"):
        if os.environ.get("CI"):
            pytest.fail("CI runs as root with iproute2 and iperf3: the bench tests must run there, not skip")
        pytest.skip("needs root, ip(8) and iperf3")
    tag = uuid.uuid4().hex[:8]
    a, b = f"ib40t-{tag}a", f"ib40t-{tag}b"
    ip("netns", "add", a)
    ip("netns", "add", b)
    try:
        ip("link", "add", "veth-a", "netns", a, "type", "veth", "peer", "name", "veth-b", "netns", b)
        ip("-n", a, "addr", "add", f"{SERVER}/24", "dev", "veth-a")
        ip("-n", b, "addr", "add", f"{CLIENT}/24", "dev", "veth-b")
        for ns, dev in ((a, "veth-a"), (b, "veth-b")):
            ip("-n", ns, "link", "set", dev, "up")
            ip("-n", ns, "link", "set", "lo", "up")
        yield a, b
    finally:
        for ns in (a, b):
            for pid in ns_pids(ns):  # only if a test failed half-way
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass
            subprocess.run(["ip", "netns", "del", ns], capture_output=True, timeout=10)


def ib40d(ns: str, *args: str, **kw) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen(["ip", "netns", "exec", ns, sys.executable, "-m", "ib40d", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kw)


def start_server(ns: str, *args: str) -> subprocess.Popen:
    server = ib40d(ns, "bench", "--serve", "--bind", SERVER, *args)
    line = server.stderr.readline()  # the first line says it is serving (or why not)
    assert line.startswith("bench: serving iperf3 on 192.0.2.1"), line + server.stderr.read()
    return server


def stop_server(server: subprocess.Popen, ns: str) -> None:
    server.send_signal(signal.SIGTERM)
    assert server.wait(timeout=10) == 0
    assert ns_pids(ns) == []  # every iperf3 server went with it


@needs_netns
def test_sweep_between_namespaces(netns_pair, tmp_path):
    a, b = netns_pair
    downgraded_gen3_x4(tmp_path / "machine")  # doctor's limit for the client side
    server = start_server(a, "--port", "5301", "--instances", "1,2")
    try:
        t0 = time.monotonic()
        client = ib40d(b, "bench", "--peer", SERVER, "--bind", CLIENT, "--port", "5301", "--time", "1",
                       "--instances", "1,2", "--json", "--root", str(tmp_path / "machine"))
        out, err = client.communicate(timeout=60)
        assert client.returncode == 0, err
        elapsed = time.monotonic() - t0
        rep = json.loads(out)
        assert [(r["instances"], r["streams"]) for r in rep["runs"]] == [(1, 1), (1, 2), (1, 4), (1, 8), (2, 1)]
        for r in rep["runs"]:
            assert r["received_gbit_s"] > 0 and r["sent_gbit_s"] > 0
            assert len(r["per_instance"]) == r["instances"]
        assert {p["remote"] for p in rep["runs"][-1]["per_instance"]} == {f"{SERVER}:5301", f"{SERVER}:5302"}
        assert rep["best"]["received_gbit_s"] == max(r["received_gbit_s"] for r in rep["runs"])
        assert rep["limit_gbit_s"] == pytest.approx(31.51, abs=0.01)
        assert "PCIe Gen3 x4" in rep["limit_reason"]
        # progress on stderr: one line per run started and finished
        assert err.count("bench: [") == 10 and "bench: [5/5] 2 instances x 1 stream: " in err
        assert elapsed < 40
        assert ns_pids(b) == []

        # The text table, with a shorter sweep.
        client = ib40d(b, "bench", "--peer", SERVER, "--port", "5301", "--time", "1", "--streams", "2",
                       "--instances", "1", "--root", str(tmp_path / "empty"))
        out, err = client.communicate(timeout=30)
        assert client.returncode == 0, err
        lines = out.splitlines()
        assert lines[0].split() == ["instances", "streams", "sent", "Gbit/s", "received", "Gbit/s", "retransmits"]
        assert lines[1].split()[:2] == ["1", "2"] and float(lines[1].split()[3]) > 0
        assert lines[2].startswith("best: 1 instance x 2 streams: ")
        assert lines[3] == "limit here: unknown (no Mellanox card found here)"
    finally:
        stop_server(server, a)


@needs_netns
def test_unreachable_peer_is_one_clear_line(netns_pair):
    a, b = netns_pair
    client = ib40d(b, "bench", "--peer", SERVER, "--port", "5401", "--time", "1")
    out, err = client.communicate(timeout=30)
    assert client.returncode == 1 and out == ""
    assert err.splitlines()[-1] == (
        "ib40d bench: no iperf3 server answers at 192.0.2.1 port 5401 (unable to connect to server: "
        "Connection refused); run `ib40d bench --serve` on the peer (with as many --instances as here)")
    assert ns_pids(b) == []


@needs_netns
def test_fewer_servers_than_instances(netns_pair):
    a, b = netns_pair
    server = start_server(a, "--port", "5501", "--instances", "1")
    try:
        client = ib40d(b, "bench", "--peer", SERVER, "--port", "5501", "--time", "1", "--streams", "1",
                       "--instances", "2")
        out, err = client.communicate(timeout=30)
        assert client.returncode == 1
        assert "no iperf3 server answers at 192.0.2.1 port 5502" in err.splitlines()[-1]
        assert ns_pids(b) == []
    finally:
        stop_server(server, a)


@needs_netns
def test_port_in_use_server_says_why(netns_pair):
    a, _ = netns_pair
    first = start_server(a, "--port", "5601", "--instances", "1")
    try:
        second = ib40d(a, "bench", "--serve", "--bind", SERVER, "--port", "5601", "--instances", "1")
        _, err = second.communicate(timeout=20)
        assert second.returncode == 1
        assert err.splitlines()[-1].startswith("ib40d bench: iperf3 server on port 5601 did not start: iperf3: error - unable to start listener for connections: Address already in use")
    finally:
        stop_server(first, a)


@needs_netns
def test_killed_client_leaves_no_iperf3(netns_pair):
    # SIGKILL gives bench no chance to clean up: PR_SET_PDEATHSIG must.
    a, b = netns_pair
    server = start_server(a, "--port", "5701", "--instances", "1")
    try:
        client = ib40d(b, "bench", "--peer", SERVER, "--port", "5701", "--time", "30", "--streams", "1",
                       "--instances", "1")
        deadline = time.monotonic() + 10
        while len(ns_pids(b)) < 2 and time.monotonic() < deadline:  # bench + its iperf3
            time.sleep(0.1)
        assert len(ns_pids(b)) == 2
        client.kill()
        client.wait(timeout=5)
        deadline = time.monotonic() + 5
        while ns_pids(b) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert ns_pids(b) == []
    finally:
        stop_server(server, a)


@needs_netns
def test_bind_to_an_address_the_machine_lacks(netns_pair):
    a, _ = netns_pair
    server = ib40d(a, "bench", "--serve", "--bind", CLIENT)  # CLIENT's address is in the other namespace
    _, err = server.communicate(timeout=20)
    assert server.returncode == 1
    assert err == ("ib40d bench: --bind 192.0.2.2: not an address of this machine "
                   "(see `ip -br address`)\n")
    assert ns_pids(a) == []
