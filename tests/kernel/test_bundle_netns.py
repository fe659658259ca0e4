# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d bundle` taken in a network namespace (real veths, real
addresses) and read back with --root: status, plan and doctor on the bundle
are what they are live, from the tarball and from its extracted tree alike."""

import json
import subprocess
import tarfile

import pytest
from helpers import run_ib40d, run_ib40d_private_run

# (this kernel has no bonding module: the bond's files are in tests/fake)
CONF = """\
[link v1]
mtu = 9000
txqueuelen = 10000
address = 10.97.0.1/24 fd00:97::1/64
[link v2]
txqueuelen = 10000
[link w1]
address = 10.97.5.1/24
routes = 10.98.0.0/24 via 10.97.5.2, 10.99.0.0/24 via 10.97.5.2 metric 7
[link absent0]
"""


def _outputs(args: tuple, netns: str, conf: str) -> dict:
    """status, plan and doctor, text and --json, and their exit statuses,
    with the config's path (which differs between a bundle and the
    machine) put as CONF."""
    out = {}
    for command, rc in (("status", 0), ("plan", 1), ("doctor", None)):
        for fmt in ((), ("--json",)):
            proc = run_ib40d(command, *args, *fmt, netns=netns, check_rc=rc)
            out[(command, *fmt)] = (proc.returncode, proc.stdout.replace(conf, "CONF") if conf else proc.stdout)
    proc = run_ib40d("check", *args, netns=netns, check_rc=0)
    out[("check",)] = (proc.returncode, proc.stdout.replace(conf, "CONF"))
    return out


@pytest.mark.netns
def test_status_and_plan_on_a_bundle_are_what_they_are_live(netns, tmp_path):
    for a, b in (("v1", "p1"), ("v2", "p2"), ("w1", "w2")):
        netns.ip("link", "add", a, "type", "veth", "peer", "name", b)
    conf = tmp_path / "ib40.conf"
    conf.write_text(CONF)
    (tmp_path / "ib40.conf.d").mkdir()
    (tmp_path / "ib40.conf.d" / "10-mtu.conf").write_text("[link w1]\nmtu = 4000\n")
    run_ib40d_private_run("apply", "-c", str(conf), netns=netns.name, check_rc=0)
    # Now differ from the config, in what plan and status both show.
    netns.ip("link", "set", "v2", "mtu", "1400")
    netns.ip("address", "add", "10.97.9.9/24", "dev", "w1")
    netns.ip("address", "del", "10.97.0.1/24", "dev", "v1")
    netns.ip("route", "add", "10.96.0.0/24", "via", "10.97.5.2", "dev", "w1", "proto", "static")
    netns.ip("route", "del", "10.99.0.0/24", "dev", "w1")

    live = _outputs(("-c", str(conf)), netns.name, str(conf))
    plan = json.loads(live[("plan", "--json")][1])
    assert {(a["kind"], a["target"]) for a in plan["actions"]} >= {
        ("addr.add", "v1"), ("route.del", "w1"), ("route.add", "w1")}
    assert "route 10.96.0.0/24" in live[("status",)][1]

    bundle = tmp_path / "b.tar.gz"
    made = run_ib40d("bundle", "-c", str(conf), "-o", str(bundle), netns=netns.name, check_rc=0)
    assert str(bundle) in made.stdout
    # Read outside the namespace: what the bundle says, not this kernel. Its
    # files are named in the tarball, not in the temporary tree it is read from.
    tarball = _outputs(("--root", str(bundle)), None, f"{bundle}:/etc/ib40.conf")
    assert not any("/tmp/ib40-bundle." in out for _, out in tarball.values())
    tree = tmp_path / "tree"
    tree.mkdir()
    subprocess.run(["tar", "-xzf", str(bundle), "-C", str(tree)], check=True)
    extracted = _outputs(("--root", str(tree / "ib40-bundle")), None, str(tree / "ib40-bundle/etc/ib40.conf"))
    assert extracted == live, (extracted, live)
    assert tarball == live, (tarball, live)
    assert live[("check",)][1].startswith("CONF (+1 drop-in): valid; 4 links")

    # A bundle whose config is broken: each problem names the tarball's file.
    (tree / "ib40-bundle/etc/ib40.conf").write_text(CONF + "[link v9]\nmtu = lots\n")
    broken = tmp_path / "broken.tar.gz"
    subprocess.run(["tar", "-czf", str(broken), "-C", str(tree), "ib40-bundle"], check=True)
    proc = run_ib40d("check", "--root", str(broken), check_rc=2)
    assert proc.stderr.startswith(f"{broken}:/etc/ib40.conf:12: [link v9] mtu: "), proc.stderr
    assert "/tmp/ib40-bundle." not in proc.stderr

    with tarfile.open(bundle) as tar:
        names = tar.getnames()
    assert "ib40-bundle/etc/ib40.conf.d/10-mtu.conf" in names
    assert "ib40-bundle/sys/class/net/p1" in names  # every netdev: doctor reads them all
    assert "ib40-bundle/README" in names

