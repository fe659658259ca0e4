# SPDX-License-Identifier: GPL-2.0-or-later
"""The HOWTO's TCP/IP tuning (its etc/sysctl.d/60-infiniband.conf), in one place.

The shipped sysctl.d file is generated from SYSCTL, and `doctor` compares the
running kernel against it, so the two can never disagree. The HOWTO took the
values from furneaux.ca's IPoIB page, which took them from Mellanox's "Linux
sysctl tuning" note for ConnectX-3.
"""

from __future__ import annotations

# key (sysctl dotted name) -> value as sysctl(8) takes it; multi-value keys
# are separated by single spaces here (the kernel prints tabs).
SYSCTL: dict[str, str] = {
    "net.ipv4.tcp_timestamps": "0",
    "net.ipv4.tcp_sack": "1",
    "net.core.netdev_max_backlog": "250000",
    "net.core.rmem_max": "4194304",
    "net.core.wmem_max": "4194304",
    "net.core.rmem_default": "4194304",
    "net.core.wmem_default": "4194304",
    "net.core.optmem_max": "4194304",
    # A no-op since Linux 4.14 (the knob remains and is ignored); kept
    # because the HOWTO sets it and older kernels still honour it.
    "net.ipv4.tcp_low_latency": "1",
    "net.ipv4.tcp_adv_win_scale": "1",
    "net.ipv4.tcp_rmem": "4096 87380 4194304",
    "net.ipv4.tcp_wmem": "4096 65536 4194304",
}


def proc_path(key: str) -> str:
    """"net.ipv4.tcp_rmem" -> "/proc/sys/net/ipv4/tcp_rmem"."""
    return "/proc/sys/" + key.replace(".", "/")


def normalize(value: str) -> str:
    """The kernel prints "4096\\t87380\\t4194304"; compare word by word."""
    return " ".join(value.split())


def sysctl_d_text() -> str:
    """Content of the shipped sysctl.d file."""
    lines = [
        "# Generated from ib40d/core/tuning.py; TCP/IP tuning for 40G ConnectX-3 links",
        "# (Mellanox 'Linux sysctl tuning', via the ib40 HOWTO's 60-infiniband.conf).",
    ]
    lines += [f"{key} = {value}" for key, value in SYSCTL.items()]
    return "\n".join(lines) + "\n"


# Buffer sizes and queue lengths: a kernel already set higher than the
# HOWTO's value is not worse off (tcp_rmem/tcp_wmem compare min, default and
# max one by one). The other keys must match exactly.
AT_LEAST = {
    "net.core.netdev_max_backlog", "net.core.rmem_max", "net.core.wmem_max",
    "net.core.rmem_default", "net.core.wmem_default", "net.core.optmem_max",
    "net.ipv4.tcp_rmem", "net.ipv4.tcp_wmem",
}


def satisfied(key: str, current: str) -> bool:
    """Whether the kernel's current value of `key` is as good as the tuning."""
    have, want = normalize(current).split(), normalize(SYSCTL[key]).split()
    if key in AT_LEAST and len(have) == len(want):
        try:
            return all(int(h) >= int(w) for h, w in zip(have, want))
        except ValueError:
            return False
    return have == want
