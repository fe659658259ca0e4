# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d bundle` of a fake ConnectX-3 tree read back, and bundles made to
hurt: members with absolute paths, `..`, symlinks leaving the tree, device
files. (The round trip on real links is tests/kernel/test_bundle_netns.py.)"""

import io
import json
import tarfile

import pytest
from fake_ib import cx3_eth_mode, cx3_ib_mode
from helpers import REPO, run_ib40d

from ib40d.core.model import AddrObs, BondObs, LinkObs
from ib40d.system import bundle, sysfs
from ib40d.system.sysroot import SysRoot

# The shipped examples: IPoIB on both IB ports, and the HOWTO's bond.
IB_CONF = (REPO / "examples/ipoib.conf").read_text()
ETH_CONF = (REPO / "examples/bond.conf").read_text()


def _views(root: str) -> dict:
    out = {}
    for command in ("status", "doctor"):
        for fmt in ((), ("--json",)):
            proc = run_ib40d(command, "--root", root, *fmt)
            out[(command, *fmt)] = (proc.returncode, proc.stdout.replace(root, "ROOT"), proc.stderr)
    return out


@pytest.mark.parametrize("make,conf", [(cx3_ib_mode, IB_CONF), (cx3_eth_mode, ETH_CONF)], ids=["ib", "eth"])
def test_a_bundle_of_a_card_tree_reads_as_the_tree(tmp_path, make, conf):
    """The card's PCI files, its RDMA ports and netdevs go into the bundle
    with their symlinks, so status and doctor find the same card, ports and
    PCIe link in it."""
    fake = tmp_path / "fake"
    make(fake)
    (fake / "etc").mkdir()
    (fake / "etc/ib40.conf").write_text(conf)
    out = tmp_path / "b.tar.gz"
    run_ib40d("bundle", "--root", str(fake), "-o", str(out), check_rc=0)
    tree = tmp_path / "tree"
    with tarfile.open(out) as tar:
        names = set(tar.getnames())
        tar.extractall(tree)
    assert "ib40-bundle/sys/bus/pci/devices/0000:05:00.0" in names
    assert "ib40-bundle/sys/devices/pci0000:00/0000:00:01.0/0000:05:00.0/current_link_width" in names
    views = _views(str(tree / "ib40-bundle"))
    assert views == _views(str(fake))
    for root in (SysRoot(fake), SysRoot(tree / "ib40-bundle")):  # RDMA device -> its PCI function
        assert sysfs.device_pci(root, "mlx4_0") == "0000:05:00.0"
    doctor = json.loads(views[("doctor", "--json")][1])
    assert [c["pci"] for c in doctor["cards"]] == ["0000:05:00.0"]  # the card was found, not nothing twice


def test_recorded_links_read_back_as_they_were_dumped(tmp_path):
    """What plan reads from a bundle is the LinkObs netlink gave, field for field."""
    links = [LinkObs("bond0", 7, kind="bond", arptype=1, mac="00:02:c9:3e:ca:b1", mtu=9000, admin_up=True,
                     addresses=[AddrObs("10.30.0.2/16", "10.30.255.255"), AddrObs("fe80::1/64", None, False)],
                     bond=BondObs(mode="balance-rr", miimon=100, arp_ip_target=("10.30.0.1",))),
             LinkObs("eth40a", 3, master="bond0", carrier=False)]
    (tmp_path / "bundle").mkdir()
    (tmp_path / "bundle/links.json").write_text(json.dumps([bundle._link_json(l) for l in links]))
    recorded = bundle.link_source(SysRoot(tmp_path))
    assert recorded.dump_links() == links
    assert recorded.link_name(3) == "eth40a" and recorded.link_name(99) is None


def _tarball(path, members) -> str:
    """A .tar.gz of (TarInfo fields, data) pairs."""
    with tarfile.open(path, "w:gz") as tar:
        for fields, data in members:
            info = tarfile.TarInfo(fields.pop("name"))
            for key, value in fields.items():
                setattr(info, key, value)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if data else None)
    return str(path)


def _file(name, data=b"x\n"):
    return ({"name": name}, data)


def _symlink(name, target):
    return ({"name": name, "type": tarfile.SYMTYPE, "linkname": target}, b"")


# The test extracts under TMP/tmp (TMPDIR): what escapes lands in TMP.
HOSTILE = {
    "absolute path": [_file("TMP/ib40-evil")],
    "dot-dot": [_file("ib40-bundle/../../ib40-evil")],
    "absolute symlink": [_symlink("ib40-bundle/etc", "/etc")],
    "symlink climbing out": [_symlink("ib40-bundle/sys", "../../..")],
    "file through a symlink": [_symlink("ib40-bundle/s", "."), _file("ib40-bundle/s/x")],
    "symlink chain out": [_symlink("ib40-bundle/t", "."), _symlink("ib40-bundle/a", "t/../..")],
    "device file": [({"name": "ib40-bundle/null", "type": tarfile.CHRTYPE, "devmajor": 1, "devminor": 3}, b"")],
    "hard link": [_file("ib40-bundle/a"), ({"name": "ib40-bundle/b", "type": tarfile.LNKTYPE,
                                            "linkname": "ib40-bundle/a"}, b"")],
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_a_hostile_bundle_is_refused_and_writes_nothing_outside(tmp_path, case):
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "tmp").mkdir()
    members = [({**fields, "name": fields["name"].replace("TMP", str(tmp_path))}, data)
               for fields, data in HOSTILE[case]]
    evil = _tarball(work / "evil.tar.gz", members)
    conf = work / "ib40.conf"
    conf.write_text("[link eth40a]\n")
    before = sorted(p for p in tmp_path.rglob("*"))
    proc = run_ib40d("status", "--root", evil, "-c", str(conf), env={"TMPDIR": str(tmp_path / "tmp")})
    assert proc.returncode != 0 and proc.stdout == ""
    assert proc.stderr.startswith(f"ib40d status: --root {evil}: refused"), proc.stderr
    assert "Traceback" not in proc.stderr
    assert sorted(p for p in tmp_path.rglob("*")) == before  # and the extraction was removed


def test_a_bundle_that_is_not_a_tarball_is_one_line(tmp_path):
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"not a tarball\n")
    proc = run_ib40d("status", "--root", str(junk), check_rc=1)
    assert proc.stderr.startswith(f"ib40d status: --root {junk}: not a bundle"), proc.stderr
    assert len(proc.stderr.splitlines()) == 1


def test_plan_on_a_bundle_uses_the_recorded_mstconfig(tmp_path, monkeypatch):
    """plan on a card's tree asks mstconfig for the next-boot port types; on
    the bundle it reads what mstconfig answered there, with no mstconfig here."""
    from fake_ib import FakeTools

    fake = tmp_path / "fake"
    m = cx3_ib_mode(fake)
    m.write_config("[card]\nport1 = eth\nport2 = eth\n")
    tools = FakeTools(tmp_path, monkeypatch, root=fake)
    tools.add_card(link_types={1: "ib", 2: "ib"})
    env = {"PATH": f"{tools.bin}:/usr/bin:/bin", "IB40_FAKE_MSTCONFIG_STATE": str(tools.state_path)}
    there = run_ib40d("plan", "--root", str(fake), "--json", env=env, check_rc=1)
    assert json.loads(there.stdout)["actions"]
    out = tmp_path / "b.tar.gz"
    run_ib40d("bundle", "--root", str(fake), "-o", str(out), env=env, check_rc=0)
    no_mstconfig = tmp_path / "empty-bin"
    no_mstconfig.mkdir()
    here = run_ib40d("plan", "--root", str(out), "--json", env={"PATH": f"{no_mstconfig}:/usr/bin:/bin"}, check_rc=1)
    assert here.stdout == there.stdout
    calls = len(tools.calls())
    run_ib40d("plan", "--root", str(out), "--json", env=env, check_rc=1)
    assert len(tools.calls()) == calls  # this machine's mstconfig is not asked about the bundle's card


def test_other_managers_files_stay_out_but_their_conflicts_come_along(tmp_path):
    """NetworkManager keyfiles and netplan files can hold Wi-Fi keys: the
    bundle has the lines that name a link (file and line), not the files,
    and check on the bundle warns as check did on the machine."""
    fake = tmp_path / "fake"
    cx3_eth_mode(fake)
    secret = "hunter2-wifi-psk"
    files = {
        "etc/ib40.conf": ETH_CONF,
        "etc/NetworkManager/system-connections/home.nmconnection":
            f"[connection]\nid=home\ninterface-name=eth40b\n[wifi-security]\npsk={secret}\n",
        "etc/netplan/01-wifi.yaml":
            f"network:\n  wifis:\n    wlan0:\n      access-points:\n        home: {{password: {secret}}}\n"
            "  ethernets:\n    eth40a: {dhcp4: true}\n",
    }
    for path, text in files.items():
        (fake / path).parent.mkdir(parents=True, exist_ok=True)
        (fake / path).write_text(text)
    there = run_ib40d("check", "--root", str(fake), check_rc=0)
    assert there.stderr.count("warning:") == 2
    out = tmp_path / "b.tar.gz"
    run_ib40d("bundle", "--root", str(fake), "-o", str(out), check_rc=0)
    with tarfile.open(out) as tar:
        members = [m for m in tar.getmembers() if m.isfile()]
        assert not any("NetworkManager" in m.name or "netplan" in m.name for m in members)
        assert not any(secret.encode() in tar.extractfile(m).read() for m in members)
    here = run_ib40d("check", "--root", str(out), check_rc=0)
    assert here.stderr == there.stderr


def test_a_bundle_that_cannot_be_written_is_one_line(tmp_path):
    fake = tmp_path / "fake"
    cx3_ib_mode(fake)
    out = tmp_path / "no-such-dir" / "b.tar.gz"
    proc = run_ib40d("bundle", "--root", str(fake), "-o", str(out), check_rc=1)
    assert proc.stderr.startswith("ib40d bundle: ") and "No such file or directory; no bundle written" in proc.stderr
    assert len(proc.stderr.splitlines()) == 1, proc.stderr


def test_a_bundle_keeps_the_p_key_children_ib40_made_and_the_vfs_and_names_its_tarball(tmp_path):
    """status on a bundle lists the VFs the bundle recorded with the links,
    and names the tarball, not the temporary tree it is read from; plan on
    it knows which P_Key children ib40 made (only those it removes)."""
    from ib40d.core.model import VfObs

    fake = tmp_path / "fake"
    cx3_ib_mode(fake)
    (fake / "etc").mkdir()
    (fake / "etc/ib40.conf").write_text("[card]\nvfs = 2\n[ipoib ib0]\nmode = datagram\n")
    (fake / "run/ib40").mkdir(parents=True)
    (fake / "run/ib40/ipoib-children").write_text("ib0.8001\n")
    guid = "02:02:c9:80:00:a4:e7:21"
    links = [LinkObs("ib0", 4, kind="ipoib", arptype=32, mtu=2044, admin_up=True,
                     vfs=[VfObs(0, guid, guid), VfObs(1)]),
             LinkObs("ib0.8001", 5, kind="ipoib", arptype=32, mtu=2044, parent="ib0", pkey=0x8001)]
    (fake / "bundle").mkdir()
    (fake / "bundle/links.json").write_text(json.dumps([bundle._link_json(l) for l in links]))
    out = tmp_path / "b.tar.gz"
    run_ib40d("bundle", "--root", str(fake), "-o", str(out), check_rc=0)
    with tarfile.open(out) as tar:
        assert tar.extractfile("ib40-bundle/run/ib40/ipoib-children").read() == b"ib0.8001\n"

    status = run_ib40d("status", "--root", str(out), check_rc=0).stdout
    assert status.splitlines()[0] == f"ib40 status ({out}:/etc/ib40.conf)"
    assert f"VF 0: node {guid} port {guid}" in status and "VF 1: GUIDs not shown by this kernel" in status
    as_json = json.loads(run_ib40d("status", "--root", str(out), "--json", check_rc=0).stdout)
    assert as_json["config"] == [f"{out}:/etc/ib40.conf"]
    assert [v["vf"] for v in as_json["links"][0]["vfs"]] == [0, 1]

    other = tmp_path / "other.conf"
    other.write_text("[ipoib ib0]\nmode = datagram\n")
    plan = json.loads(run_ib40d("plan", "--root", str(out), "-c", str(other), "--json").stdout)
    assert [(a["kind"], a["target"]) for a in plan["actions"]] == [("ipoib.delete", "ib0.8001")]
