# SPDX-License-Identifier: GPL-2.0-or-later
"""Planner and apply engine against the recording netlink fake."""

import errno

import pytest

from fakenl import FakeNetlink, FakeRoot
from helpers import HOWTO_BOND
from ib40d.system.apply_engine import converge
from ib40d.core.config import parse_text
from ib40d.core.model import AddrObs, BondObs, LinkObs
from ib40d.system.observe import observe
from ib40d.core.plan import make_plan, missing_slaves

BOND_CONF = HOWTO_BOND + "broadcast = 10.30.255.255\n"


def nic(name, index, mac, up=True, **kw):
    return LinkObs(name=name, index=index, mac=mac, mtu=1500, txqueuelen=1000, admin_up=up, carrier=True, **kw)


def machine(*extra):
    return FakeNetlink([
        LinkObs(name="lo", index=1, mtu=65536, admin_up=True, addresses=[AddrObs("127.0.0.1/8")]),
        nic("eth0", 2, "52:54:00:12:34:56", addresses=[AddrObs("192.168.1.5/24", "192.168.1.255")]),
        nic("eth40a", 3, "00:02:c9:3e:ca:b1"),
        nic("eth40b", 4, "00:02:c9:3e:ca:b0"),
        *extra,
    ])


def names_touched(nl):
    return {name for _, name, _ in nl.calls}


def test_bond_from_scratch_follows_kernel_order_and_converges(tmp_path):
    cfg = parse_text(BOND_CONF)
    nl = machine()
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok, result.to_json()
    calls = nl.calls
    # the bond exists with its settings before any slave joins
    assert calls[0] == ("create_bond", "bond0", {"mode": "balance-rr", "miimon": 100, "updelay": 200, "downdelay": 200})
    for slave in ("eth40a", "eth40b"):
        down = calls.index(("set_state", slave, "down"))
        enslave = calls.index(("set_master", slave, "bond0"))
        assert down < enslave  # two requests, down first
    assert calls[-1] == ("set_state", "bond0", "up")
    bond = nl.links["bond0"]
    assert bond.bond.miimon == 100 and bond.bond.updelay == 200
    assert [a.cidr for a in bond.addresses] == ["10.30.0.2/16"]
    assert bond.addresses[0].broadcast == "10.30.255.255"
    assert nl.links["eth40a"].txqueuelen == 10000 and nl.links["eth40a"].master == "bond0"
    assert nl.links["eth40a"].addresses == []  # never an address on a slave
    assert "eth0" not in names_touched(nl) and "lo" not in names_touched(nl)
    # second run: converged, zero writes
    before = nl.writes
    again = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert again.ok and again.done == [] and nl.writes == before and again.writes == 0


def test_mode_change_releases_downs_then_reenslaves(tmp_path):
    cfg = parse_text(BOND_CONF.replace("mode = balance-rr", "mode = active-backup"))
    nl = machine()
    converge(parse_text(BOND_CONF), nl, FakeRoot(tmp_path, nl))
    nl.calls.clear()
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok, result.to_json()
    kinds = [(m, n) for m, n, _ in nl.calls]
    mode_at = nl.calls.index(("set_bond", "bond0", {"mode": "active-backup"}))
    assert kinds.index(("set_master", "eth40a")) < mode_at
    assert kinds.index(("set_state", "bond0")) < mode_at
    assert nl.links["bond0"].bond.mode == "active-backup"
    assert nl.links["eth40a"].master == "bond0" and nl.links["eth40b"].master == "bond0"


def test_unconfigured_slave_of_our_bond_is_left_alone(tmp_path):
    nl = machine(nic("eth9", 9, "52:54:00:00:00:09"))
    converge(parse_text(BOND_CONF), nl, FakeRoot(tmp_path, nl))
    nl.links["eth9"].master = "bond0"
    plan = make_plan(parse_text(BOND_CONF.replace("mode = balance-rr", "mode = active-backup")),
                     observe(nl, FakeRoot(tmp_path, nl)))
    assert all(a.target != "eth9" for a in plan.actions)
    assert any("eth9" in n and "left alone" in n for n in plan.notes)


def test_missing_slave_is_a_note_and_the_bond_is_built_with_the_other(tmp_path):
    nl = machine()
    del nl.links["eth40b"]
    cfg = parse_text(BOND_CONF)
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok
    assert nl.links["eth40a"].master == "bond0"
    assert any(n.startswith("eth40b: not present") for n in result.notes)
    assert missing_slaves(cfg, observe(nl, FakeRoot(tmp_path, nl))) == ["bond0: eth40b"]


def test_refused_request_names_link_and_errno_and_says_what_was_not_done(tmp_path):
    nl = machine()
    nl.fail[("set_master", "eth40b")] = errno.EBUSY
    result = converge(parse_text(BOND_CONF), nl, FakeRoot(tmp_path, nl))
    assert not result.ok
    assert len(result.errors) == 1
    assert result.errors[0].startswith("eth40b: ") and "EBUSY" in result.errors[0]
    assert any(a.kind == "link.enslave" and a.target == "eth40a" for a in result.done)
    assert [a.kind for a in result.not_done][:1] == ["link.enslave"]
    assert any(a.kind == "addr.add" for a in result.not_done)


def test_use_carrier_refused_is_a_warning(tmp_path):
    nl = machine()
    nl.fail[("set_bond", "bond0")] = errno.EOPNOTSUPP
    cfg = parse_text(BOND_CONF + "use_carrier = 1\n")
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.errors == []
    assert any("use_carrier" in w and "EOPNOTSUPP" in w for w in result.warnings)


def test_link_filter_touches_only_the_link_and_its_bond(tmp_path):
    cfg = parse_text(BOND_CONF + "[link eth7]\nmtu = 9000\n")
    nl = machine(nic("eth7", 7, "52:54:00:00:00:07"))
    converge(cfg, nl, FakeRoot(tmp_path, nl), only="eth40a")
    touched = names_touched(nl)
    assert touched <= {"eth40a", "bond0"} and "eth40a" in touched
    assert nl.links["eth7"].mtu == 1500


def test_explicit_broadcast_difference_is_replaced_and_extra_removed(tmp_path):
    cfg = parse_text("[link eth40a]\naddress = 10.30.0.2/16\nbroadcast = 10.30.255.255\n")
    nl = machine()
    nl.links["eth40a"].addresses = [AddrObs("10.30.0.2/16", "10.30.0.255"), AddrObs("10.9.9.9/24", "10.9.9.255"),
                                     AddrObs("fe80::202:c9ff:fe3e:cab1/64")]
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok
    assert {(a.cidr, a.broadcast) for a in nl.links["eth40a"].addresses} == {
        ("10.30.0.2/16", "10.30.255.255"), ("fe80::202:c9ff:fe3e:cab1/64", None)}


def test_default_broadcast_only_on_new_addresses(tmp_path):
    # an address added by hand without brd stays as it is: no delete + add,
    # which would drop the routes that use it
    nl = machine()
    nl.links["eth40a"].addresses = [AddrObs("10.30.0.2/16", None)]
    result = converge(parse_text("[link eth40a]\naddress = 10.30.0.2/16 10.31.0.2/16\n"), nl, FakeRoot(tmp_path, nl))
    assert result.ok
    assert [c for m, n, c in nl.calls if m.endswith("_address")] == ["10.31.0.2/16"]
    assert {(a.cidr, a.broadcast) for a in nl.links["eth40a"].addresses} == {
        ("10.30.0.2/16", None), ("10.31.0.2/16", "10.31.255.255")}


def test_addresses_with_a_lifetime_are_not_ours(tmp_path):
    nl = machine()
    nl.links["eth40a"].addresses = [AddrObs("2001:db8::5054:ff:fe12:3456/64", None, permanent=False)]
    result = converge(parse_text("[link eth40a]\naddress = 10.30.0.2/16\n"), nl, FakeRoot(tmp_path, nl))
    assert result.ok and [m for m, n, c in nl.calls if m == "del_address"] == []


IPOIB_CONF = """
[ipoib ib0]
mode = connected
mtu = 65520
address = 10.30.0.1/24
"""


def ib0(mode="datagram", mtu=2044, up=True):
    return LinkObs(name="ib0", index=5, kind="ipoib", mac="80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:3f:02:f1",
                   mtu=mtu, txqueuelen=256, admin_up=up, ipoib_mode=mode)


def test_ipoib_down_mode_mtu_up_then_read_back(tmp_path):
    nl = FakeNetlink([ib0()])
    result = converge(parse_text(IPOIB_CONF), nl, FakeRoot(tmp_path, nl))
    assert result.ok, result.to_json()
    seq = [(m, d) for m, n, d in nl.calls if n == "ib0" and m != "add_address"]
    assert seq == [("set_state", "down"), ("ipoib_mode", "connected"), ("set_mtu", 65520), ("set_state", "up")]
    assert nl.links["ib0"].ipoib_mode == "connected" and nl.links["ib0"].mtu == 65520
    assert result.not_converged == []


def test_ipoib_to_datagram_sets_mtu_again_after_the_mode_clamps_it(tmp_path):
    nl = FakeNetlink([ib0("connected", 65520)])
    cfg = parse_text("[ipoib ib0]\nmode = datagram\nmtu = 2044\n")
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok
    assert [m for m, n, d in nl.calls] == ["set_state", "ipoib_mode", "set_mtu", "set_state"]


def test_mtu_before_mode_would_fail_in_datagram_like_the_kernel(tmp_path):
    # the order matters: the fake refuses 65520 in datagram mode, as ifconfig did in the fixture
    nl = FakeNetlink([ib0()])
    with pytest.raises(Exception) as e:
        nl.set_mtu(5, "ib0", 65520)
    assert "EINVAL" in str(e.value)


def test_connected_mode_refused_gives_the_fix(tmp_path):
    nl = FakeNetlink([ib0()])

    class NoCM(FakeRoot):
        def write_sysfs(self, abspath, value):
            raise OSError(errno.EINVAL, "Invalid argument")

    result = converge(parse_text(IPOIB_CONF), nl, NoCM(tmp_path, nl))
    assert not result.ok
    [error] = result.errors
    assert error.startswith("ib0: ") and "EINVAL" in error
    assert "mode = datagram" in error and "4092" in error
    # it was set down for the switch: it is set up again, not left down
    assert nl.links["ib0"].admin_up
    assert any(w.startswith("ib0: set up again") for w in result.warnings)


def test_ipoib_bond_slaves_active_backup(tmp_path):
    cfg = parse_text("""
[ipoib ib0]
mode = connected
[ipoib ib1]
mode = connected
[bond bond1]
slaves = ib0 ib1
mode = active-backup
miimon = 100
address = 10.40.0.1/24
""")
    ib1 = ib0()
    ib1.name, ib1.index = "ib1", 6
    nl = FakeNetlink([ib0(), ib1])
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok, result.to_json()
    for name in ("ib0", "ib1"):
        seq = [m for m, n, d in nl.calls if n == name]
        assert seq.index("ipoib_mode") < seq.index("set_master")
        assert nl.links[name].master == "bond1"


def test_a_refused_bond_does_not_stop_other_links(tmp_path):
    cfg = parse_text(BOND_CONF + "[link eth0]\nmtu = 9000\n")
    nl = machine()
    nl.fail[("create_bond", "bond0")] = errno.EOPNOTSUPP  # no bonding module
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert not result.ok
    assert result.errors[0].startswith("bond0: ") and "EOPNOTSUPP" in result.errors[0]
    assert nl.links["eth0"].mtu == 9000
    assert {a.target for a in result.not_done} == {"bond0", "eth40a", "eth40b"}
    assert result.not_converged == []


def test_a_link_with_another_mac_is_configured_but_noted(tmp_path):
    nl = machine()
    nl.links["eth40a"].mac = "52:54:00:aa:bb:cc"
    plan = make_plan(parse_text(BOND_CONF), observe(nl, FakeRoot(tmp_path, nl)))
    assert any(n.startswith("eth40a: MAC is 52:54:00:aa:bb:cc, the config says 00:02:c9:3e:ca:b1") for n in plan.notes)
    assert any(a.kind == "link.enslave" and a.target == "eth40a" for a in plan.actions)


def test_miimon_change_sends_the_delays_again(tmp_path):
    nl = machine()
    converge(parse_text(BOND_CONF), nl, FakeRoot(tmp_path, nl))
    nl.calls.clear()
    cfg = parse_text(BOND_CONF.replace("miimon = 100", "miimon = 50"))
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok and result.not_converged == []
    assert nl.calls == [("set_bond", "bond0", {"miimon": 50, "updelay": 200, "downdelay": 200})]


def test_zero_delays_without_miimon_are_not_sent(tmp_path):
    nl = machine()
    cfg = parse_text("[link eth40a]\n[bond bond0]\nslaves = eth40a\nmiimon = 0\nupdelay = 0\ndowndelay = 0\n")
    converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert nl.calls[0] == ("create_bond", "bond0", {"miimon": 0})


def test_refused_mode_change_sets_the_bond_up_again(tmp_path):
    nl = machine()
    converge(parse_text(BOND_CONF), nl, FakeRoot(tmp_path, nl))
    nl.fail[("set_bond", "bond0")] = errno.EPERM
    result = converge(parse_text(BOND_CONF.replace("balance-rr", "active-backup")), nl, FakeRoot(tmp_path, nl))
    assert not result.ok
    assert nl.links["bond0"].admin_up
    assert "bond0: set up again after the failure above" in result.warnings


def test_link_filter_takes_the_whole_bond_for_a_mode_change(tmp_path):
    nl = machine()
    converge(parse_text(BOND_CONF), nl, FakeRoot(tmp_path, nl))
    cfg = parse_text(BOND_CONF.replace("balance-rr", "active-backup"))
    result = converge(cfg, nl, FakeRoot(tmp_path, nl), only="eth40a")
    assert result.ok, result.to_json()
    assert nl.links["bond0"].bond.mode == "active-backup"
    assert nl.links["eth40b"].master == "bond0" and nl.links["bond0"].admin_up


def test_a_balance_rr_slave_wearing_the_bond_mac_is_not_a_mismatch(tmp_path):
    nl = machine()
    converge(parse_text(BOND_CONF), nl, FakeRoot(tmp_path, nl))
    nl.links["eth40b"].perm_mac, nl.links["eth40b"].mac = "00:02:c9:3e:ca:b0", "00:02:c9:3e:ca:b1"
    plan = make_plan(parse_text(BOND_CONF), observe(nl, FakeRoot(tmp_path, nl)))
    assert not any("MAC is" in n for n in plan.notes)


@pytest.mark.parametrize("kind", ["bridge", "veth", None])
def test_a_bond_name_taken_by_another_kind_is_refused_with_its_slaves(tmp_path, kind):
    cfg = parse_text(BOND_CONF + "[link eth0]\nmtu = 9000\n")
    nl = machine(LinkObs(name="bond0", index=8, kind=kind, arptype=1, mtu=1500, admin_up=True))
    plan = make_plan(cfg, observe(nl, FakeRoot(tmp_path, nl)))
    shown = kind or "none (an Ethernet device)"
    refusal = (f"bond0: is of kind {shown}, but the config says bond ([bond bond0]); "
               "refused: nothing is done to bond0, eth40a, eth40b")
    assert plan.refusals == [refusal]
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert not result.ok and result.errors == [refusal]
    assert names_touched(nl) == {"eth0"}  # other groups go on


def test_ipoib_section_on_a_link_that_is_not_ipoib_is_refused_before_any_write(tmp_path):
    nl = FakeNetlink([LinkObs(name="ib0", index=5, kind="veth", arptype=1, mtu=1500, admin_up=True)])
    result = converge(parse_text(IPOIB_CONF), nl, FakeRoot(tmp_path, nl))
    assert result.errors == ["ib0: is of kind veth, but the config says ipoib ([ipoib ib0]); "
                             "refused: nothing is done to ib0"]
    assert nl.calls == []


def test_ipoib_without_a_link_kind_is_known_by_its_link_type(tmp_path):
    link = ib0()
    link.kind, link.arptype = None, 32  # ARPHRD_INFINIBAND
    nl = FakeNetlink([link])
    result = converge(parse_text(IPOIB_CONF), nl, FakeRoot(tmp_path, nl))
    assert result.ok and result.errors == [] and nl.links["ib0"].ipoib_mode == "connected"


def test_a_bond_with_an_ipoib_slave_that_is_not_ipoib_is_refused_whole(tmp_path):
    cfg = parse_text("[ipoib ib0]\n[ipoib ib1]\n[bond bond1]\nslaves = ib0 ib1\nmode = active-backup\nmiimon = 100\n")
    nl = FakeNetlink([ib0(), nic("ib1", 6, "52:54:00:00:00:06", arptype=1)])
    refusal = ("ib1: is of kind none (an Ethernet device), but the config says ipoib ([ipoib ib1]); "
               "refused: nothing is done to bond1, ib0, ib1")
    assert converge(cfg, nl, FakeRoot(tmp_path, nl), only="ib0").errors == [refusal]  # `apply --link ib0`
    assert converge(cfg, nl, FakeRoot(tmp_path, nl)).errors == [refusal]
    assert nl.calls == []


class RenamingNetlink(FakeNetlink):
    """Renames a link (as udev or an admin would) right after a given write."""

    def __init__(self, links, after: tuple[str, str], new_name: str):
        super().__init__(links)
        self.after, self.new_name = after, new_name

    def _write(self, method, name, detail=None):
        super()._write(method, name, detail)
        if (method, name) == self.after:
            link = self.links.pop(name)
            link.name = self.new_name
            self.links[self.new_name] = link


def test_a_slave_renamed_mid_apply_ends_its_bond_group_and_gets_no_more_writes(tmp_path):
    base = machine()
    nl = RenamingNetlink(base.links.values(), ("set_txqueuelen", "eth40a"), "eth40x")
    cfg = parse_text(BOND_CONF + "[link eth0]\nmtu = 9000\n")
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.errors == ["eth40a: eth40a was renamed to eth40x during the apply (ifindex 3); "
                             "refused: nothing more is written to it or its group"]
    renamed_at = nl.calls.index(("set_txqueuelen", "eth40a", 10000))
    assert [c[1] for c in nl.calls[renamed_at + 1:]] == ["eth0"]  # nothing more in bond0's group
    assert nl.links["eth40x"].master is None and nl.links["eth0"].mtu == 9000


def test_the_lock_wait_is_bounded_and_names_the_holder(tmp_path):
    import fcntl
    import os

    from ib40d.system.apply_engine import LockError, apply_lock
    from ib40d.system.sysroot import SysRoot

    lock = tmp_path / "run/ib40/apply.lock"
    lock.parent.mkdir(parents=True)
    held = open(lock, "a")
    fcntl.flock(held, fcntl.LOCK_EX)
    st = os.stat(lock)
    (tmp_path / "proc/4242").mkdir(parents=True)
    (tmp_path / "proc/4242/cmdline").write_bytes(b"/usr/bin/python3\0/usr/bin/ib40d\0daemon\0")
    (tmp_path / "proc/locks").write_text(
        f"1: POSIX  ADVISORY  WRITE 77 {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino} 0 EOF\n"
        f"2: -> FLOCK  ADVISORY  WRITE 99 {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino} 0 EOF\n"
        f"3: FLOCK  ADVISORY  WRITE 4242 {os.major(st.st_dev):02x}:{os.minor(st.st_dev):02x}:{st.st_ino} 0 EOF\n")
    told = []
    with pytest.raises(LockError) as e:
        with apply_lock(SysRoot(tmp_path), wait=0.3, waiting=told.append):
            raise AssertionError("the lock is held: this must not run")
    holder = "held by pid 4242 (/usr/bin/python3 /usr/bin/ib40d daemon)"
    assert told == [f"waiting for the apply lock {lock}, {holder}; giving up after 0.3 s"]
    assert str(e.value) == f"gave up after 0.3 s waiting for the apply lock {lock}, {holder}"
    held.close()
    with apply_lock(SysRoot(tmp_path), wait=0.3, waiting=told.append):
        assert len(told) == 1  # free: no wait, nothing said


def test_bond_options_are_one_table_the_model_config_and_plan_share(tmp_path):
    """A [bond] setting is a row of model.BOND_OPTIONS: the BondObs field and
    the BondConfig key of that name, and the planner sends every row."""
    from ib40d.core.records import fields

    from ib40d.core.config import BondConfig
    from ib40d.core.model import BOND_OPTIONS

    names = [o.name for o in BOND_OPTIONS]
    assert names == [f.name for f in fields(BondObs)]
    assert set(names) <= {f.name for f in fields(BondConfig)}
    active_backup = parse_text("[link eth40a]\n[bond bond0]\nslaves = eth40a\nmode = active-backup\n"
                               "use_carrier = 0\narp_interval = 100\narp_ip_target = 10.30.0.1 10.30.0.9\n"
                               "primary = eth40a\n")
    lacp = parse_text("[link eth40a]\n[bond bond0]\nslaves = eth40a\nmode = 802.3ad\nmiimon = 100\n"
                      "xmit_hash_policy = layer3+4\nlacp_rate = fast\nad_select = count\nmin_links = 1\n")
    seen = {}
    for cfg in (active_backup, lacp):
        nl = machine()
        result = converge(cfg, nl, FakeRoot(tmp_path, nl))
        assert result.ok and result.not_converged == []
        bond = nl.links["bond0"].bond
        seen.update({n: getattr(bond, n) for n in names if getattr(cfg.bonds["bond0"], n) is not None})
    assert seen == {
        "mode": "802.3ad", "miimon": 100, "use_carrier": False, "arp_interval": 100,
        "arp_ip_target": ("10.30.0.1", "10.30.0.9"), "xmit_hash_policy": "layer3+4", "lacp_rate": "fast",
        "ad_select": "count", "min_links": 1, "primary": "eth40a"}
    assert set(seen) | {"updelay", "downdelay"} == set(names)  # the delays: test_bond_from_scratch_...


def test_a_port_that_appears_during_the_apply_is_not_reported_as_not_kept(tmp_path):
    # At boot udev may rename a port while the apply that made its bond
    # runs: that port was planned as absent, and is the next apply's.
    class RenamedDuringApply(FakeNetlink):
        def create_bond(self, name, options):
            super().create_bond(name, options)
            self.links["eth40a"] = nic("eth40a", 3, "00:02:c9:3e:ca:b1")

    nl = RenamedDuringApply([nic("eth0", 2, "52:54:00:12:34:56"), nic("eth40b", 4, "00:02:c9:3e:ca:b0")])
    cfg = parse_text(BOND_CONF)
    result = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert result.ok and result.not_converged == [], result.to_json()
    assert "eth40a: not present yet (slave of bond0); enslaved when it appears" in result.notes
    assert nl.links["eth40b"].master == "bond0" and nl.links["eth40a"].master is None
    # what the daemon marks configured (ib40-link@'s shortcut): not eth40a
    assert result.made_true == ["eth40b"]
    # the next apply (the daemon's, on the port's link event) takes it up
    again = converge(cfg, nl, FakeRoot(tmp_path, nl))
    assert again.ok and nl.links["eth40a"].master == "bond0"


def test_a_port_present_at_the_plan_that_does_not_take_its_settings_is_still_not_converged(tmp_path):
    class KeepsNoTxqueuelen(FakeNetlink):
        def set_txqueuelen(self, index, name, qlen):
            self._write("set_txqueuelen", name, qlen)  # accepted, not kept

    nl = KeepsNoTxqueuelen(machine().dump_links())
    result = converge(parse_text(BOND_CONF), nl, FakeRoot(tmp_path, nl))
    assert not result.ok
    assert sorted(a.target for a in result.not_converged) == ["eth40a", "eth40b"]


def renamed_by_udev_meanwhile(nl):
    nl.links["eth40a"] = nic("eth40a", 3, "00:02:c9:3e:ca:b1")


def test_a_port_named_while_pyroute2_is_imported_joins_its_bond_in_the_same_apply(tmp_path):
    nl = FakeNetlink([nic("eth0", 2, "52:54:00:12:34:56"), nic("eth40b", 4, "00:02:c9:3e:ca:b0")])
    nl.while_preparing = renamed_by_udev_meanwhile
    result = converge(parse_text(BOND_CONF), nl, FakeRoot(tmp_path, nl), udev_busy=lambda names: set())
    assert result.ok and result.not_converged == [], result.to_json()
    assert nl.links["eth40a"].master == "bond0" and nl.links["eth40b"].master == "bond0"
    assert result.made_true == ["eth40a", "eth40b"] and not any("not present" in n for n in result.notes)


def test_a_port_named_while_pyroute2_is_imported_waits_if_udev_is_not_done_with_it(tmp_path):
    nl = FakeNetlink([nic("eth0", 2, "52:54:00:12:34:56"), nic("eth40b", 4, "00:02:c9:3e:ca:b0")])
    nl.while_preparing = renamed_by_udev_meanwhile
    asked = []

    def udev_busy(names):
        asked.append(sorted(names))
        return {"eth40a"}

    result = converge(parse_text(BOND_CONF), nl, FakeRoot(tmp_path, nl), udev_busy=udev_busy)
    assert asked == [["eth40a", "eth40b"]]
    assert result.ok and nl.links["eth40a"].master is None and nl.links["eth40b"].master == "bond0"
    assert result.made_true == ["eth40b"]
