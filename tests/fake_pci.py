# SPDX-License-Identifier: GPL-2.0-or-later
"""A fake machine under a temp dir, laid out like the kernel's sysfs/procfs.

Real layout (what the fake copies): the PCI device lives under
/sys/devices/pci0000:00/<bridge>/<bdf>/ with vendor, device, class,
numa_node, current_link_speed/_width and max_link_speed/_width; its netdevs
are <bdf>/net/<ifname>/ and its RDMA devices <bdf>/infiniband/mlx4_0/ports/N/;
/sys/bus/pci/devices/<bdf>, /sys/class/net/<ifname> and
/sys/class/infiniband/<dev> are relative symlinks into that tree; a netdev's
`device` links back to the PCI device and a bond slave's `master` to the bond.
Attribute texts are the kernel's: "8.0 GT/s PCIe", "4: ACTIVE", "5: LinkUp",
"40 Gb/sec (4X QDR)", flags "0x1003", tabs in tcp_rmem.
"""

from __future__ import annotations

import os
from pathlib import Path

from ib40d.core import tuning

MELLANOX = "0x15b3"
CONNECTX3 = "0x1003"
IFF_UP = 0x1


class FakeMachine:
    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------ helpers
    def _write(self, abspath: str, text: str) -> Path:
        p = self.root / abspath.lstrip("/")
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text if text.endswith("\n") else text + "\n")
        return p

    def _link(self, linkpath: str, target: str) -> None:
        """Relative symlink linkpath -> target (both system paths)."""
        lp = self.root / linkpath.lstrip("/")
        lp.parent.mkdir(parents=True, exist_ok=True)
        if lp.is_symlink():
            lp.unlink()
        lp.symlink_to(os.path.relpath(self.root / target.lstrip("/"), lp.parent))

    @staticmethod
    def device_dir(bdf: str) -> str:
        return f"/sys/devices/pci0000:00/0000:00:01.0/{bdf}"

    # ------------------------------------------------------------ PCI card
    def add_connectx3(self, bdf: str = "0000:05:00.0", *, speed: str = "8.0 GT/s PCIe", width: int = 8,
                      max_speed: str = "8.0 GT/s PCIe", max_width: int = 8, numa_node: int = 0,
                      device_id: str = CONNECTX3, pci_class: str = "0x028000", driver: str | None = None) -> str:
        """A ConnectX-3 (MT27500) PCI function; returns its /sys/bus/pci path.
        pci_class: "0x028000" network controller (VPI), "0x020700" and
        "0x0c0600" the two InfiniBand classes, "0x020000" Ethernet.
        driver: "mlx4_core" / "mlx5_core" binds it (the device's `driver`
        link into /sys/bus/pci/drivers/<name>)."""
        dev = self.device_dir(bdf)
        if driver:
            (self.root / f"sys/bus/pci/drivers/{driver}").mkdir(parents=True, exist_ok=True)
            self._link(f"{dev}/driver", f"/sys/bus/pci/drivers/{driver}")
        self._write(f"{dev}/vendor", MELLANOX)
        self._write(f"{dev}/device", device_id)
        self._write(f"{dev}/class", pci_class)
        self._write(f"{dev}/numa_node", str(numa_node))
        self._write(f"{dev}/current_link_speed", speed)
        self._write(f"{dev}/current_link_width", str(width))
        self._write(f"{dev}/max_link_speed", max_speed)
        self._write(f"{dev}/max_link_width", str(max_width))
        self._link(f"/sys/bus/pci/devices/{bdf}", dev)
        if numa_node >= 0:
            self._write(f"/sys/devices/system/node/node{numa_node}/cpulist", "0-1")
        return f"/sys/bus/pci/devices/{bdf}"

    def add_sriov(self, bdf: str, total: int, num: int = 0) -> None:
        """The PF's SR-IOV attributes (Documentation/ABI/testing/sysfs-bus-pci:
        sriov_totalvfs, the limit; sriov_numvfs, the VFs enabled now)."""
        self._write(f"{self.device_dir(bdf)}/sriov_totalvfs", str(total))
        self._write(f"{self.device_dir(bdf)}/sriov_numvfs", str(num))

    def add_other_pci(self, bdf: str, vendor: str = "0x8086", device: str = "0x10fb",
                      pci_class: str | None = None) -> None:
        dev = self.device_dir(bdf)
        self._write(f"{dev}/vendor", vendor)
        self._write(f"{dev}/device", device)
        if pci_class:
            self._write(f"{dev}/class", pci_class)
        self._link(f"/sys/bus/pci/devices/{bdf}", dev)

    # ------------------------------------------------------------ netdevs
    def add_netdev(self, name: str, *, pci: str | None = None, mac: str = "00:02:c9:3e:ca:b1",
                   mtu: int = 1500, txqueuelen: int = 1000, up: bool = True, carrier: bool = True,
                   arptype: int = 1, ipoib_mode: str | None = None, speed_mbps: int | None = 40000,
                   master: str | None = None, dev_port: int | None = None) -> str:
        """dev_port: the card's port less one, as mlx4_en sets it (en_netdev.c)."""
        base = f"{self.device_dir(pci)}/net/{name}" if pci else f"/sys/devices/virtual/net/{name}"
        self._write(f"{base}/address", mac)
        if dev_port is not None:
            self._write(f"{base}/dev_port", str(dev_port))
        self._write(f"{base}/mtu", str(mtu))
        self._write(f"{base}/tx_queue_len", str(txqueuelen))
        self._write(f"{base}/type", str(arptype))
        self._write(f"{base}/flags", hex(0x1002 | (IFF_UP if up else 0)))
        self._write(f"{base}/operstate", "up" if up and carrier else "down")
        if up:
            # The kernel refuses to read carrier (EINVAL) on an admin-down link.
            self._write(f"{base}/carrier", "1" if carrier else "0")
        if speed_mbps is not None:
            self._write(f"{base}/speed", str(speed_mbps if up and carrier else -1))
        if ipoib_mode is not None:
            self._write(f"{base}/mode", ipoib_mode)
        if pci:
            self._link(f"{base}/device", self.device_dir(pci))
        self._link(f"/sys/class/net/{name}", base)
        if master:
            self._link(f"{base}/master", f"/sys/devices/virtual/net/{master}")
        return base

    def add_ipoib(self, name: str = "ib0", *, pci: str, mode: str = "connected", mtu: int = 65520,
                  **kw) -> str:
        kw.setdefault("mac", "80:00:02:08:fe:80:00:00:00:00:00:00:00:02:c9:03:00:3f:02:f1")
        return self.add_netdev(name, pci=pci, mtu=mtu, arptype=32, ipoib_mode=mode, **kw)

    def add_bond(self, name: str, slaves: list[str], *, mode: str = "balance-rr", mtu: int = 1500,
                 proc_text: str | None = None, failures: dict[str, int] | None = None,
                 down: tuple[str, ...] = ()) -> str:
        """A bond netdev plus /proc/net/bonding/<name> in the kernel's format
        (bond_procfs.c), unless proc_text gives the exact text to use."""
        base = self.add_netdev(name, mtu=mtu, speed_mbps=None)
        self._write(f"{base}/bonding/mode", f"{mode} {0 if mode == 'balance-rr' else 1}")
        self._write(f"{base}/bonding/slaves", " ".join(slaves))
        self._write(f"{base}/bonding/miimon", "100")
        self._write(f"{base}/bonding/updelay", "200")
        self._write(f"{base}/bonding/downdelay", "200")
        if proc_text is None:
            # the kernel prints each slave's own (permanent) MAC
            perm = {}
            for i, s in enumerate(slaves):
                addr = self.root / f"sys/class/net/{s}/address"
                perm[s] = addr.read_text().strip() if addr.exists() else f"00:02:c9:3e:ca:b{i}"
            proc_text = self.proc_bonding_text(mode, slaves, failures or {}, down, perm)
        self._write(f"/proc/net/bonding/{name}", proc_text)
        return base

    @staticmethod
    def proc_bonding_text(mode: str, slaves: list[str], failures: dict[str, int],
                          down: tuple[str, ...], perm: dict[str, str]) -> str:
        long_mode = {"balance-rr": "load balancing (round-robin)",
                     "active-backup": "fault-tolerance (active-backup)"}[mode]
        lines = ["Ethernet Channel Bonding Driver: v5.10.0", "",
                 f"Bonding Mode: {long_mode}",
                 f"MII Status: {'up' if len(down) < len(slaves) else 'down'}",
                 "MII Polling Interval (ms): 100", "Up Delay (ms): 200", "Down Delay (ms): 200",
                 "Peer Notification Delay (ms): 0", ""]
        for i, s in enumerate(slaves):
            is_down = s in down
            lines += [f"Slave Interface: {s}", f"MII Status: {'down' if is_down else 'up'}",
                      f"Speed: {'Unknown' if is_down else '40000 Mbps'}",
                      f"Duplex: {'Unknown' if is_down else 'full'}",
                      f"Link Failure Count: {failures.get(s, 0)}",
                      f"Permanent HW addr: {perm[s]}", "Slave queue ID: 0", ""]
        return "\n".join(lines)

    # ------------------------------------------------------------ InfiniBand
    def add_ib_device(self, pci_bdf: str, name: str = "mlx4_0", ports: dict[int, dict] | None = None,
                      identity: dict[str, str] | None = None) -> None:
        """ports: {1: {"state": "4: ACTIVE", "phys_state": "5: LinkUp", "sm_lid": "0x1",
        "rate": "40 Gb/sec (4X QDR)", "link_layer": "InfiniBand"}}; identity: the
        device's own files, {"fw_ver": "2.42.5000", "board_id": "MT_1090120019",
        "hca_type": "MT4099", "node_guid": "0002:c903:00a4:e720"}."""
        base = f"{self.device_dir(pci_bdf)}/infiniband/{name}"
        self._write(f"{base}/node_type", "1: CA")
        for attr, value in (identity or {}).items():
            self._write(f"{base}/{attr}", value)
        for port, attrs in (ports or {}).items():
            full = {"state": "4: ACTIVE", "phys_state": "5: LinkUp", "sm_lid": "0x1", "lid": "0x2",
                    "rate": "40 Gb/sec (4X QDR)", "link_layer": "InfiniBand"}
            full.update(attrs)
            for attr, value in full.items():
                self._write(f"{base}/ports/{port}/{attr}", value)
        self._link(f"{base}/device", self.device_dir(pci_bdf))
        self._link(f"/sys/class/infiniband/{name}", base)

    # ------------------------------------------------------------ sysctl, config
    def set_sysctl(self, key: str, value: str) -> None:
        # The kernel prints multi-value knobs separated by tabs.
        self._write(tuning.proc_path(key), "\t".join(value.split()))

    def tuned_sysctl(self) -> None:
        for key, value in tuning.SYSCTL.items():
            self.set_sysctl(key, value)

    def untuned_sysctl(self) -> None:
        """Debian bookworm's defaults for the same keys."""
        defaults = {
            "net.ipv4.tcp_timestamps": "1", "net.ipv4.tcp_sack": "1",
            "net.core.netdev_max_backlog": "1000", "net.core.rmem_max": "212992",
            "net.core.wmem_max": "212992", "net.core.rmem_default": "212992",
            "net.core.wmem_default": "212992", "net.core.optmem_max": "20480",
            "net.ipv4.tcp_low_latency": "0", "net.ipv4.tcp_adv_win_scale": "1",
            "net.ipv4.tcp_rmem": "4096 131072 6291456", "net.ipv4.tcp_wmem": "4096 16384 4194304",
        }
        for key, value in defaults.items():
            self.set_sysctl(key, value)

    def write_config(self, text: str) -> str:
        self._write("/etc/ib40.conf", text)
        return str(self.root / "etc/ib40.conf")


def downgraded_gen3_x4(root) -> FakeMachine:
    """A ConnectX-3 (Gen3 x8 card) in a slot that trained at Gen3 x4."""
    m = FakeMachine(root)
    m.add_connectx3("0000:05:00.0", speed="8.0 GT/s PCIe", width=4, max_speed="8.0 GT/s PCIe", max_width=8)
    return m


def healthy_gen3_x8(root) -> FakeMachine:
    m = FakeMachine(root)
    m.add_connectx3("0000:05:00.0", speed="8.0 GT/s PCIe", width=8, max_speed="8.0 GT/s PCIe", max_width=8)
    return m
