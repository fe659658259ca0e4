# SPDX-License-Identifier: GPL-2.0-or-later
"""Every real output in tests/fixtures is read right or refused out loud.

The walk gives each fixture to the parser of its tool and checks that what
comes back holds at least one figure or says what went wrong (an error the
tool printed); a parser that returned an empty result as if it had read one
fails here. Then the shapes of #12: iperf3 text with only the [SUM] lines,
UDP totals, ibstat with error lines between CAs, redacted fields.
"""

import errno
import os
import re

import pytest
import support_parsers
from fake_ib import parse_ibv_devinfo
from fakenl import pf_from_ip_link
from helpers import FIXTURES, fixture_output
from test_partitions import grammar_problems

from ib40d.core import bonding, ibstat, iperf, linkrate, mstconfig, pcie


def _ibstat(text):
    if re.fullmatch(r"(\s*0x[0-9a-fA-F]+\s*)+", text):  # `ibstat -p`
        return support_parsers.parse_ibstat_guids(text)
    report = ibstat.read_ibstat(text)
    return report.cas + report.errors


def _iperf(text):
    r = iperf.parse_any(text)
    return r if (iperf.has_figures(r) or r.error) else None


def _bonding(text):
    b = bonding.parse_proc_bonding(text)
    return b if b["mode"] and b["slaves"] else None


def _mstconfig(text):
    out = mstconfig.parse(text)
    return out.devices + out.errors


def _opensm(text):
    if "Loaded:" in text:
        return support_parsers.parse_systemctl_status(text)["unit"]
    return support_parsers.parse_opensm_log(text)


def _partitions(text):
    """opensm's partitions file: the definition lines, once the grammar holds."""
    problems = grammar_problems(text)
    if problems:
        raise ValueError(f"{len(problems)} lines outside opensm's grammar, the first: {problems[0]}")
    return [l for l in text.splitlines() if ":" in l and not l.lstrip().startswith("#")]


def _ibv_devinfo(text):
    info = parse_ibv_devinfo(text)
    return info if info.get("fw_ver") and info["ports"] else None


def _kernel_message(text):
    """The errno whose message the tool printed."""
    return [name for name, n in errno.__dict__.items() if name.startswith("E") and isinstance(n, int)
            and os.strerror(n) in text]


READERS = {
    "bonding": _bonding, "ibstat": _ibstat, "ibstatus": lambda t: sum(support_parsers.parse_ibstatus(t), []),
    "iperf3": _iperf, "lspci": pcie.parse_lspci, "mstconfig": _mstconfig, "opensm": _opensm,
    "ipoib_mode": _kernel_message, "ethtool": linkrate.parse_ethtool, "ibv_devinfo": _ibv_devinfo,
    "partitions": _partitions, "ip_link": lambda t: pf_from_ip_link(t).vfs,
}
ALL = sorted(str(p.relative_to(FIXTURES)) for p in FIXTURES.rglob("*") if p.suffix in (".txt", ".conf"))


def test_every_fixture_folder_has_a_reader():
    assert {p.name for p in FIXTURES.iterdir() if p.is_dir()} == set(READERS)


@pytest.mark.parametrize("rel", ALL)
def test_every_fixture_is_read_or_refused_out_loud(rel):
    text = fixture_output(rel)
    try:
        result = READERS[rel.split("/")[0]](text)
    except ValueError as e:
        assert str(e) and "\n" not in str(e)  # refused, in one line that says why
        return
    assert result, f"{rel}: read as nothing, as if it had been read"


def test_every_fixture_is_in_the_index():
    index = (FIXTURES / "INDEX.md").read_text()
    assert [rel for rel in ALL if f"`{rel}`" not in index] == []


# ---------------------------------------------------------------- iperf3


def test_text_with_only_the_sum_lines():
    """What people keep of a -P run: the two [SUM] totals, no header."""
    full = fixture_output("iperf3/plain_client_P3_sum_lines_loopback.txt")
    kept = "\n".join(l for l in full.splitlines() if l.startswith("[SUM]") and l.rstrip().endswith(("sender", "receiver")))
    assert kept.count("\n") == 1
    r = iperf.parse_text(kept)
    assert (r.sent_bps, r.received_bps, r.header) == (iperf.parse_text(full).sent_bps,
                                                     iperf.parse_text(full).received_bps, None)
    assert r.sent_bps and r.received_bps


def test_text_per_stream_totals_without_sum_are_refused():
    full = fixture_output("iperf3/plain_client_P3_sum_lines_loopback.txt")
    no_sum = "\n".join(l for l in full.splitlines() if not l.startswith("[SUM]"))
    with pytest.raises(ValueError, match="without their \\[SUM\\] lines"):
        iperf.parse_text(no_sum)


def test_text_without_totals_is_refused_not_empty():
    full = fixture_output("iperf3/plain_client_ipoib_40g_interval3.txt")
    cut = "\n".join(l for l in full.splitlines() if not l.rstrip().endswith(("sender", "receiver")))
    with pytest.raises(ValueError, match="without its totals"):
        iperf.parse_text(cut)


def test_udp_old_single_total_with_redacted_addresses():
    r = iperf.parse_any(fixture_output("iperf3/plain_client_udp_iperf_3.1.7_redacted_ips.txt"))
    assert r.protocol == "UDP" and r.header == "Bandwidth"
    assert r.sent_bps == pytest.approx(1.16e6)
    assert (r.jitter_ms, r.lost_datagrams, r.total_datagrams) == (pytest.approx(28487.952), 0, 1)
    assert r.remote is None  # "x.x.79.106": unknown, not an address
    assert r.retransmits is None


def test_udp_receiver_with_loss():
    r = iperf.parse_text(fixture_output("iperf3/plain_server_udp_receiver_loss_27pct.txt"))
    assert r.protocol == "UDP"
    assert r.received_bps == pytest.approx(715e3) and r.sent_bps is None
    assert (r.jitter_ms, r.lost_datagrams, r.total_datagrams) == (pytest.approx(0.2), 69, 257)
    assert r.duration_s == pytest.approx(3.05)


def test_json_udp_totals_and_json_without_totals():
    udp = ('{"start": {"test_start": {"protocol": "UDP", "num_streams": 1}}, "end": {"sum": '
           '{"seconds": 10, "bits_per_second": 1048576, "jitter_ms": 0.01, "lost_packets": 3, "packets": 906}}}')
    r = iperf.parse_json(udp)
    assert (r.sent_bps, r.jitter_ms, r.lost_datagrams, r.total_datagrams, r.error) == (1048576, 0.01, 3, 906, None)
    empty = iperf.parse_json('{"start": {"test_start": {"protocol": "TCP"}}, "end": {}}')
    assert empty.error.startswith("iperf3 gave no result") and not empty.ok


# ---------------------------------------------------------------- ibstat


def test_ibstat_error_after_a_ca_keeps_the_ca_and_the_error():
    report = ibstat.read_ibstat(fixture_output("ibstat/ibstat_mlx5_redacted_then_ibpanic_gpud.txt"))
    [ca] = report.cas
    assert report.errors == ["ibpanic: [1323906] main: stat of IB device 'mlx5_8' failed: No such file or directory"]
    assert (ca["ca"], ca["ca_type"], ca["firmware"], ca["node_guid"]) == ("mlx5_7", None, None, None)
    [port] = ca["ports"]
    assert (port.state, port.phys_state, port.rate_gbps, port.sm_lid, port.lid, port.guid) == (
        "ACTIVE", "LinkUp", 200.0, 1, 13305, None)


def test_ibstat_error_between_two_cas():
    """ibstat from rdma-core 54 on warns about a CA it cannot read and goes
    on: the real error line between two real CAs (composed from the samples)."""
    first = fixture_output("ibstat/ibstat_cx3_mt4099_fdr56_both_ports_active.txt")
    error = fixture_output("ibstat/ibstat_ibpanic_only_azure_an0.txt")
    second = fixture_output("ibstat/ibstat_mlx5_ib0_unindented_initializing_azure.txt")
    report = ibstat.read_ibstat(first + error + second)
    assert [ca["ca"] for ca in report.cas] == ["mlx4_0", "mlx5_ib0"]
    assert [len(ca["ports"]) for ca in report.cas] == [2, 1]
    assert report.errors == [error.strip()]
    assert report.cas[1]["ports"][0].state == "INIT" and report.cas[1]["ports"][0].rate_gbps == 200.0


def test_ibstat_only_an_error_is_an_error_not_no_ports():
    report = ibstat.read_ibstat(fixture_output("ibstat/ibstat_ibpanic_only_azure_an0.txt"))
    assert report.cas == [] and len(report.errors) == 1


def test_ibstat_unindented_ports_are_told_from_the_ca_by_their_keys():
    [ca] = ibstat.read_ibstat(fixture_output("ibstat/ibstat_mlx5_ib0_unindented_initializing_azure.txt")).cas
    assert (ca["ca_type"], ca["num_ports"], ca["firmware"]) == ("MT4124", 1, "20.28.4000")
    [p] = ca["ports"]
    assert (p.guid, p.sm_lid, p.link_layer) == ("0x00155dfffd34072b", 361, "InfiniBand")


@pytest.mark.parametrize("hidden", ["xx:xx", "<redacted>", "***", "0x0002c903xxxxxxxx", "..."])
def test_ibstat_redacted_guid_reads_as_unknown(hidden):
    text = fixture_output("ibstat/ibstat_cx3_mt4099_fdr56_both_ports_active.txt")
    text = re.sub(r"(Port GUID:\s*)0x[0-9a-f]+", lambda m: m.group(1) + hidden, text)
    ports = [p for ca in ibstat.read_ibstat(text).cas for p in ca["ports"]]
    assert [p.guid for p in ports] == [None, None]
    assert [p.rate_gbps for p in ports] == [56.0, 56.0]  # the rest is still read


def test_text_that_is_not_ibstat_is_refused():
    with pytest.raises(ValueError, match="not ibstat output"):
        ibstat.read_ibstat("Infiniband device 'mlx4_0' port 1 status:\n")
