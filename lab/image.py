# SPDX-License-Identifier: GPL-2.0-or-later
"""Builds (once) the lab's Debian disk image, kernel and initrd, for
Debian 13 "trixie" (the current stable) or Debian 12 "bookworm".

Two cached stages under lab/cache/, each kept per release:
  tree-<SUITE>-<K1>/   debootstrap's tree; K1 = hash of suite, mirror and
               package list (the slow part, ~2 min: only redone when the list
               changes)
  image-<SUITE>-<K2>/  disk.raw (ext4 made by `mkfs.ext4 -d`, no loop mount),
               vmlinuz, initrd.img; K2 = K1 + this file + lab/guest/* (seconds)
VMs never write to disk.raw: each boots from its own qcow2 overlay.

Run as root: `python3 -m lab.image [SUITE]` prints the image directory
(SUITE defaults to $LAB_SUITE, else trixie).
"""
import hashlib
import os
import shutil
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CACHE = os.path.join(HERE, "cache")
GUEST = os.path.join(HERE, "guest")
SUITES = ("trixie", "bookworm")
# The release a lab run uses when none is named.
DEFAULT_SUITE = os.environ.get("LAB_SUITE", "trixie")
MIRROR = "http://deb.debian.org/debian"
DISK_SIZE = "3G"

# What the guests need: ib40.deb's dependencies (installed here so
# `apt install ./ib40.deb` resolves offline), the traffic tools, and for
# bench/boot the two other ways of making bond0 (systemd-networkd is part of
# systemd; ifupdown + ifenslave as in the HOWTO), and sshd with python3-apt
# for the Ansible role's test (ansible.builtin.apt needs python3-apt).
PACKAGES = sorted("""
    systemd systemd-sysv udev dbus iproute2 kmod procps linux-image-amd64
    python3 python3-pyroute2 python3-pyudev python3-pystemd python3-sdnotify python3-yaml
    iperf3 iputils-ping ethtool ifupdown ifenslave
    openssh-server python3-apt
""".split())


def _sha(*parts):
    h = hashlib.sha256()
    for p in parts:
        h.update(p if isinstance(p, bytes) else p.encode())
        h.update(b"\0")
    return h.hexdigest()[:12]


def tree_key(suite):
    return _sha(suite, MIRROR, " ".join(PACKAGES))


def image_key(suite):
    parts = [tree_key(suite), open(__file__, "rb").read()]
    for name in sorted(os.listdir(GUEST)):
        parts += [name, open(os.path.join(GUEST, name), "rb").read()]
    return _sha(*parts)


def _log(msg):
    print("[lab-image] " + msg, file=sys.stderr, flush=True)


def _run(argv):
    _log(" ".join(argv))
    subprocess.run(argv, check=True)


def _prune(prefix, keep):
    """Old cache entries of one stage go: each is hundreds of MB."""
    for name in os.listdir(CACHE):
        if name.startswith(prefix) and name != keep:
            shutil.rmtree(os.path.join(CACHE, name), ignore_errors=True)


def build_tree(suite):
    tree = os.path.join(CACHE, "tree-%s-%s" % (suite, tree_key(suite)))
    if os.path.isdir(tree):
        return tree
    tmp = tree + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.monotonic()
    _run(["debootstrap", "--variant=minbase", "--components=main",
          "--include=" + ",".join(PACKAGES), suite, tmp, MIRROR])
    _log("debootstrap took %.0f s" % (time.monotonic() - t0))
    os.rename(tmp, tree)
    _prune("tree-%s-" % suite, os.path.basename(tree))
    return tree


def _write(tree, path, text, mode=0o644):
    full = os.path.join(tree, path.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if os.path.lexists(full):
        os.unlink(full)
    with open(full, "w") as f:
        f.write(text)
    os.chmod(full, mode)


def _symlink(tree, link, target):
    full = os.path.join(tree, link.lstrip("/"))
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if os.path.lexists(full):
        os.unlink(full)
    os.symlink(target, full)


def customize(tree):
    """Everything the lab adds to a plain debootstrap tree. Idempotent: it
    only (over)writes the paths below, so the cached tree can be reused."""
    _write(tree, "/etc/fstab", "/dev/vda / ext4 rw,errors=remount-ro 0 1\n")
    _write(tree, "/etc/hostname", "lab\n")
    _write(tree, "/etc/hosts", "127.0.0.1 localhost\n")
    # Empty machine-id: each VM makes its own on first boot (both boot from
    # one base image; systemd-networkd derives bond0's MAC from it).
    _write(tree, "/etc/machine-id", "")
    shutil.copy(os.path.join(GUEST, "lab-agent"), os.path.join(tree, "usr/local/sbin/lab-agent"))
    os.chmod(os.path.join(tree, "usr/local/sbin/lab-agent"), 0o755)
    shutil.copy(os.path.join(GUEST, "lab-agent.service"),
                os.path.join(tree, "etc/systemd/system/lab-agent.service"))
    _symlink(tree, "/etc/systemd/system/sysinit.target.wants/lab-agent.service",
             "/etc/systemd/system/lab-agent.service")
    # No network outside the lab's cables: apt's timers would only wake up
    # to fail, and they cost CPU under emulation.
    for unit in ("apt-daily.timer", "apt-daily-upgrade.timer", "e2scrub_all.timer",
                 "fstrim.timer", "systemd-timesyncd.service"):
        _symlink(tree, "/etc/systemd/system/" + unit, "/dev/null")
    # The guests are offline: with no package lists, `apt install ./ib40.deb`
    # resolves its Depends from what is installed and skips the Recommends
    # (mstflint, rdma-core, opensm...) instead of trying to download them.
    lists = os.path.join(tree, "var/lib/apt/lists")
    for name in os.listdir(lists):
        if name not in ("lock", "partial", "auxfiles"):
            os.unlink(os.path.join(lists, name))
    # A stuck stop job must not eat minutes of a reboot scenario.
    _write(tree, "/etc/systemd/system.conf.d/lab.conf",
           "[Manager]\nDefaultTimeoutStopSec=15s\n")
    # sshd only when a test asks for it (VM.ssh_up): not at every boot.
    for link in ("etc/systemd/system/multi-user.target.wants/ssh.service", "etc/systemd/system/sshd.service"):
        if os.path.lexists(os.path.join(tree, link)):
            os.unlink(os.path.join(tree, link))
    # Journal kept on disk, so a scenario can read the previous boot's lines.
    os.makedirs(os.path.join(tree, "var/log/journal"), exist_ok=True)
    _write(tree, "/root/.profile", "export PATH=/usr/local/sbin:/usr/sbin:/sbin:/usr/local/bin:/usr/bin:/bin\n")


def _kernel_files(tree):
    boot = os.path.join(tree, "boot")
    vmlinuz = sorted(n for n in os.listdir(boot) if n.startswith("vmlinuz-"))[-1]
    version = vmlinuz[len("vmlinuz-"):]
    return os.path.join(boot, vmlinuz), os.path.join(boot, "initrd.img-" + version)


def build_image(suite=DEFAULT_SUITE):
    """Returns the directory holding disk.raw, vmlinuz and initrd.img."""
    if suite not in SUITES:
        raise SystemExit("lab: unknown release %r (known: %s)" % (suite, ", ".join(SUITES)))
    os.makedirs(CACHE, exist_ok=True)
    out = os.path.join(CACHE, "image-%s-%s" % (suite, image_key(suite)))
    if os.path.exists(os.path.join(out, "disk.raw")):
        return out
    tree = build_tree(suite)
    customize(tree)
    tmp = out + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    t0 = time.monotonic()
    _run(["mkfs.ext4", "-q", "-F", "-L", "labroot", "-d", tree,
          os.path.join(tmp, "disk.raw"), DISK_SIZE])
    _log("mkfs.ext4 -d took %.0f s" % (time.monotonic() - t0))
    vmlinuz, initrd = _kernel_files(tree)
    shutil.copy(vmlinuz, os.path.join(tmp, "vmlinuz"))
    shutil.copy(initrd, os.path.join(tmp, "initrd.img"))
    with open(os.path.join(tmp, "packages.txt"), "w") as f:
        f.write("\n".join(PACKAGES) + "\n")
    os.rename(tmp, out)
    _prune("image-%s-" % suite, os.path.basename(out))
    return out


if __name__ == "__main__":
    print(build_image(*sys.argv[1:2]))
