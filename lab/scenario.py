# SPDX-License-Identifier: GPL-2.0-or-later
"""What the lab scenarios do to the guests: install ib40 as a user does,
read back the kernel's view, ping while the host pulls cables. Used by
tests/lab, `make lab` (lab/demo.py) and bench/boot.py."""
import json
import os
import subprocess
import time

from ib40d.core.bonding import parse_proc_bonding

from . import guestconf
from .parse import parse_ping
from .vm import LabError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What the README tells users to enable (the package enables ib40d.service
# itself; enabling it again is harmless).
UNITS = ("ib40d.service", "ib40-link@eth40a.service", "ib40-link@eth40b.service")
NAMES_RULES = "/etc/udev/rules.d/70-ib40-names.rules"
PRODUCT_SOURCES = ("ib40d", "units", "udev", "debian", "sysctl", "setup.py", "setup.cfg")


def _newest_mtime(paths):
    newest = 0.0
    for p in paths:
        p = os.path.join(REPO, p)
        if os.path.isfile(p):
            newest = max(newest, os.path.getmtime(p))
        for dirpath, _, files in os.walk(p):
            for f in files:
                newest = max(newest, os.path.getmtime(os.path.join(dirpath, f)))
    return newest


def ensure_deb():
    """The ib40.deb the lab installs: $IB40_LAB_DEB if set, else ./ib40.deb,
    rebuilt with `make deb` when missing or older than the product's sources."""
    if os.environ.get("IB40_LAB_DEB"):
        return os.environ["IB40_LAB_DEB"]
    deb = os.path.join(REPO, "ib40.deb")
    if not os.path.exists(deb) or os.path.getmtime(deb) < _newest_mtime(PRODUCT_SOURCES):
        res = subprocess.run(["make", "-C", REPO, "deb"], capture_output=True, text=True)
        if res.returncode != 0 or not os.path.exists(deb):
            raise LabError("`make deb` failed (rc %d):\n%s\n%s"
                           % (res.returncode, res.stdout[-3000:], res.stderr[-3000:]))
    return deb


def install_deb(vm, deb_path):
    """`apt install ./ib40.deb` in the guest, offline: the image holds the
    dependencies. Returns apt's output."""
    with open(deb_path, "rb") as f:
        vm.put("/root/ib40.deb", f.read())
    res = vm.run("cd /root && DEBIAN_FRONTEND=noninteractive apt-get install -y ./ib40.deb 2>&1",
                 timeout=300)
    return res.out


def configure(vm, conf_text, units=UNITS):
    """Writes /etc/ib40.conf, runs `ib40d check` and `ib40d plan` as the
    README says, enables the units. Returns plan's output."""
    vm.put("/etc/ib40.conf", conf_text)
    vm.run("ib40d check")
    plan = vm.run("ib40d plan", check=False)
    if plan.rc not in (0, 1):  # plan: 0 nothing to do, 1 changes pending
        plan.check()
    vm.run(["systemctl", "enable", *units])
    settle(vm)
    return plan.out


def settle(vm, timeout=90):
    """Waits until systemd has no job left, as a person typing the next
    command would: ib40-sync.path starts ib40-sync.service when
    /etc/ib40.conf changes, and a reboot in the middle of it kills it
    before it has written the naming rules (seen: the next boot kept ens4/ens5)."""
    time.sleep(2)  # the path unit's inotify event
    return wait_for(vm, lambda v: v.run("systemctl list-jobs --no-legend", check=False).out.strip() == ""
                    or "jobs pending", timeout, "no systemd jobs pending")


def bond_conf(vm, **kw):
    return guestconf.ib40_bond(vm.macs, vm.address, **kw)


def wait_running(vm, timeout=180):
    """Waits for boot to finish; returns systemd's verdict (running or
    degraded) and the failed units."""
    res = vm.run("systemctl is-system-running --wait", timeout=timeout, check=False)
    failed = vm.run("systemctl --failed --no-legend --plain", check=False).out.strip()
    return res.out.strip(), failed


def bond_state(vm, bond="bond0"):
    """/proc/net/bonding parsed (None when the bond is absent)."""
    res = vm.run("cat /proc/net/bonding/%s" % bond, check=False)
    return parse_proc_bonding(res.out) if res.rc == 0 else None


def links(vm):
    """`ip -j -d link` as {name: dict}."""
    return {link["ifname"]: link for link in json.loads(vm.run("ip -j -d link show").out)}


def addresses(vm, dev):
    data = json.loads(vm.run("ip -j addr show dev %s" % dev, check=False).out or "[]")
    return [(a["local"], a["prefixlen"]) for d in data for a in d.get("addr_info", [])
            if a.get("family") == "inet"]


def wait_for(vm, predicate, timeout, what, interval=0.5):
    """Polls predicate(vm) until true; raises with `what` when it never is."""
    t0 = time.monotonic()
    last = None
    while time.monotonic() - t0 < timeout:
        try:
            last = predicate(vm)
        except LabError as exc:
            last = exc
        if last is True:
            return time.monotonic() - t0
        time.sleep(interval)
    raise LabError("%s: %s not reached in %.0f s (last: %r)" % (vm.hostname, what, timeout, last))


def bond_complete(vm, slaves=("eth40a", "eth40b")):
    b = bond_state(vm)
    if not b:
        return "no bond0"
    up = sorted(s["name"] for s in b["slaves"] if s["mii_status"] == "up")
    return up == sorted(slaves) or "slaves up: %s" % up


def ping(vm, target, seconds, interval_ms=20, during=None, stop_after_during=False):
    """Pings target from vm for `seconds` every interval_ms; runs during()
    on the host meanwhile (and with stop_after_during, ends the ping with
    SIGINT as soon as during() returns). -> PingLoss.

    A count (-c), not a deadline (-w): at its deadline ping exits at once,
    and the request it sent last, whose reply is still on its way, counts
    as lost (a CI run lost 1 of 145 so, both ports up). With a count it
    waits for that reply."""
    pidfile = "/run/lab-ping-%d.pid" % time.monotonic_ns()
    count = max(1, round(seconds * 1000 / interval_ms))
    handle = vm.start_run("ping -n -q -i %.3f -c %d %s & echo $! > %s; wait $!"
                          % (interval_ms / 1000, count, target, pidfile), timeout=seconds + 30)
    try:
        if during:
            during()
    finally:
        if stop_after_during:
            vm.run("kill -INT $(cat %s)" % pidfile, check=False)
        res = vm.finish_run(handle, check=False)
    return parse_ping(res.out, interval_ms)


def journal_report(lab, lines=60):
    """The guests' ib40 and udev journal lines and kernel bonding messages,
    for a failing scenario's report."""
    out = []
    for vm in lab:
        out.append("===== %s: journalctl -b -u 'ib40*' -u systemd-udevd" % vm.hostname)
        out.append(vm.journal(lines=lines))
        out.append("===== %s: failed units, links, bonding messages" % vm.hostname)
        out.append(vm.journal("-b -k --no-pager -o short-monotonic --grep 'bond|eth40|ens'", lines=30))
        try:
            out.append(vm.run("systemctl --failed --no-legend --plain; ip -br link; ip -br addr",
                              check=False).out)
        except Exception as exc:
            out.append("(unavailable: %s)" % exc)
    return "\n".join(out)


WATCHED = ("eth40a", "eth40b", "bond0")


def snapshot(vm):
    """What must not change on a converged machine: link identities, slave
    failure counts, bond0's addresses."""
    bond = bond_state(vm)
    now = links(vm)
    return {
        "ifindex": {n: now[n]["ifindex"] for n in WATCHED},
        "failures": {s["name"]: s["link_failure_count"] for s in bond["slaves"]},
        "addresses": addresses(vm, "bond0"),
    }


def churn(monitor_text):
    """ip monitor lines that are a flap or churn on the watched links:
    anything deleted, or one of them seen down / without carrier."""
    bad = []
    for line in monitor_text.splitlines():
        if not any((" %s:" % n) in line or ("dev %s " % n) in line or (" %s " % n) in line for n in WATCHED):
            continue
        if line.startswith("Deleted") or "NO-CARRIER" in line or "state DOWN" in line:
            bad.append(line)
    return bad


def watch_while(vm, action, seconds=45):
    """Runs action() on the host with `ip -o monitor link address` running
    in the guest; returns the monitor's lines."""
    handle = vm.start_run("timeout %d ip -o monitor link address" % seconds, timeout=seconds + 10)
    time.sleep(1)
    t0 = time.monotonic()
    action()
    # let the monitor run out: late events must be seen too
    time.sleep(max(0, seconds - (time.monotonic() - t0) - 1))
    return vm.finish_run(handle, check=False).out
