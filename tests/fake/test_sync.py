# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d sync` against a fake root, with fake udevadm and sysctl first on
PATH. The fakes answer as the real ones do: `udevadm control --reload`
without a running udevd fails with "Failed to send reload request: No such
file or directory" (exit 1, measured on this build machine), and `udevadm
trigger` refuses a device path that does not exist."""
import os

import pytest

from helpers import REPO, run_ib40d
from ib40d.commands import sync
from ib40d.core import tuning, udev
from ib40d.core.config import parse_text
from ib40d.system.sysroot import SysRoot
from test_udev import BOND_CONF

# The bond example of the udev tests: two ports by MAC, bond0 over them.
CONF = BOND_CONF

FAKE_UDEVADM = r"""#!/bin/sh
# Fake udevadm: records its arguments; behaves like the real one for the
# calls ib40d makes.
echo "udevadm $*" >> "$FAKE_LOG"
case "$1 $2" in
    "control --reload")
        if [ "$FAKE_UDEVD" = running ]; then exit 0; fi
        echo "Failed to send reload request: No such file or directory" >&2
        exit 1 ;;
    trigger*)
        shift
        for a in "$@"; do
            case "$a" in
                -*) ;;
                *) [ -e "$FAKE_ROOT$a" ] || { echo "Failed to open the device '$a': No such device" >&2; exit 1; } ;;
            esac
        done
        exit 0 ;;
esac
echo "fake udevadm: unexpected call: $*" >&2
exit 2
"""

FAKE_SYSCTL = r"""#!/bin/sh
echo "sysctl $*" >> "$FAKE_LOG"
exit 0
"""


@pytest.fixture
def machine(tmp_path, monkeypatch):
    """A fake root with eth40a present (eth40b not yet), and fake tools."""
    root = tmp_path / "root"
    (root / "sys/class/net/eth40a").mkdir(parents=True)
    (root / "etc").mkdir()
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, text in (("udevadm", FAKE_UDEVADM), ("sysctl", FAKE_SYSCTL)):
        (bindir / name).write_text(text)
        (bindir / name).chmod(0o755)
    log = tmp_path / "calls.log"
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_LOG", str(log))
    monkeypatch.setenv("FAKE_ROOT", str(root))
    monkeypatch.setenv("FAKE_UDEVD", "running")

    class Machine:
        def __init__(self):
            self.root = SysRoot(root)
            self.dir = root
            self.bindir = bindir

        def calls(self):
            return log.read_text().splitlines() if log.exists() else []

        def clear(self):
            if log.exists():
                log.unlink()

        def file(self, abspath):
            return self.root.path(abspath)

    return Machine()


def test_writes_both_rule_files_and_reloads_udev(machine):
    result = sync.sync(machine.root, parse_text(CONF), reload=True)
    names = machine.file(udev.NAMES_RULES).read_text()
    hooks = machine.file(udev.HOOKS_RULES).read_text()
    assert names == udev.names_rules(parse_text(CONF))
    assert hooks == udev.hooks_rules(parse_text(CONF))
    assert 'ATTR{address}=="00:02:c9:3e:ca:b1"' in names
    # reload, then a change event for the configured links that exist now
    assert machine.calls() == [
        "udevadm control --reload",
        "udevadm trigger --action=change /sys/class/net/eth40a",
    ]
    assert sync.read_manifest(machine.root) == sorted(udev.RULE_FILES)
    assert f"wrote {udev.NAMES_RULES}" in result.changed


def test_nothing_changed_means_no_reload(machine):
    sync.sync(machine.root, parse_text(CONF), reload=True)
    machine.clear()
    before = os.stat(machine.file(udev.HOOKS_RULES))
    result = sync.sync(machine.root, parse_text(CONF), reload=True)
    assert result.changed == []
    assert machine.calls() == []
    assert os.stat(machine.file(udev.HOOKS_RULES)).st_ino == before.st_ino


def test_rewrite_is_a_rename_over_and_leaves_no_temp_files(machine):
    sync.sync(machine.root, parse_text(CONF), reload=False)
    inode = os.stat(machine.file(udev.HOOKS_RULES)).st_ino
    sync.sync(machine.root, parse_text(CONF + "[link eth40c]\nmac = 00:02:c9:3e:ca:b2\n"), reload=False)
    assert os.stat(machine.file(udev.HOOKS_RULES)).st_ino != inode
    assert "eth40c" in machine.file(udev.HOOKS_RULES).read_text()
    assert sorted(os.listdir(machine.file("/etc/udev/rules.d"))) == [
        "70-ib40-names.rules", "90-ib40-hooks.rules"]


def test_failed_write_keeps_the_old_rules(machine, monkeypatch):
    sync.sync(machine.root, parse_text(CONF), reload=False)
    old = machine.file(udev.NAMES_RULES).read_text()

    def disk_full(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with pytest.raises(OSError):
        sync.sync(machine.root, parse_text(CONF.replace("ca:b0", "ca:b9")), reload=False)
    assert machine.file(udev.NAMES_RULES).read_text() == old
    assert sorted(os.listdir(machine.file("/etc/udev/rules.d"))) == [
        "70-ib40-names.rules", "90-ib40-hooks.rules"]


def test_a_link_dropped_from_the_config_gets_its_change_event(machine):
    sync.sync(machine.root, parse_text(CONF + "[ipoib ib0]\nmode = connected\n"), reload=True)
    (machine.dir / "sys/class/net/ib0").mkdir()
    machine.clear()
    sync.sync(machine.root, parse_text(CONF), reload=True)
    # ib0 loses its NM_UNMANAGED mark only through an event of its own
    assert machine.calls() == [
        "udevadm control --reload",
        "udevadm trigger --action=change /sys/class/net/eth40a /sys/class/net/ib0",
    ]


def test_no_config_removes_the_generated_rules(machine):
    sync.sync(machine.root, parse_text(CONF), reload=False)
    result = sync.sync(machine.root, None, reload=True)
    assert not machine.file(udev.NAMES_RULES).exists()
    assert not machine.file(udev.HOOKS_RULES).exists()
    assert f"removed {udev.HOOKS_RULES}" in result.changed
    assert machine.calls()[0] == "udevadm control --reload"
    assert not machine.file(sync.MANIFEST).exists()


def test_without_udevd_the_rules_wait_for_the_next_boot(machine, monkeypatch):
    monkeypatch.setenv("FAKE_UDEVD", "absent")
    result = sync.sync(machine.root, parse_text(CONF), reload=True)
    assert machine.file(udev.HOOKS_RULES).exists()
    assert machine.calls() == ["udevadm control --reload"]  # no trigger
    assert any("No such file or directory" in n and "next boot" in n for n in result.notes)


def test_sysctl_off_masks_the_shipped_file_and_on_unmasks_it(machine):
    off = parse_text(CONF + "[sysctl]\ntuning = no\n")
    sync.sync(machine.root, off, reload=True)
    mask = machine.file(sync.SYSCTL_MASK)
    assert mask.is_symlink() and os.readlink(mask) == "/dev/null"
    assert sync.SYSCTL_MASK in sync.read_manifest(machine.root)
    machine.clear()
    sync.sync(machine.root, parse_text(CONF), reload=True)
    assert not mask.is_symlink() and not mask.exists()
    assert sync.SYSCTL_MASK not in sync.read_manifest(machine.root)
    assert machine.calls() == ["sysctl --system"]  # rules unchanged: no udevadm


def test_sysctl_leaves_the_admins_own_files_alone(machine):
    mask = machine.file(sync.SYSCTL_MASK)
    mask.parent.mkdir(parents=True)
    # The admin's own override of the shipped file...
    mask.write_text("net.core.rmem_max = 8388608\n")
    result = sync.sync(machine.root, parse_text(CONF + "[sysctl]\ntuning = no\n"), reload=False)
    assert mask.read_text() == "net.core.rmem_max = 8388608\n"
    assert any("not ours" in n for n in result.notes)
    # ...and a mask made by hand: tuning = yes (the default) does not undo it.
    mask.unlink()
    os.symlink("/dev/null", mask)
    sync.sync(machine.root, parse_text(CONF), reload=False)
    assert mask.is_symlink()


def test_cli_with_root_writes_files_but_never_calls_udevadm(machine):
    conf = machine.dir / "etc/ib40.conf"
    conf.write_text(CONF)
    env = {"PATH": os.environ["PATH"]}
    proc = run_ib40d("sync", "--root", str(machine.dir), env=env, check_rc=0)
    assert f"wrote {udev.HOOKS_RULES}" in proc.stdout
    assert machine.file(udev.HOOKS_RULES).exists()
    assert machine.calls() == []


def test_cli_invalid_config_writes_nothing(machine):
    (machine.dir / "etc/ib40.conf").write_text("[link eth40a]\nmac = 00:02:c9:3e:ca\n")
    proc = run_ib40d("sync", "--root", str(machine.dir), check_rc=2)
    assert "mac" in proc.stderr and "nothing was changed" in proc.stderr
    assert not machine.file("/etc/udev").exists()


def test_cli_without_config_says_so(machine):
    proc = run_ib40d("sync", "--root", str(machine.dir), check_rc=0)
    assert "manages nothing" in proc.stderr
    assert "up to date" in proc.stdout


def test_shipped_sysctl_file_is_generated_from_tuning():
    shipped = (REPO / "sysctl/60-ib40.conf").read_text()
    assert shipped == tuning.sysctl_d_text(), "run `make sysctl-file`"
    # and it carries every value of the HOWTO's 60-infiniband.conf
    values = dict(line.split(" = ", 1) for line in shipped.splitlines() if not line.startswith("#"))
    assert values == tuning.SYSCTL
    assert values["net.ipv4.tcp_rmem"] == "4096 87380 4194304"
    assert os.path.basename(sync.SHIPPED_SYSCTL) == os.path.basename(sync.SYSCTL_MASK) == "60-ib40.conf"


def test_other_generated_files_stay_in_the_manifest(machine):
    """Files listed for purge by something else (another ib40 version)
    survive every sync."""
    machine.file(sync.MANIFEST).parent.mkdir(parents=True)
    machine.file(sync.MANIFEST).write_text("/etc/systemd/network/10-ib40-eth40a.link\n")
    sync.sync(machine.root, parse_text(CONF), reload=False)
    sync.sync(machine.root, None, reload=False)
    assert sync.read_manifest(machine.root) == ["/etc/systemd/network/10-ib40-eth40a.link"]


def test_a_save_during_the_run_is_left_for_the_check(machine, monkeypatch):
    """The path units do not watch while ib40-sync.service runs. sync
    records what it read, before it parses: a save landing after that read
    leaves the record behind, which is what ib40-sync-check.service (the
    same comparison, once systemd watches again) finds, and syncs."""
    import argparse

    conf = machine.dir / "etc/ib40.conf"
    conf.write_text(CONF)
    real_sync = sync.sync

    def sync_while_an_admin_saves(*args, **kw):
        conf.write_text(CONF + "[link eth40c]\nmac = 00:02:c9:3e:ca:b2\n")
        return real_sync(*args, **kw)

    monkeypatch.setattr(sync, "sync", sync_while_an_admin_saves)
    args = argparse.Namespace(root=str(machine.dir), config=None, no_reload=True)
    assert sync.run(args) == 0
    assert "eth40c" not in machine.file(udev.HOOKS_RULES).read_text()
    assert machine.file(sync.SEEN_COPY).read_bytes() == CONF.encode()
    assert _condition_goes_on(machine.dir)  # the check starts another run...
    monkeypatch.setattr(sync, "sync", real_sync)
    assert sync.run(args) == 0
    assert "eth40c" in machine.file(udev.HOOKS_RULES).read_text()
    assert not _condition_goes_on(machine.dir)  # ...and then nothing more


def _condition_goes_on(root) -> bool:
    """ib40-sync.service's ExecCondition on ROOT: True when it would sync."""
    import subprocess

    from test_units import sync_condition

    return subprocess.run(sync_condition(root), timeout=60).returncode == 0


def test_sync_and_the_unit_compare_the_same_files(machine):
    """Hidden drop-ins: ib40 read them and the unit's glob did not, so every
    write to /etc ran a full sync. Neither reads them now."""
    (machine.dir / "etc/ib40.conf").write_text(CONF)
    d = machine.dir / "etc/ib40.conf.d"
    d.mkdir()
    (d / ".10-editor-swap.conf").write_text("[bond bond0]\nmtu = 9000\n")
    (d / "20-mtu.conf").write_text("[bond bond0]\nmtu = 4000\n")
    run_ib40d("sync", "--root", str(machine.dir), check_rc=0)
    assert not _condition_goes_on(machine.dir)
    header = machine.file(udev.HOOKS_RULES).read_text().splitlines()[0]
    assert header.endswith(f"from {machine.dir}/etc/ib40.conf, {d}/20-mtu.conf."), header


def test_dropins_that_are_no_files_stop_sync_without_hanging_it(machine):
    (machine.dir / "etc/ib40.conf").write_text(CONF)
    d = machine.dir / "etc/ib40.conf.d"
    d.mkdir()
    os.mkfifo(d / "10-fifo.conf")  # reading it would wait for a writer forever
    (d / "20-zero.conf").symlink_to("/dev/zero")  # reading it never ends
    (d / "30-dangling.conf").symlink_to(d / "gone")
    proc = run_ib40d("sync", "--root", str(machine.dir), check_rc=2)
    assert proc.stderr.splitlines()[:3] == [
        f"{d}/10-fifo.conf: is a FIFO, not a regular file",
        f"{d}/20-zero.conf: is a character device, not a regular file",
        f"{d}/30-dangling.conf: a dangling symbolic link ({d}/gone does not exist)",
    ]
    assert not machine.file("/etc/udev").exists()
    # recorded as the unit reads the files: the next /etc event does not repeat it
    assert machine.file(sync.SEEN_COPY).read_bytes() == CONF.encode()
    assert not _condition_goes_on(machine.dir)


def test_a_dropin_name_cannot_add_rules(machine):
    (machine.dir / "etc/ib40.conf").write_text(CONF)
    d = machine.dir / "etc/ib40.conf.d"
    d.mkdir()
    (d / '10-x\nSUBSYSTEM=="net", ENV{EVIL}="1"\n.conf').write_text("[link eth40a]\ntxqueuelen = 1000\n")
    run_ib40d("sync", "--root", str(machine.dir), check_rc=0)
    for path in udev.RULE_FILES:
        text = machine.file(path).read_text()
        rules = [line for line in text.splitlines() if line and not line.startswith("#")]
        assert not any("EVIL" in line for line in rules), text
        assert "10-x\\x0aSUBSYSTEM" in text.splitlines()[0]
