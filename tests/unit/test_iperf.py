# SPDX-License-Identifier: GPL-2.0-or-later
import pytest
import support_parsers
from helpers import fixture_output

from ib40d.core import iperf


def fixture(name: str) -> str:
    return fixture_output(f"iperf3/{name}")


def test_json_one_stream_with_omitted_intervals():
    r = iperf.parse_json(fixture("json_client_tcp_1stream_omit3_iperf_3.9.txt"))
    assert r.ok and r.error is None
    assert r.sent_bps == pytest.approx(298956448.04188448)
    assert r.received_bps == pytest.approx(298447444.43601471)
    assert r.received_gbit_s == pytest.approx(0.2984, abs=1e-4)
    # The 1049 retransmits happened in an omitted (-O 3) interval: iperf3
    # leaves them out of sum_sent, and so do we.
    assert r.retransmits == 0
    assert r.num_streams == 1
    assert r.duration_s == pytest.approx(9.996244)
    assert r.version == "iperf 3.9"
    assert r.remote == "169.45.43.187:5100"
    assert support_parsers.iperf_looks_like(fixture("json_client_tcp_1stream_omit3_iperf_3.9.txt")) == "json"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])  # the original file had CRLF
def test_json_error_document(newline):
    text = fixture("json_client_error_control_socket_closed_iperf_3.6.txt").replace("\n", newline)
    r = iperf.parse_json(text)
    assert not r.ok
    assert r.error == "error - control socket has closed unexpectedly"
    assert r.sent_bps is None and r.received_bps is None and r.retransmits is None
    assert r.remote == "34.134.37.72:5200"
    assert support_parsers.parse_iperf_any(text).error == r.error


def test_json_rejects_other_documents():
    with pytest.raises(ValueError):
        iperf.parse_json("iperf3: error - unable to connect to server: Connection refused\n")
    with pytest.raises(ValueError):
        iperf.parse_json('{"foo": 1}')


def test_text_old_bandwidth_header_ipoib_40g():
    text = fixture("plain_client_ipoib_40g_interval3.txt")
    assert support_parsers.iperf_looks_like(text) == "text"
    r = support_parsers.parse_iperf_text(text)
    assert r.header == "Bandwidth"
    assert r.sent_gbit_s == pytest.approx(24.5) and r.received_gbit_s == pytest.approx(24.5)
    assert r.retransmits == 0
    assert r.num_streams == 1
    assert r.duration_s == pytest.approx(15.0)
    assert r.remote == "10.30.0.1:5201"
    assert r.source == "text"


def test_text_new_bitrate_header_cx3_eth_no_iperf_done():
    r = support_parsers.parse_iperf_any(fixture("plain_client_cx3_eth_10g_bitrate_header.txt"))
    assert r.header == "Bitrate"
    assert r.sent_gbit_s == pytest.approx(9.40) and r.received_gbit_s == pytest.approx(9.39)
    assert r.retransmits == 0 and r.num_streams == 1
    assert r.remote == "192.168.2.1:5201"


def test_text_sum_lines_three_streams():
    r = support_parsers.parse_iperf_text(fixture("plain_client_P3_sum_lines_loopback.txt"))
    # The totals come from the [SUM] sender/receiver pair, not a stream's 7.43.
    assert r.sent_gbit_s == pytest.approx(22.3) and r.received_gbit_s == pytest.approx(22.2)
    assert r.num_streams == 3
    assert r.retransmits == 0
    assert r.duration_s == pytest.approx(10.0)


def test_text_error_line():
    r = support_parsers.parse_iperf_any("iperf3: error - unable to connect to server: Connection refused\n")
    assert r.error == "unable to connect to server: Connection refused"
    assert not r.ok


def test_text_units_scale():
    text = ("[ ID] Interval           Transfer     Bitrate         Retr\n"
            "[  5]   0.00-10.00  sec   112 MBytes  94.1 Mbits/sec   12             sender\n"
            "[  5]   0.00-10.00  sec   111 MBytes  93.5 Mbits/sec                  receiver\n")
    r = support_parsers.parse_iperf_text(text)
    assert r.sent_bps == pytest.approx(94.1e6) and r.received_bps == pytest.approx(93.5e6)
    assert r.retransmits == 12


def test_not_iperf_output():
    assert support_parsers.iperf_looks_like("hello\nworld\n") is None
    with pytest.raises(ValueError):
        support_parsers.parse_iperf_text("PING 10.30.0.1 (10.30.0.1) 56(84) bytes of data.\n")
