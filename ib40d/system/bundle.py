# SPDX-License-Identifier: GPL-2.0-or-later
"""Support bundles: what `status`, `doctor` and `plan` read, in one .tar.gz.

`capture()` writes the tarball: the sysfs and procfs files ib40 reads for
every netdev, the Mellanox PCI functions and RDMA devices, /proc/net/bonding,
the TCP tuning, ib40's own files in /etc and /run, the links and addresses
as rtnetlink gives them (recorded as JSON: `RecordedLinks` reads them back
with Netlink's read interface, so `plan` on a bundle compares with the
recorded kernel, not this machine's), the conflicts scan, and tool outputs
and versions for a human reader. Symlinks are kept (relative, as sysfs has
them) so `master` and `device` resolve inside the tree.

`open_tree()` makes `--root FILE.tar.gz` work: it extracts the tarball into a
private temporary directory, refusing members that would land outside it.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
import tarfile
import time
from pathlib import PurePosixPath

from ib40d.core.records import asdict
from ib40d.core.model import AddrObs, BondObs, LinkObs, RouteObs, VfObs
from ib40d.core.errors import UserError
from ib40d.system.sysroot import SysRoot

TOP = "ib40-bundle"  # the tarball's one top-level directory
META = "/bundle"  # what is not a system path: recorded links, tool outputs, versions
LINKS_FILE = f"{META}/links.json"
CONFLICTS_FILE = f"{META}/conflicts.json"
ADDRESSES_FILE = "/run/ib40/ip-address.json"  # addrdump.BUNDLE_FILE: `ip -j address`'s shape
MAX_FILE = 1 << 20  # sysfs attributes are at most a page; config files up to 1 MiB
MAX_MEMBERS = 50_000
MAX_TOTAL = 256 << 20  # what --root will extract at most

# PCI function files that are binary, write-only or identify the unit
# (vpd carries the serial number): never read.
_PCI_SKIP = {"config", "rom", "vpd", "remove", "rescan", "reset", "driver_override", "new_id", "remove_id",
             "reset_method", "sriov_vf_msix_count"}
_NETDEV_SUBDIRS = {"bonding", "bonding_slave", "statistics"}
# Under an RDMA device: everything but the per-GID attribute tables (two
# files per GID, 128 GIDs a port) and runtime power management. (Symlinks,
# `device` among them, are kept as links, never followed.)
_IB_SKIP_DIRS = {"gid_attrs", "power"}
MODULES = ("mlx4_core", "mlx4_en", "mlx4_ib", "mlx5_core", "mlx5_ib", "ib_ipoib", "ib_umad", "ib_core", "bonding")

README = """\
ib40 support bundle, made by `ib40d bundle` on {when} (ib40 {version}).

Read it with ib40 itself, from the tarball or from this directory:

    ib40d status --root BUNDLE     (also doctor, plan, check)

What it holds, with the paths they have on the machine:
- sys/: for every network interface, /sys/class/net/NAME and its
  attributes (bonding/, bonding_slave/, statistics/); the Mellanox PCI
  functions (/sys/bus/pci/devices/BDF: ids, PCIe link speed and width, NUMA
  node, mlx4_portN; not config space, ROM or VPD, which holds the serial
  number) and the PCIe link of the bridges above them; the RDMA devices
  (/sys/class/infiniband: fw_ver, board_id, node_guid, ports with state,
  rate, link layer, GID 0); loaded modules ib40 cares about; NUMA cpulists.
- proc/: /proc/net/bonding/*, /proc/net/vlan/*, the TCP tuning values
  doctor compares, /proc/version.
- etc/: the ib40 configuration and drop-ins, the udev rules ib40 generated,
  ib40's modprobe.d file. run/ib40/: ib40's state files and the addresses
  (ip-address.json, as `ip -j address` prints them), and the P_Key
  children ib40 made (ipoib-children).
- bundle/: links.json (every link as rtnetlink showed it, what `plan` reads),
  conflicts.json (lines of ifupdown, systemd-networkd, NetworkManager, netplan
  and cloud-init files naming a link, with file and line: their files are not
  copied, they can hold Wi-Fi keys and passwords), the output of ibstat,
  mstconfig query, lspci -vv and ethtool for the cards, ip -j -d link and
  ip -j address, systemctl list-units of ib40's and opensm's units, and
  versions (kernel, ib40, pyroute2, mstflint).

Nothing else: no private keys, passwords, other configuration files, logs
or host name.
"""


# ---------------------------------------------------------------- capture


class _Writer:
    """Members of the tarball under TOP, each added once."""

    def __init__(self, tar: tarfile.TarFile, mtime: float):
        self.tar = tar
        self.mtime = mtime
        self.seen: set[str] = set()

    def _info(self, abspath: str, kind: bytes, mode: int) -> tarfile.TarInfo | None:
        name = TOP + abspath
        if name in self.seen:
            return None
        self.seen.add(name)
        info = tarfile.TarInfo(name)
        info.type, info.mode, info.mtime = kind, mode, self.mtime
        return info

    def text(self, abspath: str, data: str | bytes) -> None:
        raw = data.encode() if isinstance(data, str) else data
        info = self._info(abspath, tarfile.REGTYPE, 0o644)
        if info is not None:
            info.size = len(raw)
            self.tar.addfile(info, io.BytesIO(raw))

    def directory(self, abspath: str) -> None:
        info = self._info(abspath, tarfile.DIRTYPE, 0o755)
        if info is not None:
            self.tar.addfile(info)

    def symlink(self, abspath: str, target: str) -> None:
        info = self._info(abspath, tarfile.SYMTYPE, 0o777)
        if info is not None:
            info.linkname = target
            self.tar.addfile(info)


class _Capture:
    def __init__(self, root: SysRoot, writer: _Writer):
        self.root = root
        self.w = writer
        self.dangling: set[str] = set()  # symlink targets to create as empty directories

    def file(self, abspath: str) -> bool:
        """A regular file's content (a sysfs attribute read once). Missing,
        unreadable or refused (EINVAL, EOPNOTSUPP: what the driver won't
        show) files are left out, which reads as None, as it does live."""
        p = self.root.path(abspath)
        try:
            st = p.lstat()
            if not stat.S_ISREG(st.st_mode) or not st.st_mode & 0o444:
                return False
            with open(p, "rb") as f:
                data = f.read(MAX_FILE + 1)
        except OSError:
            return False
        if len(data) > MAX_FILE:
            return False
        self.w.text(abspath, data)
        return True

    def link(self, abspath: str) -> None:
        """A symlink as it is, when it stays inside the tree (sysfs links are
        relative); its target's directory is created if nothing fills it."""
        try:
            target = os.readlink(self.root.path(abspath))
        except OSError:
            return
        resolved = _resolve(PurePosixPath(abspath).parent, target)
        if target.startswith("/") or resolved is None:
            return
        self.w.symlink(abspath, target)
        if self.root.path(resolved).is_dir():
            self.dangling.add(resolved)

    def tree(self, abspath: str, subdirs=None, skip=frozenset(), depth: int = 6) -> None:
        """The regular files and symlinks of a directory; of its
        subdirectories those in SUBDIRS (None: all but SKIP), DEPTH deep."""
        if self.root.path(abspath).is_symlink():
            self.link(abspath)
            resolved = self.root.realpath(abspath)
            if resolved is None or resolved == abspath:
                return
            abspath = resolved
        self.w.directory(abspath)
        for name in self.root.listdir(abspath):
            child = f"{abspath}/{name}"
            p = self.root.path(child)
            if name in skip:
                continue
            if p.is_symlink():
                self.link(child)
            elif p.is_dir():
                if depth > 0 and (subdirs is None or name in subdirs):
                    self.tree(child, None if subdirs is None else (), skip, depth - 1)
            else:
                self.file(child)

    def finish(self) -> None:
        for d in sorted(self.dangling):
            if TOP + d not in self.w.seen:
                self.w.directory(d)


def _resolve(base: PurePosixPath, target: str) -> str | None:
    """BASE/TARGET with `..` folded, or None when it climbs above /."""
    parts: list[str] = []
    for part in (base / target).parts[1:]:
        if part == "..":
            if not parts:
                return None
            parts.pop()
        elif part != ".":
            parts.append(part)
    return "/" + "/".join(parts)


def _capture_sysfs(c: _Capture) -> None:
    root = c.root
    for name in root.listdir("/sys/class/net"):
        c.tree(f"/sys/class/net/{name}", subdirs=_NETDEV_SUBDIRS)
    for name in root.listdir("/proc/net/bonding"):
        c.file(f"/proc/net/bonding/{name}")
    for name in root.listdir("/proc/net/vlan"):  # a VLAN's id and link: sysfs has neither
        c.file(f"/proc/net/vlan/{name}")
    for bdf in root.listdir("/sys/bus/pci/devices"):
        dev = f"/sys/bus/pci/devices/{bdf}"
        if root.read_int(f"{dev}/vendor") != 0x15B3:
            continue
        c.tree(dev, subdirs=(), skip=_PCI_SKIP)
        real = root.realpath(dev)
        for name in ("net", "infiniband"):
            c.w.directory(f"{real}/{name}")
        # The bridges above it: doctor and link-rate checks read their PCIe link.
        parent = PurePosixPath(real).parent
        while str(parent).startswith("/sys/devices/pci") and parent.name.count(":") == 2:
            for f in ("vendor", "device", "class", "current_link_speed", "current_link_width",
                      "max_link_speed", "max_link_width"):
                c.file(f"{parent}/{f}")
            parent = parent.parent
    for dev in root.listdir("/sys/class/infiniband"):
        c.tree(f"/sys/class/infiniband/{dev}", skip=_IB_SKIP_DIRS)
    for module in MODULES:
        if root.exists(f"/sys/module/{module}"):
            c.w.directory(f"/sys/module/{module}")
            c.file(f"/sys/module/{module}/version")
            c.tree(f"/sys/module/{module}/parameters", depth=0)
    for node in root.listdir("/sys/devices/system/node"):
        c.file(f"/sys/devices/system/node/{node}/cpulist")


def _capture_files(c: _Capture, config: str) -> None:
    from ib40d.core import tuning
    from ib40d.core.porttype_plan import MODPROBE_CONF
    from ib40d.core.udev import RULE_FILES
    from ib40d.system.observe import CHILDREN_FILE

    from pathlib import Path

    # The config as ib40 reads it (-c FILE included) goes where --root looks.
    main = Path(config)
    if main.is_file():
        c.w.text("/etc/ib40.conf", main.read_bytes()[:MAX_FILE])
    dropins = Path(str(main) + ".d")
    if dropins.is_dir():
        for f in sorted(dropins.iterdir()):
            if f.name.endswith(".conf") and f.is_file():
                c.w.text(f"/etc/ib40.conf.d/{f.name}", f.read_bytes()[:MAX_FILE])
    for path in (*RULE_FILES, MODPROBE_CONF, "/var/lib/ib40/generated", "/proc/version",
                 *(tuning.proc_path(key) for key in tuning.SYSCTL)):
        c.file(path)
    for name in c.root.listdir("/run/ib40"):
        if name.endswith((".json", ".conf", ".env")):
            c.file(f"/run/ib40/{name}")
    c.file(CHILDREN_FILE)  # which P_Key children apply made: plan removes only those


def _link_json(link: LinkObs) -> dict:
    return asdict(link)


def _link_from_json(d: dict) -> LinkObs:
    d = dict(d)
    d["addresses"] = None if d.get("addresses") is None else [AddrObs(**a) for a in d["addresses"]]
    d["routes"] = None if d.get("routes") is None else [RouteObs(**r) for r in d["routes"]]
    d["vfs"] = None if d.get("vfs") is None else [VfObs(**v) for v in d["vfs"]]
    if d.get("bond") is not None:
        bond = dict(d["bond"])
        if bond.get("arp_ip_target") is not None:
            bond["arp_ip_target"] = tuple(bond["arp_ip_target"])
        d["bond"] = BondObs(**bond)
    return LinkObs(**d)


def _capture_netlink(c: _Capture) -> None:
    """The links (what plan reads) and addresses (what status reads) as
    rtnetlink shows them now; under a --root that is itself a bundle, what
    that bundle recorded."""
    if not c.root.is_live:
        for path in (LINKS_FILE, ADDRESSES_FILE):
            c.file(path)
        return
    from ib40d.system.netlink import Netlink

    links = Netlink().dump_links()  # reads only: no pyroute2
    c.w.text(LINKS_FILE, json.dumps([_link_json(l) for l in links], indent=1))
    # addrdump reads `ip -j address`'s shape; the same dump as status's live read
    addresses = [{"ifname": l.name, "addr_info": [
        {"local": a.cidr.split("/")[0], "prefixlen": int(a.cidr.split("/")[1]),
         **({"broadcast": a.broadcast} if a.broadcast else {}), **({} if a.permanent else {"dynamic": True})}
        for a in l.addresses]} for l in links]
    c.w.text(ADDRESSES_FILE, json.dumps(addresses, indent=1))


_NOT_INSTALLED = "# not installed"


def _tool(c: _Capture, name: str, argv: list[str], timeout: float = 20.0) -> str | None:
    """ARGV's output into bundle/NAME (a "$ command" line, then "# exit
    status N" or why it did not run, then its output); None when it did not run."""
    from ib40d.system import runner

    try:
        done = runner.run(argv, timeout=timeout)
    except runner.ToolMissing:
        c.w.text(f"{META}/{name}", f"$ {' '.join(argv)}\n{_NOT_INSTALLED}\n")
        return None
    except UserError as e:
        c.w.text(f"{META}/{name}", f"$ {' '.join(argv)}\n# {e}\n")
        return None
    c.w.text(f"{META}/{name}", f"$ {' '.join(argv)}\n# exit status {done.returncode}\n{done.stdout}{done.stderr}")
    return done.stdout


def is_bundle(root: SysRoot) -> bool:
    return not root.is_live and root.exists(f"{META}/versions.json")


def run_tool(root: SysRoot, argv: list[str], timeout: float):
    """runner.run(ARGV) here, or on a bundle what it answered where the
    bundle was made (stdout and stderr as one, as recorded)."""
    from ib40d.system import runner

    if not is_bundle(root):
        return runner.run(argv, timeout=timeout)
    recorded = {"mstconfig": ("mstconfig-query-{}.txt", 2), "ethtool": ("ethtool-{}.txt", 1)}  # as _capture names them
    template, arg = recorded.get(argv[0], ("", 0))
    name = template.format(argv[arg]) if template and len(argv) > arg else ""
    text = root.read(f"{META}/{name}") if name else None
    lines = (text or "").split("\n", 2)
    m = re.fullmatch(r"# exit status (-?\d+)", lines[1]) if len(lines) > 1 else None
    if m is None:
        why = "it was not installed there" if len(lines) > 1 and lines[1] == _NOT_INSTALLED else "not in the bundle"
        raise runner.ToolMissing(f"{' '.join(argv)}: {why}")
    return runner.Completed(tuple(argv), int(m.group(1)), lines[2] if len(lines) > 2 else "", "")


def _versions(c: _Capture) -> dict:
    import platform

    from ib40d import __version__

    versions = {"ib40": __version__, "kernel": platform.release() if c.root.is_live else None,
                "python": platform.python_version()}
    try:
        from importlib.metadata import version

        versions["pyroute2"] = version("pyroute2")
    except Exception:  # not installed, or installed without metadata
        versions["pyroute2"] = None
    return versions


def _capture_tools(c: _Capture) -> dict:
    versions = _versions(c)
    if is_bundle(c.root):  # a bundle of a bundle: what it recorded
        for name in c.root.listdir(META):
            c.file(f"{META}/{name}")
        return json.loads(c.root.read(f"{META}/versions.json") or "{}") or versions
    # On a fake tree, the same tools that plan and status would run there.
    _tool(c, "ibstat.txt", ["ibstat"])
    out = _tool(c, "mstflint-version.txt", ["mstflint", "--version"])
    versions["mstflint"] = out.strip().splitlines()[0] if out and out.strip() else None
    for bdf in c.root.listdir("/sys/bus/pci/devices"):
        if c.root.read_int(f"/sys/bus/pci/devices/{bdf}/vendor") == 0x15B3 and \
                not c.root.exists(f"/sys/bus/pci/devices/{bdf}/physfn"):
            _tool(c, f"mstconfig-query-{bdf}.txt", ["mstconfig", "-d", bdf, "query"])
            _tool(c, f"lspci-{bdf}.txt", ["lspci", "-vv", "-s", bdf], timeout=10)
            for netdev in c.root.listdir(f"/sys/bus/pci/devices/{bdf}/net"):  # the modes the port supports
                _tool(c, f"ethtool-{netdev}.txt", ["ethtool", netdev], timeout=10)
    # Whose opensm runs where (status on a bundle cannot ask systemd)
    _tool(c, "systemctl-units.txt", ["systemctl", "list-units", "--all", "--no-pager", "ib40*", "opensm*"],
          timeout=10)
    _tool(c, "ip-link.json", ["ip", "-j", "-d", "link"], timeout=10)
    _tool(c, "ip-address.json", ["ip", "-j", "address"], timeout=10)
    return versions


def capture(root: SysRoot, out, config: str, conflicts: list[dict]) -> None:
    """Write the bundle of ROOT (normally /) to OUT (a path or binary file)."""
    from ib40d import __version__

    now = time.time()
    kwargs = {"fileobj": out} if hasattr(out, "write") else {"name": out}
    with tarfile.open(mode="w:gz", format=tarfile.PAX_FORMAT, **kwargs) as tar:
        w = _Writer(tar, now)
        w.directory("")
        w.text("/README", README.format(when=time.strftime("%Y-%m-%d %H:%M:%S %Z", time.localtime(now)),
                                        version=__version__))
        c = _Capture(root, w)
        _capture_sysfs(c)
        _capture_files(c, config)
        _capture_netlink(c)
        versions = _capture_tools(c)
        w.text(f"{META}/versions.json", json.dumps(versions, indent=1))
        w.text(CONFLICTS_FILE, json.dumps(conflicts, indent=1))
        c.finish()


# ---------------------------------------------------------------- reading


class RecordedLinks:
    """Netlink's read interface (dump_links, link_name, close) over a
    bundle's recorded links: `plan --root BUNDLE` compares the config with
    the kernel of the machine the bundle came from."""

    writes = 0

    def __init__(self, root: SysRoot):
        text = root.read(LINKS_FILE)
        try:
            self._links = [_link_from_json(d) for d in json.loads(text or "")]
        except (ValueError, TypeError, KeyError, AttributeError) as e:
            raise UserError(f"{root.path(LINKS_FILE)}: not links as ib40d bundle records them ({e})") from None

    def dump_links(self) -> list[LinkObs]:
        import copy

        return copy.deepcopy(self._links)  # callers fill in fields (ipoib_mode), as on a fresh dump

    def link_name(self, index: int) -> str | None:
        return next((l.name for l in self._links if l.index == index), None)

    def close(self) -> None:
        pass


def recorded_routes(root: SysRoot) -> dict[str, list[RouteObs]] | None:
    """{ifname: [RouteObs]} as the bundle recorded them with its links;
    None where nothing was recorded (a fake tree): not compared then."""
    if not root.exists(LINKS_FILE):
        return None
    return {link.name: link.routes or [] for link in RecordedLinks(root).dump_links()}


def link_source(root: SysRoot):
    """What plan reads links from: the recorded links in a bundle, the
    kernel otherwise (a live root, or a fake tree without recorded links)."""
    if not root.is_live and root.exists(LINKS_FILE):
        return RecordedLinks(root)
    from ib40d.system.netlink import Netlink

    return Netlink()


# ---------------------------------------------------------------- opening


def _check_member(m: tarfile.TarInfo) -> str | None:
    """Why member M may not be extracted, or None."""
    path = PurePosixPath(m.name)
    if m.name.startswith("/") or path.is_absolute():
        return "an absolute path"
    if ".." in path.parts:
        return "a '..' in its path"
    if not (m.isreg() or m.isdir() or m.issym()):
        return "not a file, directory or symlink"
    if m.issym() and (m.linkname.startswith("/") or _resolve(PurePosixPath("/", m.name).parent, m.linkname) is None):
        return f"a symlink leaving the bundle ({m.linkname})"
    return None


def extract(tarball: str, dest: str) -> str:
    """Extract TARBALL under DEST after checking every member; return the
    bundle's root (DEST/ib40-bundle, or DEST when the tarball has no single
    top directory). Raises UserError naming the first bad member."""
    try:
        tar = tarfile.open(tarball, "r:*")
    except (OSError, tarfile.TarError) as e:
        why = str(e).splitlines()[0] if str(e) else type(e).__name__  # one line of tarfile's several
        raise UserError(f"--root {tarball}: not a bundle (a directory or a .tar.gz): {why}") from None
    with tar:
        members = []
        links: set[str] = set()
        total = 0
        try:
            for m in tar:
                why = _check_member(m)
                parents = PurePosixPath(m.name).parents
                if why is None and any(str(p) in links for p in parents):
                    why = "inside a symlink of the bundle"
                if m.issym():
                    links.add(str(PurePosixPath(m.name)))
                if why:
                    raise UserError(f"--root {tarball}: refused: member {m.name!r} is {why}")
                total += m.size
                members.append(m)
                if len(members) > MAX_MEMBERS or total > MAX_TOTAL:
                    raise UserError(f"--root {tarball}: refused: more than {MAX_MEMBERS} members "
                                    f"or {MAX_TOTAL >> 20} MiB")
        except (tarfile.TarError, EOFError, OSError) as e:
            raise UserError(f"--root {tarball}: damaged tarball: {e}") from None
        for m in members:
            m.mode = 0o755 if m.isdir() else 0o644  # no setuid, no device files, readable
            m.uid = m.gid = 0
            m.uname = m.gname = ""
        # Symlinks after everything else: a member is never written through
        # one (a symlinked directory created first, then a file "inside" it).
        members.sort(key=lambda m: m.issym())
        kwargs = {"filter": "data"} if hasattr(tarfile, "data_filter") else {}
        try:
            tar.extractall(dest, members=members, **kwargs)
        except (tarfile.TarError, OSError) as e:
            raise UserError(f"--root {tarball}: refused: {e}") from None
        # A chain of symlinks, each inside on its own, can still point out
        # (a -> "t/..", t -> "."): every one must resolve inside.
        inside = os.path.realpath(dest)
        for m in members:
            if m.issym():
                resolved = os.path.realpath(os.path.join(dest, m.name))
                if os.path.commonpath([inside, resolved]) != inside:
                    raise UserError(f"--root {tarball}: refused: member {m.name!r} is a symlink leaving the bundle"
                                    f" ({m.linkname})")
    tops = os.listdir(dest)
    if len(tops) == 1 and os.path.isdir(os.path.join(dest, tops[0])) and \
            not os.path.islink(os.path.join(dest, tops[0])):
        return os.path.join(dest, tops[0])
    return dest


_opened: dict[str, str] = {}  # the tarball's real path -> its extracted tree
_given: dict[str, str] = {}  # the extracted tree -> the tarball's path as given


def shown_path(path: str) -> str:
    """PATH as the user can find it: a file of an extracted tarball is
    TARBALL:/etc/ib40.conf, not a temporary directory gone at exit."""
    for tree, tarball in _given.items():
        if path.startswith(tree + "/"):
            return f"{tarball}:{path[len(tree):]}"
    return path


def open_tree(path: str) -> str:
    """--root as given: a directory is used as it is; a file is taken for a
    bundle tarball, extracted once per process into a temporary directory
    removed at exit."""
    if not os.path.isfile(path):
        return path
    key = os.path.realpath(path)
    if key not in _opened:
        import atexit
        import shutil
        import tempfile

        dest = tempfile.mkdtemp(prefix="ib40-bundle.")
        atexit.register(shutil.rmtree, dest, True)
        _opened[key] = extract(path, dest)
        _given[_opened[key]] = path
    return _opened[key]
