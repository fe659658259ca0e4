# SPDX-License-Identifier: GPL-2.0-or-later
"""SR-IOV virtual functions of a card (`[card] vfs`, `vfs_port1/2`,
`probe_vfs`): the pure half.

mlx4 (ConnectX-3) has no sriov_configure: writing sriov_numvfs is refused,
and the VFs come from mlx4_core's module parameters at load time
(drivers/net/ethernet/mellanox/mlx4/main.c):
  num_vfs=port1,port2,port1+2   VFs serving port 1, port 2, or both;
  probe_vf=port1,port2,port1+2  how many of them the host driver probes;
one value alone is the port1+2 slot. Like port_type_array they apply to
every mlx4 card. ib40 writes them into its modprobe.d file; they take
effect at the next load of mlx4_core (a reboot, or a module reload).
The firmware must allow them: SRIOV_EN True(1) and NUM_OF_VFS at least as
many, as `mstconfig query` shows.

mlx5 takes /sys/bus/pci/devices/<bdf>/sriov_numvfs at once, up to
sriov_totalvfs; a different non-zero count needs 0 written first.
"""

from __future__ import annotations

from ib40d.core.actions import Action, Change
from ib40d.core.model import MODPROBE_CONF

MODPROBE_LINE_PREFIX = "options mlx4_core num_vfs="
MODPROBE_COMMENT = ("# Written by `ib40d apply` from the vfs keys of [card] in /etc/ib40.conf: mlx4 refuses\n"
                    "# sriov_numvfs. mlx4_core reads it when it loads; it applies to every mlx4 card.")


def wants_vfs(card_cfg) -> bool:
    return card_cfg is not None and any(
        getattr(card_cfg, k) is not None for k in ("vfs", "vfs_port1", "vfs_port2", "probe_vfs"))


def total_vfs(card_cfg) -> int:
    return sum(getattr(card_cfg, k) or 0 for k in ("vfs", "vfs_port1", "vfs_port2"))


def mlx4_options(card_cfg) -> str:
    """`num_vfs=… probe_vf=…` for mlx4_core: the one-value form unless
    single-port VFs are asked for."""
    both, probe = card_cfg.vfs or 0, card_cfg.probe_vfs or 0
    if card_cfg.vfs_port1 or card_cfg.vfs_port2:
        ones = f"{card_cfg.vfs_port1 or 0},{card_cfg.vfs_port2 or 0},"
        return f"num_vfs={ones}{both} probe_vf=0,0,{probe}"
    return f"num_vfs={both} probe_vf={probe}"


def modprobe_line(card_cfg) -> str:
    return f"options mlx4_core {mlx4_options(card_cfg)}"


def parse_modprobe_line(text: str | None) -> str | None:
    """The `options mlx4_core num_vfs=…` line of ib40's modprobe.d file."""
    for line in (text or "").splitlines():
        if line.split("#", 1)[0].strip().startswith(MODPROBE_LINE_PREFIX):
            return " ".join(line.split("#", 1)[0].split())
    return None


def merge_modprobe_text(existing: str | None, comment: str, line: str, owns) -> str:
    """ib40's modprobe.d file with LINE (after COMMENT) in place of the
    lines OWNS(line) says are its own, keeping the other options lines and
    the comment line above each."""
    kept: list[str] = []
    lines = (existing or "").splitlines()
    for i, old in enumerate(lines):
        if old.startswith("options") and not owns(old):
            if i and lines[i - 1].startswith("#"):
                kept.append(lines[i - 1])
            kept.append(old)
    return "\n".join([*comment.splitlines(), line, *kept]) + "\n"


def firmware_problem(card_cfg, state) -> str | None:
    """Why the firmware won't give the VFs asked for, when mstconfig said."""
    want = total_vfs(card_cfg)
    if not want:
        return None
    if state.sriov_en is False:
        return (f"{state.pci}: the firmware has SR-IOV off (SRIOV_EN False(0)): `mstconfig -d {state.pci} set "
                f"SRIOV_EN=1 NUM_OF_VFS={want}`, then reboot")
    if state.fw_num_vfs is not None and state.fw_num_vfs < want:
        return (f"{state.pci}: the firmware offers {state.fw_num_vfs} virtual functions (NUM_OF_VFS), "
                f"{want} asked for: `mstconfig -d {state.pci} set NUM_OF_VFS={want}`, then reboot")
    return None


def plan_vfs(card_cfg, state) -> tuple[list[Action], list[str]]:
    """(actions, notes) that give the card CARD_CFG's virtual functions."""
    if not wants_vfs(card_cfg):
        return [], []
    notes = [n for n in [firmware_problem(card_cfg, state)] if n]
    want = total_vfs(card_cfg)
    if state.driver == "mlx5_core":
        if card_cfg.vfs_port1 or card_cfg.vfs_port2 or card_cfg.probe_vfs:
            notes.append(f"{state.pci}: mlx5 has no single-port or probe_vf settings; only vfs = applies")
        if state.totalvfs is not None and want > state.totalvfs:
            return [], notes + [f"{state.pci}: {want} virtual functions asked for, sriov_totalvfs is "
                                f"{state.totalvfs}: none set"]
        if state.numvfs == want:
            return [], notes
        path = f"/sys/bus/pci/devices/{state.pci}/sriov_numvfs"
        return [Action("sriov.numvfs", state.pci, (Change("sriov_numvfs", state.numvfs, want),),
                       reason="mlx5 creates them now" + ("; 0 first, as the kernel asks to change a count"
                                                         if state.numvfs else ""),
                       params={"path": path, "reset_first": bool(state.numvfs)})], notes
    line = modprobe_line(card_cfg)
    reload_note = (f"{state.pci}: mlx4 makes virtual functions only when mlx4_core loads: reboot, or "
                   "reload the mlx4 modules, for `" + line + "` to take effect")
    if state.vfs_modprobe == line:
        if state.numvfs is not None and state.numvfs != want:
            notes.append(reload_note + f" (sriov_numvfs is {state.numvfs} now)")
        return [], notes
    action = Action("sriov.modprobe", state.pci, (Change("mlx4_core options", state.vfs_modprobe, line),),
                    reason="mlx4 refuses sriov_numvfs; it reads num_vfs/probe_vf when it loads, for every mlx4 card",
                    params={"path": MODPROBE_CONF, "line": line})
    return [action], notes + [reload_note]


def modprobe_total(line: str | None) -> int | None:
    """The VFs a `num_vfs=…` line asks mlx4 for, all slots together."""
    for word in (line or "").split():
        if word.startswith("num_vfs="):
            try:
                return sum(int(v) for v in word.split("=", 1)[1].split(","))
            except ValueError:
                return None
    return None


def status_line(state: dict) -> str | None:
    """What status says of a card's virtual functions, from its porttype.json
    entry with sriov_numvfs and ib40's module line re-read."""
    now, line = state.get("numvfs"), state.get("vfs_modprobe")
    if not now and not line:
        return None
    text = f"virtual functions: {now if now is not None else '?'} now"
    if state.get("totalvfs") is not None:
        text += f" (sriov_totalvfs {state['totalvfs']})"
    if state.get("driver") == "mlx5_core" or not line:
        return text
    text += f"; `{line.removeprefix('options mlx4_core ')}` in {MODPROBE_CONF}"
    if modprobe_total(line) != now:
        text += ": reboot or reload the mlx4 modules to apply it"
    return text


# ---------------------------------------------------------------- IB virtual functions' GUIDs
#
# An IB VF starts with node and port GUID 0. ib40 derives both from the
# GUID of the PF port the VF serves, so they are the same at every boot:
#   PF port GUID  00:02:c9:03:00:a4:e7:21  (Mellanox: OUI, then 03:00, then the MAC's last 3 bytes)
#   VF n port     02:02:c9:80:nn:a4:e7:21  byte 0 | 0x02 (EUI-64 "locally administered"),
#   VF n node     02:02:c9:40:nn:a4:e7:21  bytes 3-4 = 0x80 or 0x40, then n (0..126)
# Bytes 3-4 are the constant 03:00 in Mellanox GUIDs, so replacing them
# keeps the port's own bytes: VFs of different ports never share a GUID,
# and none equals a real (globally administered) GUID.


def guid_bytes(guid: str) -> bytes:
    """"0002:c903:00a4:e721", "0x0002c90300a4e721" or "00:02:...:21" -> 8 bytes."""
    digits = guid.lower().removeprefix("0x").replace(":", "")
    if len(digits) != 16:
        raise ValueError(f"{guid!r} is not a 64-bit GUID")
    return bytes.fromhex(digits)


def vf_guid(port_guid: str, vf: int, node: bool = False) -> str:
    """VF VF's port (or node) GUID derived from its PF port's, as
    "02:02:c9:80:00:a4:e7:21" (the form `ip link` prints and takes)."""
    if not 0 <= vf <= 0xFF:
        raise ValueError(f"VF {vf} is out of range 0..255")
    b = bytearray(guid_bytes(port_guid))
    b[0] |= 0x02
    b[3], b[4] = (0x40 if node else 0x80), vf
    return ":".join(f"{x:02x}" for x in b)


NOT_SHOWN = "unverifiable: this kernel does not show VF GUIDs; re-sent on apply"


def unverifiable_note(name: str, actions) -> str:
    """plan's line for the vf.guid actions of NAME it cannot verify, which
    apply sends and plan does not count as changes (core/plan.py resend)."""
    vfs = ", ".join(str(a.params["vf"]) for a in actions)
    return (f"{name}: the kernel does not show VF GUIDs (no ndo_get_vf_guid): those of VF {vfs} can't be read "
            "back, so they are not counted as changes; apply sends them again each time")


def port_guid_of(address: str | None) -> str | None:
    """The port GUID in an IPoIB hardware address (its last 8 of 20 bytes)."""
    octets = (address or "").split(":")
    return ":".join(octets[-8:]) if len(octets) == 20 else None


def wanted_vf_guids(port_guid: str, vf: int, overrides) -> tuple[str, str]:
    """(node GUID, port GUID) of VF VF: the override for both, or derived."""
    given = dict(overrides or ()).get(vf)
    return (given, given) if given else (vf_guid(port_guid, vf, node=True), vf_guid(port_guid, vf))


def plan_vf_guids(ipoib_cfg, link) -> tuple[list[Action], list[str]]:
    """One `vf.guid` action per VF of the PF netdev LINK whose GUIDs differ
    from the wanted ones. A kernel that does not show them (None) gets them
    every time, with the reason NOT_SHOWN: nothing can tell whether they are
    still set, so plan shows them apart and does not count them."""
    if link is None or not link.vfs:
        return [], []
    if link.vf_driver == "mlx4_core":
        return [], [f"{link.name}: mlx4 cannot set its virtual functions' GUIDs (no set_vf_guid; the subnet "
                    "manager gives them alias GUIDs): left to the SM"]
    port = port_guid_of(link.mac)
    if port is None:
        return [], [f"{link.name}: no port GUID in its address {link.mac}: VF GUIDs left alone"]
    actions = []
    for vf in link.vfs:
        node_guid, port_guid = wanted_vf_guids(port, vf.vf, ipoib_cfg.vf_guids)
        shown = vf.node_guid is not None and vf.port_guid is not None
        changes = tuple(Change(f"vf {vf.vf} {attr}", old, new)
                        for attr, old, new in (("node_guid", vf.node_guid, node_guid),
                                               ("port_guid", vf.port_guid, port_guid)) if old != new)
        if changes:
            actions.append(Action("vf.guid", link.name, changes, "" if shown else NOT_SHOWN,
                                  {"vf": vf.vf, "node_guid": node_guid, "port_guid": port_guid}))
    return actions, []

