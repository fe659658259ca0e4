# SPDX-License-Identifier: GPL-2.0-or-later
"""Read the machine into the model (model.py). Nothing here writes.

- `observe(nl, root)`: links and addresses from a netlink adapter
  (netlink.Netlink for real, a recording fake in tests), and sysfs for what
  netlink does not carry on every kernel (IPoIB mode): what plan, apply and
  the daemon compare, exactly the kernel's view.
- `observe_sysfs(root, names)`: the same links from sysfs and procfs, and the
  addresses from one rtnetlink dump, or under `--root` from a support
  bundle's captured files: what status and doctor read, without pyroute2.
- `find_cards(root)`: the Mellanox cards on the PCI bus (cardview.py adds
  each one's identity and port rates for status and doctor).
"""

from __future__ import annotations

from ib40d.core.model import CARD_PORTS, MELLANOX_VENDOR, AddrObs, BondObs, Card, LinkObs, Machine, is_card_class
from ib40d.system.sysroot import SysRoot

# netlink.py (not only the planner) takes the link records from here.
__all__ = ["AddrObs", "BondObs", "LinkObs", "Machine", "find_cards", "observe", "observe_sysfs"]


CHILDREN_FILE = "/run/ib40/ipoib-children"  # one name a line: the P_Key children apply created


def observe(nl, root: SysRoot) -> Machine:
    links = {l.name: l for l in nl.dump_links()}
    for link in links.values():
        mode = root.read(f"/sys/class/net/{link.name}/mode")
        if link.kind == "ipoib" or (mode in ("connected", "datagram")):
            link.ipoib_mode = mode
        if link.vfs:
            driver = root.realpath(f"/sys/class/net/{link.name}/device/driver")
            link.vf_driver = driver.rsplit("/", 1)[-1] if driver else None
    children = root.read(CHILDREN_FILE)
    return Machine(links, created_children=set(children.split()) if children else set())


def observe_sysfs(root: SysRoot, names, *, bonds=(), addresses: bool = True) -> Machine:
    """The links NAMES (those absent are left out) from sysfs, and
    /proc/net/bonding of BONDS (None: no such file). Without ADDRESSES the
    links' addresses are None: not read, so not compared."""
    from ib40d.system.addrdump import read_addresses, read_routes
    from ib40d.core.bonding import parse_proc_bonding
    from ib40d.system.linkstate import read_link

    by_name = read_addresses(root) if addresses else {}
    routes = read_routes(root) if addresses else None
    links = {}
    for name in names:
        link = read_link(root, name)
        if link is not None:
            link.addresses = by_name.get(name, []) if addresses else None
            link.routes = None if routes is None else routes.get(name, [])
            links[name] = link
    bonding = {}
    for name in bonds:
        text = root.read(f"/proc/net/bonding/{name}")
        bonding[name] = parse_proc_bonding(text) if text is not None else None
    return Machine(links, bonding)


def read_vfs(root: SysRoot, names) -> dict[str, list]:
    """{name: [VfObs]} of the links NAMES that have virtual functions, from
    one raw link dump (RTEXT_FILTER_VF; no pyroute2), or in a support bundle
    from the links it recorded (empty for a tree without them)."""
    if not root.is_live:
        from ib40d.system.bundle import LINKS_FILE, RecordedLinks

        if not root.exists(LINKS_FILE):
            return {}
        return {l.name: l.vfs for l in RecordedLinks(root).dump_links() if l.name in names and l.vfs}
    from ib40d.system.netlink import _link_obs, _raw_links

    return {raw["name"]: _link_obs(raw, {}).vfs for raw in _raw_links() if raw["name"] in names and raw["vfs"]}


def find_cards(root: SysRoot) -> list[Card]:
    """The Mellanox cards under /sys/bus/pci/devices: physical functions
    (virtual ones have a `physfn` link) of a network or InfiniBand class
    (model.is_card_class), with their PCIe link as sysfs shows it, NUMA
    node, netdevs, RDMA devices and the mlx4 ports that can switch type now."""
    from ib40d.system import sysfs

    cards = []
    for bdf in root.listdir("/sys/bus/pci/devices"):
        dev = f"/sys/bus/pci/devices/{bdf}"
        if root.read_int(f"{dev}/vendor") != MELLANOX_VENDOR or root.exists(f"{dev}/physfn"):
            continue
        if not is_card_class(root.read_int(f"{dev}/class")):
            continue
        numa = root.read_int(f"{dev}/numa_node")
        numa = None if numa is None or numa < 0 else numa
        cards.append(Card(
            pci=bdf, device_id=root.read_int(f"{dev}/device"),
            mlx4_ports=tuple(p for p in CARD_PORTS if root.exists(f"{dev}/mlx4_port{p}")),
            numa_node=numa, pcie=sysfs.read_pcie_link(root, dev),
            netdevs=root.listdir(f"{dev}/net"), ib_devices=root.listdir(f"{dev}/infiniband"),
            cpulist=root.read(f"/sys/devices/system/node/node{numa}/cpulist") if numa is not None else None))
    return cards
