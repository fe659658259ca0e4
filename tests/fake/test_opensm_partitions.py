# SPDX-License-Identifier: GPL-2.0-or-later
"""The gate writes the partitions file ib40-opensm@.service starts opensm
with (--Pconfig), and says when a running opensm has an older one."""

import configparser

from helpers import REPO
from ib40d.commands import opensm
from ib40d.core.config import parse_text
from ib40d.system.sysroot import SysRoot

from test_opensm import INIT_GUID, FakeUnits, cx3_mixed_mode

CONF = "[ipoib ib0]\nmode = datagram\nmtu = 4092\n[partition storage]\npkey = 0x0001\nmtu = 4096\n"


def test_gate_writes_the_partitions_file_and_the_unit_reads_it(tmp_path):
    cx3_mixed_mode(tmp_path)
    units = FakeUnits()
    opensm.gate(parse_text(CONF), SysRoot(tmp_path), units)
    text = (tmp_path / opensm.PARTITIONS_FILE.lstrip("/")).read_text()
    assert "Default=0x7fff, ipoib, mtu=5 : ALL=full ;" in text and "storage=0x0001, ipoib, mtu=5 : ALL=full ;" in text
    unit = configparser.RawConfigParser(strict=False)
    unit.read(REPO / "units" / "ib40-opensm@.service")
    assert f"--Pconfig {opensm.PARTITIONS_FILE}" in unit["Service"]["ExecStart"]

    # a new partition while ours runs: written, and the restart it needs is said
    _, messages = opensm.gate(parse_text(CONF + "[partition backup]\npkey = 0x0002\n"), SysRoot(tmp_path), units)
    assert messages == [f"{opensm.PARTITIONS_FILE} changed: opensm reads it at start; restart "
                        f"ib40-opensm@{INIT_GUID}.service to apply it"]
    assert "backup=0x0002, ipoib : ALL=full ;" in (tmp_path / opensm.PARTITIONS_FILE.lstrip("/")).read_text()
