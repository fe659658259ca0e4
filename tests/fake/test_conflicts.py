# SPDX-License-Identifier: GPL-2.0-or-later
from helpers import run_ib40d
from ib40d.system.conflicts import find_conflicts, ifupdown_names, networkd_names
from ib40d.system.sysroot import SysRoot

# The HOWTO's own stanzas for bond0 (ifupdown).
HOWTO_IFUPDOWN = """\
allow-hotplug eth40a
iface eth40a inet manual
    bond-mode active-backup
    bond-master bond0

allow-hotplug bond0
iface bond0 inet static
    bond-slaves eth40a eth40b
auto lo
iface lo inet loopback
"""


def test_ifupdown_names_from_the_howto_stanzas():
    assert ifupdown_names(HOWTO_IFUPDOWN) == {"eth40a": 1, "bond0": 6, "lo": 9}


def test_networkd_match_names():
    assert networkd_names("[Match]\nName=eth40a eth40b\n[Network]\nBond=bond0\n") == {"eth40a": 2, "eth40b": 2}


def test_check_warns_about_other_managers(tmp_path):
    (tmp_path / "etc/network").mkdir(parents=True)
    (tmp_path / "etc/network/interfaces").write_text(HOWTO_IFUPDOWN)
    (tmp_path / "etc/systemd/network").mkdir(parents=True)
    (tmp_path / "etc/systemd/network/10-b.network").write_text("[Match]\nName=eth40b\n")
    (tmp_path / "etc/ib40.conf").write_text("[link eth40a]\n[link eth40b]\n[bond bond0]\nslaves = eth40a eth40b\n")
    warnings = find_conflicts(SysRoot(tmp_path), ["eth40a", "eth40b", "bond0"])
    assert warnings[0].startswith("/etc/network/interfaces:1: eth40a is also configured for ifupdown")
    assert any(w.startswith("/etc/systemd/network/10-b.network:2: eth40b") for w in warnings)
    assert not any(" lo " in w for w in warnings)
    proc = run_ib40d("check", "--root", str(tmp_path), check_rc=0)
    assert "warning: /etc/network/interfaces:6: bond0 is also configured for ifupdown" in proc.stderr
