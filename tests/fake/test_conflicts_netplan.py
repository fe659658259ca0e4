# SPDX-License-Identifier: GPL-2.0-or-later
"""netplan and cloud-init in the conflicts check: a configured link named
by its name, by `match: macaddress:`, by a glob, or as a member of a bond's
`interfaces:` is warned about with file, line and the fix, through `check`
and `plan --root` on fake /etc trees."""

import pytest
from helpers import run_ib40d

from ib40d.system.conflicts import find_conflicts
from ib40d.system.sysroot import SysRoot

CONF = """\
[link eth40a]
mac = 00:02:c9:3e:ca:b1
[link eth40b]
mac = 00:02:c9:3e:ca:b0
[bond bond0]
slaves = eth40a eth40b
address = 10.30.0.2/16
"""
MACS = {"00:02:c9:3e:ca:b1": "eth40a", "00:02:c9:3e:ca:b0": "eth40b"}
NAMES = ["eth40a", "eth40b", "bond0"]

# eth40a by name; the other port by its MAC (upper case, as `ip link` users
# copy it) under another id; both in the bond's interfaces.
NETPLAN = """\
network:
  version: 2
  renderer: networkd
  ethernets:
    eno1:
      dhcp4: true
    eth40a:
      mtu: 9000
    port2:
      match:
        macaddress: "00:02:C9:3E:CA:B0"
      set-name: eth40b
  bonds:
    bond0:
      interfaces: [eth40a, port2]
      addresses: [10.30.0.2/16]
"""

# What cloud-init writes on Ubuntu, with a block-style list.
CLOUD_NETPLAN = """\
# This file is generated from information provided by the datasource.  Changes
# to it will not persist across an instance reboot.
network:
    ethernets:
        eth40b:
            dhcp4: true
            match:
                name: eth40*
    bonds:
        bond9:
            interfaces:
            - eth40a
    version: 2
"""

CLOUD_CFG_V1 = """\
network:
  version: 1
  config:
    - type: physical
      name: data0
      mac_address: "00:02:c9:3e:ca:b1"
"""


def tree(tmp_path, files: dict) -> SysRoot:
    for path, text in files.items():
        p = tmp_path / path.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return SysRoot(tmp_path)


def test_netplan_by_name_mac_and_bond_interfaces(tmp_path):
    root = tree(tmp_path, {"/etc/netplan/01-ports.yaml": NETPLAN})
    warnings = find_conflicts(root, NAMES, MACS)
    fix_a = "remove the `eth40a:` stanza under `ethernets:` and run `netplan apply`"
    fix_port2 = "remove the `port2:` stanza under `ethernets:` and run `netplan apply`"
    assert warnings == [
        f"/etc/netplan/01-ports.yaml:7: eth40a is also configured for netplan; two managers will fight over it: {fix_a}",
        "/etc/netplan/01-ports.yaml:11: eth40b is also configured for netplan (by its MAC 00:02:c9:3e:ca:b0); "
        f"two managers will fight over it: {fix_port2}",  # (its set-name, line 12: the same fix, said once)
        "/etc/netplan/01-ports.yaml:14: bond0 is also configured for netplan; two managers will fight over it: "
        "remove the `bond0:` stanza under `bonds:` and run `netplan apply`",
        "/etc/netplan/01-ports.yaml:15: eth40a is also configured for netplan; two managers will fight over it: "
        "remove eth40a from bonds bond0's interfaces and run `netplan apply`",
    ]


def test_netplan_without_the_mac_given_misses_only_the_mac_match(tmp_path):
    root = tree(tmp_path, {"/etc/netplan/01-ports.yaml": NETPLAN})
    assert not any("by its MAC" in w for w in find_conflicts(root, NAMES))


def test_cloud_init_netplan_file_says_to_turn_cloud_init_off_first(tmp_path):
    root = tree(tmp_path, {"/etc/netplan/50-cloud-init.yaml": CLOUD_NETPLAN})
    warnings = find_conflicts(root, NAMES, MACS)
    # eth40b: the id of a stanza with `match:` names no link; its pattern names both
    assert [w.split(": ")[0] for w in warnings] == ["/etc/netplan/50-cloud-init.yaml:8"] * 2 + \
        ["/etc/netplan/50-cloud-init.yaml:12"]
    assert "eth40a is also configured for netplan (by the pattern eth40*)" in warnings[0]
    assert "eth40b is also configured for netplan (by the pattern eth40*)" in warnings[1]
    assert "remove eth40a from bonds bond9's interfaces" in warnings[2]
    assert all("put `network: {config: disabled}` in /etc/cloud/cloud.cfg.d/99-disable-network-config.cfg" in w
               for w in warnings)


def test_cloud_init_config_by_mac_and_its_fix_silences_it(tmp_path):
    files = {"/etc/cloud/cloud.cfg.d/90-net.cfg": CLOUD_CFG_V1}
    warnings = find_conflicts(tree(tmp_path, files), NAMES, MACS)
    assert warnings == [
        "/etc/cloud/cloud.cfg.d/90-net.cfg:6: eth40a is also configured for cloud-init (by its MAC 00:02:c9:3e:ca:b1); "
        "two managers will fight over it: put `network: {config: disabled}` in "
        "/etc/cloud/cloud.cfg.d/99-disable-network-config.cfg (or remove it here)"]
    # The fix it gives, applied: cloud-init's network config is off.
    files["/etc/cloud/cloud.cfg.d/99-disable-network-config.cfg"] = "network: {config: disabled}\n"
    files["/etc/netplan/50-cloud-init.yaml"] = CLOUD_NETPLAN
    warnings = find_conflicts(tree(tmp_path, files), NAMES, MACS)
    assert warnings and all(w.startswith("/etc/netplan/50-cloud-init.yaml") for w in warnings)
    assert not any("cloud-init wrote this file" in w for w in warnings)  # only the stanza is left to remove


def test_what_netplan_rendered_into_run(tmp_path):
    root = tree(tmp_path, {
        "/run/systemd/network/10-netplan-eth40a.network": "[Match]\nName=eth40a\n\n[Network]\nBond=bond0\n",
        "/run/systemd/network/10-netplan-port2.network": "[Match]\nMACAddress=00:02:c9:3e:ca:b0\n",
        "/run/systemd/network/50-other.network": "[Match]\nName=eth40a\n",  # not netplan's
    })
    warnings = find_conflicts(root, NAMES, MACS)
    assert [w.split(": ")[0] for w in warnings] == [
        "/run/systemd/network/10-netplan-eth40a.network:2", "/run/systemd/network/10-netplan-port2.network:2"]
    assert all("netplan generated this file from /etc/netplan: remove the stanza there" in w for w in warnings)


@pytest.mark.parametrize("broken", ["network:\n  ethernets: [\n", "network:\n\tethernets: {}\n"])
def test_yaml_that_does_not_parse_is_said_not_skipped(tmp_path, broken):
    root = tree(tmp_path, {"/etc/netplan/01-broken.yaml": broken})
    [warning] = find_conflicts(root, NAMES, MACS)
    assert warning.startswith("/etc/netplan/01-broken.yaml: netplan: not valid YAML (line ")
    assert warning.endswith("): not checked")


def test_check_and_plan_warn_through_the_cli(tmp_path):
    tree(tmp_path, {"/etc/netplan/01-ports.yaml": NETPLAN, "/etc/ib40.conf": CONF})
    check = run_ib40d("check", "--root", str(tmp_path), check_rc=0)
    assert "warning: /etc/netplan/01-ports.yaml:11: eth40b is also configured for netplan (by its MAC" in check.stderr
    plan = run_ib40d("plan", "--root", str(tmp_path))
    assert "note: /etc/netplan/01-ports.yaml:7: eth40a is also configured for netplan" in plan.stdout
