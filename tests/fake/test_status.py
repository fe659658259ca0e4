# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d status --root` on a fake tree (a support bundle), end to end."""

import json

from helpers import HOWTO_BOND, fixture_output, run_ib40d

CONF = HOWTO_BOND


def write(root, path, text):
    p = root / path.lstrip("/")
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(text)


def fake_link(root, name, mac, mtu=1500, qlen=1000, up=True, carrier=True, master=None, bond=False):
    base = f"/sys/class/net/{name}"
    for attr, value in (("address", mac), ("mtu", mtu), ("tx_queue_len", qlen), ("type", 1),
                        ("flags", "0x1003" if up else "0x1002"), ("operstate", "up" if up and carrier else "down"),
                        ("carrier", 1 if carrier else 0)):
        write(root, f"{base}/{attr}", f"{value}\n")
    if master:
        (root / base.lstrip("/") / "master").symlink_to(root / f"sys/class/net/{master}")
    if bond:
        write(root, f"{base}/bonding/mode", "balance-rr 0\n")


def test_status_on_a_bundle_shows_bond_slaves_and_mismatch(tmp_path):
    root = tmp_path / "bundle"
    fake_link(root, "bond0", "00:02:c9:3e:ca:b0", bond=True)
    # a balance-rr slave wears the bond's MAC; its own is in /proc/net/bonding
    fake_link(root, "eth40a", "00:02:c9:3e:ca:b0", qlen=10000, master="bond0")
    fake_link(root, "eth40b", "00:02:c9:3e:ca:b0", qlen=1000, carrier=False)  # not enslaved, wrong qlen
    write(root, "/proc/net/bonding/bond0",
          fixture_output("bonding/balance_rr_single_slave_40g_eth.txt")
          .replace("eth40b", "eth40a").replace("00:02:c9:3e:ca:b0", "00:02:c9:3e:ca:b1"))
    write(root, "/run/ib40/ip-address.json", json.dumps([
        {"ifname": "bond0", "addr_info": [{"local": "10.30.0.2", "prefixlen": 16, "broadcast": "10.30.255.255"}]}]))
    write(root, "/etc/ib40.conf", CONF)
    proc = run_ib40d("status", "--root", str(root), "--json", check_rc=0)
    status = json.loads(proc.stdout)
    links = {l["name"]: l for l in status["links"]}
    assert links["bond0"]["addresses"] == [{"cidr": "10.30.0.2/16", "broadcast": "10.30.255.255"}]
    assert links["bond0"]["mismatches"] == []
    assert links["eth40a"]["master"] == "bond0" and links["eth40a"]["mismatches"] == []
    assert "not enslaved to bond0" in links["eth40b"]["mismatches"]
    assert "txqueuelen 1000 (config 10000)" in links["eth40b"]["mismatches"]
    assert links["eth40b"]["carrier"] is False
    bond = status["bonds"][0]
    assert (bond["mode"], bond["miimon"], bond["updelay"]) == ("balance-rr", 100, 200)
    assert bond["slaves"][0]["name"] == "eth40a" and bond["slaves"][0]["link_failure_count"] == 0
    human = run_ib40d("status", "--root", str(root), check_rc=0).stdout
    assert "bond0: balance-rr, MII up, miimon 100 ms, updelay 200 ms, downdelay 200 ms" in human
    assert "! not enslaved to bond0" in human


def test_status_does_not_import_pyroute2(tmp_path):
    root = tmp_path / "r"
    fake_link(root, "eth40a", "00:02:c9:3e:ca:b1")
    write(root, "/etc/ib40.conf", "[link eth40a]\n")
    proc = run_ib40d("status", "--root", str(root), env={"PYTHONVERBOSE": "1"}, check_rc=0)
    assert "pyroute2" not in proc.stderr
    assert "import 'ib40d.commands.status'" in proc.stderr  # the verbose import log is really there


def test_status_absent_link(tmp_path):
    root = tmp_path / "r"
    (root / "sys/class/net").mkdir(parents=True)
    write(root, "/etc/ib40.conf", "[link eth40a]\n")
    out = run_ib40d("status", "--root", str(root), check_rc=0).stdout
    assert "eth40a     link            absent" in out


def test_status_reads_the_state_file_porttype_writes():
    from ib40d.core import porttype_plan
    from ib40d.commands import status

    assert status.PORTTYPE_STATE == porttype_plan.STATE_FILE


def test_bond_settings_differences_are_the_plans(tmp_path):
    """status compares a bond's settings as plan does (diff.py), from the
    bundle's sysfs files: each a mismatch line in the plan's terms."""
    root = tmp_path / "bundle"
    fake_link(root, "bond0", "00:02:c9:3e:ca:b0", bond=True)
    for name, value in (("miimon", "0"), ("arp_interval", "100"), ("arp_ip_target", "10.30.0.9"),
                        ("use_carrier", "1")):
        write(root, f"/sys/class/net/bond0/bonding/{name}", value + "\n")
    write(root, "/etc/ib40.conf", "[link eth40a]\n[bond bond0]\nslaves = eth40a\nmode = active-backup\n"
                                  "arp_interval = 100\narp_ip_target = 10.30.0.1\n")
    status = json.loads(run_ib40d("status", "--root", str(root), "--json", check_rc=0).stdout)
    bond0 = next(l for l in status["links"] if l["name"] == "bond0")
    assert bond0["mismatches"] == ["mode balance-rr (config active-backup)",
                                   "arp_ip_target 10.30.0.9 (config 10.30.0.1)"]


def test_addresses_differ_as_plan_sees_them_and_dynamic_ones_are_not_ours(tmp_path):
    root = tmp_path / "bundle"
    fake_link(root, "eth40a", "00:02:c9:3e:ca:b1")
    write(root, "/run/ib40/ip-address.json", json.dumps([{"ifname": "eth40a", "addr_info": [
        {"local": "10.9.9.9", "prefixlen": 24, "broadcast": "10.9.9.255"},
        {"local": "10.8.8.8", "prefixlen": 24, "broadcast": "10.8.8.255", "dynamic": True},  # DHCP's
        {"local": "fe80::202:c9ff:fe3e:cab1", "prefixlen": 64}]}]))
    write(root, "/etc/ib40.conf", "[link eth40a]\naddress = 10.30.0.2/16 10.31.0.2/16\n")
    status = json.loads(run_ib40d("status", "--root", str(root), "--json", check_rc=0).stdout)
    assert status["links"][0]["mismatches"] == ["address 10.9.9.9/24 not in the config",
                                                "address 10.30.0.2/16 10.31.0.2/16 missing"]
