# SPDX-License-Identifier: GPL-2.0-or-later
"""The rtnetlink numbers ib40 uses, from the kernel's uapi headers, once.

netlink.py's stdlib reads decode with them; its pyroute2 writes name the
same attributes, and tests/unit/test_netlink_contract.py checks every
number here against pyroute2's own tables. /sys/class/net/X/flags and type carry the
IFF_* and ARPHRD_* numbers too. Pure: no imports.
"""

# linux/netlink.h
NETLINK_ROUTE = 0
NLMSG_ERROR = 0x2
NLMSG_DONE = 0x3
NLM_F_REQUEST = 0x1
NLM_F_DUMP_INTR = 0x10
NLM_F_DUMP = 0x300
NLA_TYPE_MASK = 0x3FFF  # strips NLA_F_NESTED / NLA_F_NET_BYTEORDER

# linux/rtnetlink.h
RTM_NEWLINK = 16
RTM_DELLINK = 17
RTM_GETLINK = 18
RTM_NEWADDR = 20
RTM_GETADDR = 22
RTM_NEWROUTE = 24
RTM_GETROUTE = 26
RTMGRP_LINK = 0x1

# linux/if_link.h
IFLA_ADDRESS = 1
IFLA_LINK = 5  # the lower link of a VLAN
IFLA_IFNAME = 3
IFLA_MTU = 4
IFLA_MASTER = 10
IFLA_TXQLEN = 13
IFLA_OPERSTATE = 16
IFLA_LINKINFO = 18
IFLA_CARRIER = 33
IFLA_PERM_ADDRESS = 54  # since Linux 5.5
IFLA_VFINFO_LIST = 22  # sent only when the dump asks with IFLA_EXT_MASK RTEXT_FILTER_VF
IFLA_EXT_MASK = 29
IFLA_NUM_VF = 21
RTEXT_FILTER_VF = 1
IFLA_VF_INFO = 1
IFLA_VF_MAC = 1  # struct ifla_vf_mac { __u32 vf; __u8 mac[32]; }: every VF has one
IFLA_VF_IB_NODE_GUID = 10  # struct ifla_vf_guid { __u32 vf; __u64 guid; }; dumped since Linux 5.5
IFLA_VF_IB_PORT_GUID = 11
IFLA_INFO_KIND = 1
IFLA_INFO_DATA = 2
IFLA_VLAN_ID = 1
IFLA_IPOIB_PKEY = 1
IFLA_BOND_MODE = 1
IFLA_BOND_MIIMON = 3
IFLA_BOND_UPDELAY = 4
IFLA_BOND_DOWNDELAY = 5
IFLA_BOND_USE_CARRIER = 6
IFLA_BOND_ARP_INTERVAL = 7
IFLA_BOND_ARP_IP_TARGET = 8
IFLA_BOND_PRIMARY = 11  # the slave's ifindex
IFLA_BOND_XMIT_HASH_POLICY = 14
IFLA_BOND_MIN_LINKS = 18
IFLA_BOND_AD_LACP_RATE = 21
IFLA_BOND_AD_SELECT = 22
# IF_OPER_* (RFC 2863) by number, as `ip link` prints them
OPERSTATES = ("unknown", "notpresent", "down", "lowerlayerdown", "testing", "dormant", "up")

# linux/rtnetlink.h: routes
RTA_DST = 1
RTA_OIF = 4
RTA_GATEWAY = 5
RTA_PRIORITY = 6
RTA_TABLE = 15
RTN_UNICAST = 1
RTPROT_STATIC = 4
RT_TABLE_MAIN = 254

# linux/if_addr.h
IFA_ADDRESS = 1
IFA_LOCAL = 2
IFA_BROADCAST = 4
IFA_FLAGS = 8
IFA_F_PERMANENT = 0x80

# linux/if.h
IFF_UP = 0x1

# linux/if_arp.h (ifi_type; /sys/class/net/X/type)
ARPHRD_ETHER = 1
ARPHRD_INFINIBAND = 32
