# SPDX-License-Identifier: GPL-2.0-or-later
"""What sysfs says about the RDMA ports and the PCIe link of a device,
read through a SysRoot and parsed by ib40d.core.ibports and ib40d.core.pcie."""

from __future__ import annotations

from ib40d.core.ibports import PHYS_STATES, IBPort, guid_from_gid, parse_lid, parse_rate_gbps, parse_state
from ib40d.core.pcie import PcieLink, parse_sysfs_speed, parse_sysfs_width
from ib40d.system.sysroot import SysRoot


def read_ports(root: SysRoot) -> list[IBPort]:
    """Every port of every RDMA device under /sys/class/infiniband."""
    ports = []
    for dev in root.listdir("/sys/class/infiniband"):
        base = f"/sys/class/infiniband/{dev}/ports"
        for name in root.listdir(base):
            if name.isdigit():
                ports.append(read_port(root, dev, int(name)))
    return sorted(ports, key=lambda p: (p.device, p.port))


def read_port(root: SysRoot, device: str, port: int) -> IBPort:
    base = f"/sys/class/infiniband/{device}/ports/{port}"
    rate = root.read(f"{base}/rate")
    return IBPort(
        device=device,
        port=port,
        guid=guid_from_gid(root.read(f"{base}/gids/0")),
        link_layer=root.read(f"{base}/link_layer"),
        state=parse_state(root.read(f"{base}/state")),
        phys_state=parse_state(root.read(f"{base}/phys_state"), PHYS_STATES),
        rate=rate,
        rate_gbps=parse_rate_gbps(rate),
        sm_lid=parse_lid(root.read(f"{base}/sm_lid")),
        lid=parse_lid(root.read(f"{base}/lid")),
    )


def device_pci(root: SysRoot, device: str) -> str | None:
    """The PCI address of an RDMA device ("mlx4_0" -> "0000:05:00.0")."""
    target = root.realpath(f"/sys/class/infiniband/{device}/device")
    return target.rsplit("/", 1)[1] if target else None


def read_pcie_link(root: SysRoot, device: str) -> PcieLink | None:
    """The link of a PCI device (device: "/sys/bus/pci/devices/0000:05:00.0").
    None when the kernel shows no link attributes (not PCIe, or a captured
    tree without them)."""
    speed = root.read(f"{device}/current_link_speed")
    width = root.read(f"{device}/current_link_width")
    if speed is None and width is None:
        return None
    return PcieLink(
        speed_gt_s=parse_sysfs_speed(speed),
        width=parse_sysfs_width(width),
        max_speed_gt_s=parse_sysfs_speed(root.read(f"{device}/max_link_speed")),
        max_width=parse_sysfs_width(root.read(f"{device}/max_link_width")),
        source="sysfs",
    )


def read_identity(root: SysRoot, card):
    """What sysfs says of a card (model.Card) without mstflint: the bound
    driver, and fw_ver, board_id (the PSID), hca_type and node_guid of its
    first RDMA device, as a cards.CardIdentity. Fields the tree lacks are
    None (a card with no RDMA driver loaded, or a bundle without them)."""
    from ib40d.core.cards import CardIdentity  # only machines with a card pay for the tables

    dev = f"/sys/bus/pci/devices/{card.pci}"
    driver = root.realpath(f"{dev}/driver")
    ib_device = card.ib_devices[0] if card.ib_devices else None
    base = f"/sys/class/infiniband/{ib_device}"

    def attr(name: str) -> str | None:
        if ib_device is None:
            return None
        return root.read(f"{base}/{name}") or None  # an empty file says nothing

    return CardIdentity(pci=card.pci, device_id=card.device_id,
                        driver=driver.rsplit("/", 1)[1] if driver else None,
                        fw_ver=attr("fw_ver"), psid=attr("board_id"), hca_type=attr("hca_type"),
                        node_guid=attr("node_guid"), ib_device=ib_device)
