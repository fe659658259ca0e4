# SPDX-License-Identifier: GPL-2.0-or-later
"""bench: the pure parts (real iperf3 between namespaces: kernel/test_bench_netns.py)."""

import pytest
from helpers import fixture_output

from ib40d.commands import bench, cli
from ib40d.core import iperf

SERVER, CLIENT = "192.0.2.1", "192.0.2.2"


def fixture(name: str) -> str:
    return fixture_output(f"iperf3/{name}")


# ------------------------------------------------------------------ pure

def test_sweep_streams_then_instances():
    assert bench.sweep((1, 2, 4, 8), (1, 2, 4)) == [
        bench.Setting(1, 1), bench.Setting(1, 2), bench.Setting(1, 4), bench.Setting(1, 8),
        bench.Setting(2, 1), bench.Setting(4, 1)]
    assert bench.sweep((2,), (1, 2)) == [bench.Setting(1, 2), bench.Setting(2, 1)]


def test_parse_counts():
    assert bench.parse_counts("1,2,4,8") == (1, 2, 4, 8)
    for bad in ("", "a,b", "0", "1,200"):
        with pytest.raises(Exception):
            bench.parse_counts(bad)


def test_client_and_server_argv():
    assert bench.client_argv("10.30.0.1", 5202, bench.Setting(1, 4), 15, "10.30.0.2") == [
        "iperf3", "-c", "10.30.0.1", "-p", "5202", "-P", "4", "-t", "15", "-J",
        "--connect-timeout", "3000", "-B", "10.30.0.2"]
    assert bench.server_argv(5201, None) == ["iperf3", "-s", "-p", "5201", "--forceflush"]


def test_report_and_table_from_real_iperf3_json():
    one = iperf.parse_json(fixture("json_client_tcp_1stream_omit3_iperf_3.9.txt"))
    runs = [bench.Run(bench.Setting(1, 1), [one]), bench.Run(bench.Setting(2, 1), [one, one])]
    rep = bench.report("169.45.43.187", 5100, 10, runs, 31.51, "PCIe Gen3 x4")
    assert rep["best"]["instances"] == 2
    assert rep["best"]["received_gbit_s"] == pytest.approx(2 * 0.298447, abs=1e-3)
    assert rep["best_fraction_of_limit"] == pytest.approx(0.597 / 31.51, abs=1e-3)
    table = bench.render_table(rep).splitlines()
    assert table[1].split() == ["1", "1", "0.30", "0.30", "0"]
    assert table[3] == "best: 2 instances x 1 stream: 0.60 Gbit/s received"
    assert table[4].startswith("limit here: 31.5 Gbit/s (PCIe Gen3 x4); best is 2% of it")


def test_explain_error():
    msg = bench.explain_error("unable to connect to server: Connection refused", "10.30.0.1", 5201)
    assert msg.startswith("no iperf3 server answers at 10.30.0.1 port 5201")
    assert "ib40d bench --serve" in msg
    assert bench.explain_error("error - control socket has closed unexpectedly", "h", 1) == \
        "iperf3 to h port 1: error - control socket has closed unexpectedly"


def test_missing_iperf3_is_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert cli.main(["bench", "--peer", SERVER, "--time", "1"]) == 1
    err = capsys.readouterr().err
    assert err == "ib40d bench: iperf3 is not installed (apt install iperf3)\n"


# ------------------------------------------------------------------ real, in namespaces
