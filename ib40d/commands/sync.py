# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d sync`: write the files derived from /etc/ib40.conf, then tell udev.

Run by ib40-sync.service whenever ib40-sync.path sees /etc/ib40.conf (or
/etc/ib40.conf.d/) change, by the package's postinst, or by hand; the
daemon does the same at start (daemon.check_rules). It writes:

- the udev rules of ib40d.core.udev, under /etc/udev/rules.d (not /run: the names
  must be there when udev enumerates devices at boot, before any ib40 unit
  could run, and in the initramfs if it copies /etc/udev/rules.d);
- the [sysctl] switch: `tuning = no` masks the shipped sysctl.d file with a
  symlink to /dev/null of the same name in /etc/sysctl.d (sysctl.d(5)).

Each file is written atomically and only when its content differs. Only when
a rules file changed does it run `udevadm control --reload` and a *change*
event for the configured links (and those configured before), which updates
NM_UNMANAGED in the udev database. It never sends *add* events: those would
rename links and start their units, touching the network on a mere edit of
the file. New names take effect as a device is next added (boot, hotplug).

An invalid configuration changes nothing (ConfigError, exit 2). A missing
one means ib40 manages nothing: the generated files are removed.
"""

from __future__ import annotations

import os
import sys

from ib40d.core.records import dataclass, field
from ib40d.core import udev
from ib40d.system.cliargs import config_path, load_config, sysroot
from ib40d.core.config import Config
from ib40d.system.config_reader import config_files, read_config_bytes
from ib40d.system.runner import run as run_program
from ib40d.system.sysroot import SysRoot

SHIPPED_SYSCTL = "/usr/lib/sysctl.d/60-ib40.conf"
SYSCTL_MASK = "/etc/sysctl.d/60-ib40.conf"
# The configuration text sync last read (main file, then drop-ins in C
# order). /usr/lib/ib40/config-changed, the ExecCondition of ib40-sync.service
# and ib40-sync-check.service, compares it with the files so that the broad
# watch of ib40-sync.path (all of /etc, see there) runs a Python process only
# when the configuration really changed, and so that a save landing after
# this was read is synced again (ib40-sync-check.service).
SEEN_COPY = "/run/ib40/synced.conf"
# Paths `ib40d sync` created, one a line: the postrm's purge removes exactly
# these, and sync removes a sysctl mask only when it made it itself.
MANIFEST = "/var/lib/ib40/generated"
TOOL_TIMEOUT = 30.0


@dataclass
class SyncResult:
    changed: list[str] = field(default_factory=list)  # "wrote PATH", "removed PATH", ...
    notes: list[str] = field(default_factory=list)
    rules_changed: bool = False
    hooked_before: list[str] = field(default_factory=list)


def add_arguments(parser) -> None:
    parser.add_argument("--no-reload", action="store_true",
                        help="only write the files; do not run udevadm or sysctl")


# ------------------------------------------------------------- manifest


def read_manifest(root: SysRoot) -> list[str]:
    text = root.read(MANIFEST)
    return [line for line in (text or "").splitlines() if line.startswith("/")]


def _write_manifest(root: SysRoot, paths: list[str]) -> None:
    paths = sorted(set(paths))
    if paths:
        root.write_atomic(MANIFEST, "".join(p + "\n" for p in paths))
    else:
        try:
            root.path(MANIFEST).unlink()
        except FileNotFoundError:
            pass


# ------------------------------------------------------------- files


def _remove(root: SysRoot, abspath: str) -> bool:
    try:
        root.path(abspath).unlink()
        return True
    except FileNotFoundError:
        return False


def _is_mask(root: SysRoot, abspath: str) -> bool:
    p = root.path(abspath)
    return p.is_symlink() and os.readlink(p) == "/dev/null"


def _make_mask(root: SysRoot, abspath: str) -> None:
    """Symlink abspath -> /dev/null, atomically (temp link, rename over)."""
    p = root.path(abspath)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.ib40-tmp")
    try:
        tmp.unlink()
    except FileNotFoundError:
        pass
    os.symlink("/dev/null", tmp)
    os.replace(tmp, p)


def sync_sysctl(root: SysRoot, tuning: bool, manifest: list[str], result: SyncResult) -> bool:
    """Make the mask match `tuning`. Returns True when tuning was switched on
    (the caller may then apply the shipped values now)."""
    ours = SYSCTL_MASK in manifest
    if not tuning:
        if _is_mask(root, SYSCTL_MASK):
            return False
        if root.path(SYSCTL_MASK).exists() or root.path(SYSCTL_MASK).is_symlink():
            result.notes.append(f"{SYSCTL_MASK} exists and is not ours: left alone; "
                                f"[sysctl] tuning = no has no effect while it is there")
            return False
        _make_mask(root, SYSCTL_MASK)
        manifest.append(SYSCTL_MASK)
        result.changed.append(f"masked {SHIPPED_SYSCTL} ({SYSCTL_MASK} -> /dev/null)")
        result.notes.append("the tuned values stay in the running kernel until the next boot")
        return False
    if ours:
        manifest.remove(SYSCTL_MASK)
        if _is_mask(root, SYSCTL_MASK):
            _remove(root, SYSCTL_MASK)
            result.changed.append(f"unmasked {SHIPPED_SYSCTL}")
            return True
    return False


def sync_rules(root: SysRoot, wanted: dict[str, str | None], result: SyncResult) -> None:
    result.hooked_before = udev.hooked_names(root.read(udev.HOOKS_RULES))
    for path, content in wanted.items():
        if content is None:
            if _remove(root, path):
                result.changed.append(f"removed {path}")
                result.rules_changed = True
        elif root.write_atomic(path, content):
            result.changed.append(f"wrote {path}")
            result.rules_changed = True


def sync_files(root: SysRoot, config: Config | None, sources: str = "/etc/ib40.conf") -> tuple[SyncResult, bool]:
    """Write every generated file for `config` (None: no config). Returns the
    result and whether sysctl tuning was just switched back on."""
    result = SyncResult()
    manifest = read_manifest(root)
    sync_rules(root, udev.rule_files(config, sources), result)
    tuning = config.sysctl.tuning if config is not None else True
    unmasked = sync_sysctl(root, tuning, manifest, result)
    manifest = [p for p in manifest if p not in udev.RULE_FILES]
    manifest += [p for p in udev.RULE_FILES if root.path(p).exists()]
    _write_manifest(root, manifest)
    return result, unmasked


# ------------------------------------------------------------- telling udev


def reload_udev(root: SysRoot, config: Config | None, result: SyncResult) -> None:
    done = run_program(["udevadm", "control", "--reload"], timeout=TOOL_TIMEOUT)
    if done.returncode != 0:
        # No udevd: a chroot, a container, an image being built. The rules
        # are on disk and apply at the next boot.
        why = (done.stderr or done.stdout).strip().splitlines()
        result.notes.append("udev is not running here (udevadm control --reload: "
                            f"{why[-1] if why else f'exit {done.returncode}'}); the rules apply at the next boot")
        return
    result.changed.append("reloaded udev rules")
    names = list(dict.fromkeys(result.hooked_before + (config.names() if config else [])))
    devices = [f"/sys/class/net/{n}" for n in names if root.exists(f"/sys/class/net/{n}")]
    if devices:
        # Paths as given are the live ones: reload_udev only runs on the live root.
        run_program(["udevadm", "trigger", "--action=change", *devices], timeout=TOOL_TIMEOUT, check=True)
        result.changed.append("change event sent to " + " ".join(os.path.basename(d) for d in devices))
    result.notes.append("new names take effect when a device is next added (boot or hotplug)")


def apply_sysctl(result: SyncResult) -> None:
    # What boot does: every sysctl.d file in order, masks and the admin's
    # overrides in /etc honoured; re-applying the others is a no-op.
    done = run_program(["sysctl", "--system"], timeout=TOOL_TIMEOUT)
    if done.returncode == 0:
        result.changed.append(f"applied {SHIPPED_SYSCTL}")
    else:
        result.notes.append(f"{SHIPPED_SYSCTL} could not be applied now (exit {done.returncode}); it applies at boot")


def sync(root: SysRoot, config: Config | None, reload: bool, sources: str = "/etc/ib40.conf") -> SyncResult:
    result, unmasked = sync_files(root, config, sources)
    if reload and result.rules_changed:
        reload_udev(root, config, result)
    if reload and unmasked:
        apply_sysctl(result)
    return result


def seen_bytes(path: str) -> bytes:
    """What config-changed's find and cat print under LC_ALL=C: the
    main file, then the drop-ins in byte order, regular files only; missing,
    unreadable or other files (a FIFO, /dev/zero) add nothing. Of a file too
    large to be a configuration only the start is taken, so the copy never
    matches and each sync reports the file again."""
    parts = []
    for p in config_files(path):
        try:
            parts.append(read_config_bytes(p))
        except OSError:
            pass
    return b"".join(parts)


def record_seen(root: SysRoot, data: bytes) -> None:
    # Bytes, not text: the copy must equal cat's output byte for byte (CRLF,
    # any encoding). In /run: no fsync, a lost copy only means one more sync.
    target = root.path(SEEN_COPY)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, target)


def run(args) -> int:
    root = sysroot(args)
    path = config_path(args)
    # Recorded before parsing, even for an invalid file, so unrelated /etc
    # events don't repeat its errors; and no later than parsing, so that a
    # save landing after this read differs from the record, which is what
    # ib40-sync-check.service looks for when this run is over.
    record_seen(root, seen_bytes(path))
    config = load_config(args) if os.path.exists(path) else None  # ConfigError: nothing written
    sources = ", ".join(config.files) if config and config.files else path
    # udevadm and sysctl act on the running system: never for --root DIR.
    result = sync(root, config, reload=root.is_live and not args.no_reload, sources=sources)
    if config is None:
        print(f"{path} does not exist: ib40 manages nothing", file=sys.stderr)
    for line in result.changed:
        print(line)
    if not result.changed:
        print("generated files are up to date")
    for note in result.notes:
        print(f"note: {note}", file=sys.stderr)
    return 0
