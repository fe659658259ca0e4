# SPDX-License-Identifier: GPL-2.0-or-later
"""IB virtual functions' GUIDs: the derivation (core/sriov.py) and the
netlink message that sets them, built and decoded by pyroute2 0.7.2
(the independent encoder/decoder, as in test_netlink_contract.py), with
the bytes checked against the kernel's struct ifla_vf_guid
{ __u32 vf; __u64 guid; } (include/uapi/linux/if_link.h)."""

import struct

import pytest

from ib40d.core import sriov
from ib40d.system.netlink import vf_guid_request
from fakenl import encode_link_with_vfs

PORT1 = "0002:c903:00a4:e721"  # the ibstat sample's port GUIDs (fixtures/ibstat)
PORT2 = "0x0002c90300a4e722"


def test_vf_guids_are_stable_distinct_and_keep_the_ports_bytes():
    assert sriov.vf_guid(PORT1, 0) == "02:02:c9:80:00:a4:e7:21"
    assert sriov.vf_guid(PORT1, 0, node=True) == "02:02:c9:40:00:a4:e7:21"
    assert sriov.vf_guid(PORT1, 5) == sriov.vf_guid("00:02:c9:03:00:a4:e7:21", 5)
    guids = {sriov.vf_guid(p, n, node) for p in (PORT1, PORT2) for n in range(127) for node in (False, True)}
    assert len(guids) == 2 * 127 * 2
    assert not guids & {"00:02:c9:03:00:a4:e7:21", "00:02:c9:03:00:a4:e7:22"}
    with pytest.raises(ValueError):
        sriov.vf_guid("0002:c903", 0)


def test_the_vf_guid_request_encodes_as_the_kernel_reads_it():
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg
    from pyroute2.requests.link import LinkIPRouteFilter  # what IPRoute.link("set", vf=...) runs

    node, port = sriov.vf_guid(PORT1, 3, node=True), sriov.vf_guid(PORT1, 3)
    attrs = LinkIPRouteFilter("set").set_vf({}, vf_guid_request(3, node, port))
    msg = ifinfmsg()
    msg["index"] = 7
    msg["attrs"] = [("IFLA_VFINFO_LIST", attrs["IFLA_VFINFO_LIST"])]
    msg.encode()
    data = bytes(msg.data)

    back = ifinfmsg(data)
    back.decode()
    info = back.get_attr("IFLA_VFINFO_LIST").get_attr("IFLA_VF_INFO")
    assert info.get_attr("IFLA_VF_IB_NODE_GUID")["vf"] == 3
    assert info.get_attr("IFLA_VF_IB_NODE_GUID")["ib_node_guid"] == node
    assert info.get_attr("IFLA_VF_IB_PORT_GUID")["ib_port_guid"] == port

    # the raw attribute: u32 vf, 4 bytes of padding, u64 guid in host order
    # (the kernel's ivt->guid), e.g. 0x0202c98003a4e721
    wanted = struct.pack("=I4xQ", 3, int.from_bytes(sriov.guid_bytes(port), "big"))
    assert wanted in data


def test_the_dump_reads_each_vfs_guids_back():
    from ib40d.system.netlink import _link_obs, parse_link

    vfs = [(n, sriov.vf_guid(PORT1, n, node=True), sriov.vf_guid(PORT1, n)) for n in range(3)]
    vfs[1] = (1, "00:00:00:00:00:00:00:00", "00:00:00:00:00:00:00:00")  # as a new VF starts
    raw = parse_link(encode_link_with_vfs(vfs, guids=True))
    assert raw["name"] == "ib0"
    assert raw["vfs"] == vfs
    assert [(v.vf, v.node_guid, v.port_guid) for v in _link_obs(raw, {}).vfs] == vfs


def test_a_kernel_that_does_not_show_vf_guids_gives_none_not_zero():
    from ib40d.system.netlink import parse_link

    raw = parse_link(encode_link_with_vfs([(0, None, None), (1, None, None)], guids=False))
    assert raw["vfs"] == [(0, None, None), (1, None, None)]


def test_a_link_without_vfs_has_none():
    from pyroute2.netlink.rtnl.ifinfmsg import ifinfmsg

    from ib40d.system.netlink import LINK_DUMP_REQUEST, parse_link

    msg = ifinfmsg()
    msg["index"] = 2
    msg["attrs"] = [("IFLA_IFNAME", "eth0")]
    msg.encode()
    assert parse_link(bytes(msg.data[16:]))["vfs"] is None
    # the dump asks for the VF list: IFLA_EXT_MASK (29) = RTEXT_FILTER_VF (1)
    assert LINK_DUMP_REQUEST[16:] == struct.pack("=HHI", 8, 29, 1)
