# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d try`'s rollback plan (core/restore.py) for what the netns tests
can't build here: bonds (created, mode changed, slaves moved) and IPoIB."""

from ib40d.core.model import AddrObs, BondObs, LinkObs, Machine, RouteObs, VfObs
from ib40d.core.restore import Snapshot, restore_plan


def port(name, index, master=None, up=True, mtu=1500, **kw):
    return LinkObs(name, index, mtu=mtu, txqueuelen=1000, admin_up=up, master=master, **kw)


def bond(mode="balance-rr", up=True, addresses=("10.30.0.2/16",), mtu=1500):
    return LinkObs("bond0", 10, kind="bond", mtu=mtu, txqueuelen=1000, admin_up=up,
                   addresses=[AddrObs(a, None) for a in addresses],
                   bond=BondObs(mode=mode, miimon=100, updelay=200, downdelay=200, arp_interval=0))


def steps(snap, now):
    return [f"{a.kind} {a.target}" for a in restore_plan(snap, Machine({l.name: l for l in now})).actions]


def test_a_bond_the_trial_created_is_deleted_and_its_ports_get_their_addresses_back():
    before = Snapshot({"bond0": None, "eth40a": port("eth40a", 2, addresses=[AddrObs("10.30.0.2/24", None)]),
                       "eth40b": port("eth40b", 3)})
    now = [bond(), port("eth40a", 2, master="bond0", addresses=[]), port("eth40b", 3, master="bond0")]
    assert steps(before, now) == ["link.delete bond0", "addr.add eth40a"]


def test_a_mode_change_is_undone_in_the_order_the_kernel_demands():
    before = Snapshot({"bond0": bond(), "eth40a": port("eth40a", 2, master="bond0"),
                       "eth40b": port("eth40b", 3, master="bond0")},
                      slave_order={"bond0": ["eth40b", "eth40a"]})
    now = [bond(mode="active-backup", addresses=("10.31.0.2/16",)), port("eth40a", 2, master="bond0"),
           port("eth40b", 3, master="bond0")]
    assert steps(before, now) == [
        "link.release eth40a", "link.release eth40b", "link.down bond0", "bond.set bond0",
        # slaves set down, then enslaved, in the order they had joined
        "link.down eth40b", "link.enslave eth40b", "link.down eth40a", "link.enslave eth40a",
        "addr.del bond0", "addr.add bond0", "link.up bond0"]


def test_a_bond_deleted_during_the_trial_is_made_again_with_its_settings_and_slaves():
    was = bond()
    before = Snapshot({"bond0": was, "eth40a": port("eth40a", 2, master="bond0")})
    plan = restore_plan(before, Machine({"eth40a": port("eth40a", 2, addresses=[AddrObs("10.30.0.2/16", None)])}))
    assert [f"{a.kind} {a.target}" for a in plan.actions] == [
        "bond.create bond0", "link.down eth40a", "link.enslave eth40a",
        "addr.add bond0", "addr.del eth40a", "link.up bond0"]
    assert plan.actions[0].params["options"] == {"mode": "balance-rr", "miimon": 100, "updelay": 200,
                                                 "downdelay": 200, "arp_interval": 0}


def test_ipoib_goes_down_then_mode_then_mtu_then_up():
    before = Snapshot({"ib0": port("ib0", 4, kind="ipoib", mtu=65520, ipoib_mode="connected")})
    now = [port("ib0", 4, kind="ipoib", mtu=2044, ipoib_mode="datagram")]
    assert steps(before, now) == ["link.down ib0", "ipoib.mode ib0", "link.mtu ib0", "link.up ib0"]


def test_addresses_come_back_in_their_order_and_links_outside_the_snapshot_are_left_alone():
    before = Snapshot({"v1": port("v1", 2, addresses=[AddrObs("10.0.0.1/24", None), AddrObs("10.0.1.1/24", None)])})
    now = [port("v1", 2, addresses=[AddrObs("10.0.1.1/24", None)]), port("other0", 9, mtu=9000, up=False)]
    plan = restore_plan(before, Machine({l.name: l for l in now}))
    # 10.0.1.1 can't stay first: both go, then both come back in order
    assert [(a.kind, a.params.get("cidr")) for a in plan.actions] == [
        ("addr.del", "10.0.1.1/24"), ("addr.add", "10.0.0.1/24"), ("addr.add", "10.0.1.1/24")]
    assert restore_plan(before, Machine({"v1": before.links["v1"], "other0": now[1]})).actions == []


def test_vlans_and_p_key_children_the_trial_made_go_before_their_bond():
    """The kernel takes a bond's VLANs with it: deleted first, each on its own."""
    before = Snapshot({"bond0": None, "bond0.30": None, "ib0.8001": None, "eth40a": port("eth40a", 2)})
    now = Machine({l.name: l for l in [
        bond(), port("bond0.30", 11, kind="vlan"), port("ib0.8001", 12, kind="ipoib"),
        port("eth40a", 2, master="bond0")]}, created_children={"ib0.8001"})
    assert [f"{a.kind} {a.target}" for a in restore_plan(before, now).actions] == [
        "link.delete bond0.30", "ipoib.delete ib0.8001", "link.delete bond0"]


def test_a_link_the_trial_did_not_make_is_left_alone_with_a_note():
    before = Snapshot({"ib0.8001": None})
    now = Machine({"ib0.8001": port("ib0.8001", 12, kind="ipoib")})  # made by hand, not in ib40's record
    plan = restore_plan(before, now)
    assert plan.actions == [] and plan.notes == [
        "ib0.8001: appeared during the trial and is not a link ib40 makes; left alone"]


def test_managed_routes_come_back_and_the_trial_s_go_others_stay():
    mesh = RouteObs("10.0.23.0/30", "10.0.12.2", 100)
    trial = RouteObs("10.0.99.0/24", "10.0.12.2")
    dhcp = RouteObs("0.0.0.0/0", "10.0.12.254", protocol=16)
    before = Snapshot({"eth40a": port("eth40a", 2, routes=[mesh, dhcp])})
    now = Machine({"eth40a": port("eth40a", 2, routes=[trial])})
    plan = restore_plan(before, now)
    assert [(a.kind, a.params) for a in plan.actions] == [
        ("route.del", {"dest": "10.0.99.0/24", "gateway": "10.0.12.2", "metric": 0}),
        ("route.add", {"dest": "10.0.23.0/30", "gateway": "10.0.12.2", "metric": 100})]


def test_a_link_set_down_by_the_rollback_gets_all_its_routes_again():
    """The kernel flushes a link's routes when it goes down (IPoIB's mode
    switch here): every managed route it had is added after it is up."""
    route = RouteObs("10.0.23.0/30", "10.0.13.2")
    before = Snapshot({"ib0": port("ib0", 4, kind="ipoib", mtu=65520, ipoib_mode="connected", routes=[route])})
    now = [port("ib0", 4, kind="ipoib", mtu=2044, ipoib_mode="datagram", routes=[route])]
    assert steps(before, now) == ["link.down ib0", "ipoib.mode ib0", "link.mtu ib0", "link.up ib0", "route.add ib0"]


def test_a_primary_the_trial_changed_comes_back_as_its_own_step_after_the_enslaves():
    """primary names a slave (the kernel takes its ifindex): never in the
    bond's option set, where it would be sent as a name."""
    def ab(primary):
        return LinkObs("bond0", 10, kind="bond", mtu=1500, txqueuelen=1000, admin_up=True,
                       bond=BondObs(mode="active-backup", miimon=100, primary=primary))
    before = Snapshot({"bond0": ab("eth40a"), "eth40a": port("eth40a", 2, master="bond0"),
                       "eth40b": port("eth40b", 3, master="bond0")})
    plan = restore_plan(before, Machine({l.name: l for l in [
        ab("eth40b"), port("eth40a", 2, master="bond0"), port("eth40b", 3, master="bond0")]}))
    assert [(a.kind, a.params) for a in plan.actions] == [("bond.primary", {"slave": "eth40a"})]
    assert all("primary" not in a.params.get("options", {}) for a in plan.actions)
    gone = restore_plan(Snapshot({"bond0": ab("eth40a"), "eth40a": port("eth40a", 2, master="bond0")}),
                        Machine({"eth40a": port("eth40a", 2)}))
    assert "primary" not in gone.actions[0].params["options"]
    assert [a.kind for a in gone.actions][-2:] == ["bond.primary", "link.up"]


def child(up=True, mode="datagram", mtu=2044, addresses=("10.40.0.1/24",), routes=()):
    return port("ib0.8001", 12, kind="ipoib", up=up, mtu=mtu, parent="ib0", pkey=0x8001, ipoib_mode=mode,
                addresses=[AddrObs(a, None) for a in addresses], routes=list(routes))


def test_a_p_key_child_the_trial_deleted_is_made_again_with_its_mode_mtu_addresses_and_routes():
    route = RouteObs("10.41.0.0/24", "10.40.0.254")
    ib0 = port("ib0", 4, kind="ipoib", mtu=65520, ipoib_mode="connected")
    before = Snapshot({"ib0": ib0, "ib0.8001": child(mode="connected", mtu=65520, routes=[route])})
    plan = restore_plan(before, Machine({"ib0": ib0}))
    assert [a.describe() for a in plan.actions] == [
        "ipoib.create ib0.8001: pkey (none) -> 0x8001 on ib0 (deleted during the trial)",
        "link.txqueuelen ib0.8001: txqueuelen (none) -> 1000",
        "ipoib.mode ib0.8001: mode (none) -> connected",
        "link.mtu ib0.8001: mtu (none) -> 65520",
        "addr.add ib0.8001: address (none) -> 10.40.0.1/24",
        "link.up ib0.8001: state down -> up",
        "route.add ib0.8001: route (none) -> 10.41.0.0/24 via 10.40.0.254 metric 0 (the link had it)"]
    assert plan.actions[0].params == {"parent": "ib0", "pkey": 0x8001}
    assert plan.notes == []


def test_a_p_key_child_whose_parent_is_gone_too_gets_a_note():
    plan = restore_plan(Snapshot({"ib0.8001": child()}), Machine({}))
    assert plan.actions == [] and plan.notes == [
        "ib0.8001: gone since the trial began, and its parent ib0 too; it cannot be put back"]


def pf(*guids):
    return port("ib0", 4, kind="ipoib", mtu=4092, ipoib_mode="datagram",
                vfs=[VfObs(n, node, port_guid) for n, (node, port_guid) in enumerate(guids)])


ZERO = "00:00:00:00:00:00:00:00"
OURS = ("52:54:00:40:00:12:34:55", "52:54:00:80:00:12:34:55")


def test_vf_guids_the_trial_set_come_back_where_the_kernel_showed_them():
    before = Snapshot({"ib0": pf((ZERO, ZERO), OURS)})
    plan = restore_plan(before, Machine({"ib0": pf(("02:02:c9:40:00:a4:e7:21", "02:02:c9:80:00:a4:e7:21"), OURS)}))
    assert [(a.kind, a.params) for a in plan.actions] == [
        ("vf.guid", {"vf": 0, "node_guid": ZERO, "port_guid": ZERO})]
    assert plan.notes == []
    assert restore_plan(before, Machine({"ib0": pf((ZERO, ZERO), OURS)})).actions == []


def test_vf_guids_the_kernel_does_not_show_are_said_to_stay_as_the_trial_set_them():
    from ib40d.core.actions import Action

    before = Snapshot({"ib0": pf((None, None), (None, None))})
    before.note_applied([Action("vf.guid", "ib0", (), "", {"vf": 1, "node_guid": OURS[0], "port_guid": OURS[1]}),
                         Action("link.mtu", "ib0", (), "", {})])
    plan = restore_plan(before, Machine({"ib0": pf((None, None), (None, None))}))
    assert plan.actions == []
    [note] = plan.notes
    assert note.startswith("ib0: VF 1: GUIDs NOT rolled back: the trial set them, but this kernel does not show")
    # VFs the trial did not set: nothing to say
    assert restore_plan(Snapshot({"ib0": pf((None, None))}), Machine({"ib0": pf((None, None))})).notes == []
