# SPDX-License-Identifier: GPL-2.0-or-later
"""Boot-to-ready-bond in the lab: the same image, topology and pair of
machines with bond0 made three ways, what ib40's boot costs in CPU and what
its daemon keeps resident, and the failover loss window against its floor.

    python3 bench/boot.py [--runs N] [--only networkd,ifupdown,import-at-boot,ib40-before,ib40]
                          [--deb-before OLD.deb] [--no-failover]

One pair of machines is booted once. The ways take turns, one reboot each
per run: a way is set up on both machines (networkd: .link/.netdev/.network
+ enable systemd-networkd; ifupdown: the HOWTO's udev rules and
/etc/network/interfaces stanzas; ib40: apt install ./ib40.deb +
/etc/ib40.conf + enable), both reboot and are measured, and it is taken away
(ib40: dpkg --purge) before the next way's turn. The order turns by one each
run, so with N ways and N runs each way boots once in each place. With
--deb-before, "ib40-before" (that .deb) is one more way: before and after
are measured in one run under the same drift.

Each reboot is one measurement on each machine: the uptime at which bond0
was first ready (address, both slaves, operstate up; seen by the guest
agent from early in boot, as the kernel announces each change), systemd's FinishTimestampMonotonic
and UserspaceTimestampMonotonic (bond0 is also given from that start of
systemd in the root file system: the kernel and initramfs before it vary
by seconds between boots of the same image, and no way runs there), and
for ib40 the CPU of each of its units (systemd's CPUUsageNSec: the
daemon, its forked children and every Python process a unit started, read
once udev has handled every event of the boot: the ports' link units can
start after the boot has finished) and the daemon's VmRSS once the boot is
over; for networkd, its VmRSS. The
reference, one `python3 -c 'import pyroute2'` (CPU of the process), is
measured in the same guests. Figures, not a test: under software emulation
they move with the host's load.

Under emulation a boot's CPU is not an idle guest's: the guest clock runs on
while QEMU translates code run for the first time and while the other
machine's boot takes the host's CPU, and the guest charges that time to
whatever process it was running. So the reference is taken three ways:
after boot, in an idle guest (as the issue took it); "import-at-boot", its
own boots in which a oneshot unit runs `python3 -c 'import pyroute2'` at
ib40d.service's place in the boot (its ordering, both machines booting);
and ib40d.service's own CPU on a restart after boot with bond0 deleted
first (the boot's work again, in the idle guest).
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lab import guestconf, scenario  # noqa: E402
from lab.image import DEFAULT_SUITE, build_image  # noqa: E402
from lab.vm import RUN, Lab  # noqa: E402

WAYS = ("networkd", "ifupdown", "import-at-boot", "ib40")
# The reference taken at boot: where ib40d.service starts (its ordering:
# ib40d.service says why each line), one Python process importing pyroute2.
PROBE_UNIT = "lab-import-pyroute2.service"
PROBE_UNIT_TEXT = """\
[Unit]
Description=lab: one import pyroute2 at ib40d.service's place in the boot
# ib40d.service's own ordering, so it runs at the same point of the boot
DefaultDependencies=no
After=systemd-udevd.service systemd-sysctl.service network-pre.target
Before=network.target multi-user.target shutdown.target
Conflicts=shutdown.target
[Service]
# one process; its CPU is read from CPUUsageNSec once the boot is over
Type=oneshot
RemainAfterExit=yes
ExecStart=/usr/bin/python3 -c "import pyroute2"
[Install]
WantedBy=multi-user.target
"""
TARGETS = {"networkd": 1.0, "ifupdown": 0.8}  # bond0 ready, ib40 / other
CPU_TARGET = 1.5  # a boot's ib40 units / one `import pyroute2`
RSS_TARGET_MB = 20.0
# The CPU of one Python process running CODE, as its parent sees it.
CHILD_CPU = ("import resource, subprocess, sys; subprocess.run([sys.executable, '-c', %r]);"
             "r = resource.getrusage(resource.RUSAGE_CHILDREN); print(r.ru_utime + r.ru_stime)")


def put_files(vm, files):
    for path, text in files.items():
        vm.run("mkdir -p %s" % os.path.dirname(path))
        vm.put(path, text)


def setup(way, vm, deb):
    if way == "import-at-boot":
        put_files(vm, {"/etc/systemd/system/" + PROBE_UNIT: PROBE_UNIT_TEXT})
        vm.run(["systemctl", "enable", PROBE_UNIT])
        return
    if way.startswith("ib40"):
        scenario.install_deb(vm, deb)  # on a machine it was purged from (teardown)
        scenario.configure(vm, scenario.bond_conf(vm))
        return
    if way == "networkd":
        put_files(vm, guestconf.networkd_files(vm.macs, vm.address))
        vm.run("systemctl enable systemd-networkd.service")
    else:
        vm.run("cp -n /etc/network/interfaces /root/interfaces.image 2>/dev/null || : > /root/interfaces.image")
        put_files(vm, guestconf.ifupdown_files(vm.macs, vm.address))


def teardown(way, vm):
    """Takes a way's configuration away before the next way's."""
    if way == "import-at-boot":
        vm.run(["systemctl", "disable", PROBE_UNIT])
        vm.run(["rm", "-f", "/etc/systemd/system/" + PROBE_UNIT])
    elif way == "networkd":
        vm.run("systemctl disable systemd-networkd.service systemd-networkd.socket")
        vm.run(["rm", "-f", *guestconf.networkd_files(vm.macs, vm.address)])
    elif way == "ifupdown":
        files = guestconf.ifupdown_files(vm.macs, vm.address)
        vm.run(["rm", "-f", *[p for p in files if p != "/etc/network/interfaces"]])
        vm.run("cp /root/interfaces.image /etc/network/interfaces")
    elif way.startswith("ib40"):
        # Purged: its names rules, units and hooks go with it (debian/postrm),
        # so the next way boots as if ib40 had never been installed.
        vm.run("DEBIAN_FRONTEND=noninteractive dpkg --purge ib40 && rm -f /etc/ib40.conf", timeout=300)


def measure(vm):
    """-> (uptime bond0 was ready, or None if not within 120 s of asking;
    uptime the boot finished; uptime udev had named both
    ports, or None; uptime systemd started in the root file system; the
    lab agent's CPU seconds when bond0 was ready)."""
    # One request that the agent answers once bond0 is ready: polling it
    # would take the guest's CPU from the boot being measured.
    ready = vm.bondready(wait=120)["ready_at"]
    if ready is None:  # seen with ifupdown's hotplug stanzas: a failed boot, not the end
        print("  %s: bond0 not ready within 120 s" % vm.hostname, flush=True)
    agent_cpu = unit_cpu(vm, "lab-agent.service")  # the instrument's share of the boot so far
    scenario.wait_running(vm)
    stamps = dict(line.split("=", 1) for line in vm.run(
        "systemctl show -p FinishTimestampMonotonic -p UserspaceTimestampMonotonic").out.split())
    return (ready, int(stamps["FinishTimestampMonotonic"]) / 1e6, ports_named(vm),
            int(stamps["UserspaceTimestampMonotonic"]) / 1e6, agent_cpu)


def ports_named(vm):
    """The uptime at which udev had given both ports their names (the
    kernel's "eth40a: renamed from ens4"), all three ways alike: no way can
    enslave a port before, so it is the floor under bond0-ready."""
    out = vm.run("journalctl -b -k -o short-monotonic --no-pager | grep -E 'eth40[ab]: renamed from'",
                 check=False).out
    times = {}
    for line in out.splitlines():
        # "[   29.524411] machinea kernel: virtio_net virtio2 eth40a: renamed from ens4"
        if line.startswith("[") and "]" in line:
            name = next((w.rstrip(":") for w in line.split() if w.startswith("eth40")), None)
            times[name] = float(line[1:line.index("]")])
    return max(times.values()) if len(times) == 2 else None


def seconds(value):
    return "%.1f s" % value if value is not None else "NOT READY"


def rss_mb(vm, unit):
    pid = vm.run(["systemctl", "show", "-P", "MainPID", unit]).out.strip()
    if pid in ("", "0"):
        return None
    for line in vm.run(["cat", "/proc/%s/status" % pid], check=False).out.splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return None


def wait_quiet(vm):
    """Until udev has handled every event of the boot and systemd has no job
    left: the link units are pulled in by the ports' udev events, which can
    end after the boot has finished (udev's coldplug is slow under
    emulation), and their CPU belongs to the boot's."""
    vm.run("udevadm settle --timeout=120; for i in $(seq 600); do "
           "[ -z \"$(systemctl list-jobs --no-legend)\" ] && break; sleep 0.2; done", timeout=300)


def ib40_units(vm):
    """{unit: (CPU seconds, whether its main process ran)} for every ib40
    service of this boot (once the boot is quiet: wait_quiet)."""
    wait_quiet(vm)
    names = vm.run("systemctl list-units --all --plain --no-legend 'ib40*' | awk '{print $1}'").out.split()
    out = {}
    for unit in names:
        if not unit.endswith(".service"):
            continue
        started = vm.run(["systemctl", "show", "-P", "ExecMainStartTimestampMonotonic", unit]).out
        out[unit] = (unit_cpu(vm, unit) or 0.0, started.strip() not in ("", "0"))
    return out


def unit_cpu(vm, unit):
    """UNIT's CPUUsageNSec in seconds (None: no accounting)."""
    ns = vm.run(["systemctl", "show", "-P", "CPUUsageNSec", unit]).out.strip()
    return int(ns) / 1e9 if ns.isdigit() and int(ns) < 2**63 else None


def restart_cpu(vm, runs=3):
    """ib40d.service's CPU when it makes bond0 again after boot: bond0
    deleted, the daemon restarted (Type=notify: done once READY=1), its
    CPUUsageNSec read. The boot's work, in an idle guest. -> median s"""
    samples = []
    for _ in range(runs):
        # Stopped first: a running daemon would see bond0 go and make it again.
        vm.run("systemctl stop ib40d.service && ip link del bond0")
        vm.run("systemctl start ib40d.service", timeout=120)
        scenario.wait_for(vm, scenario.bond_complete, 30, "bond0 whole again")
        samples.append(unit_cpu(vm, "ib40d.service"))
    return statistics.median(samples)


def child_cpu(vm, code, runs=3):
    return statistics.median(float(vm.run(["python3", "-c", CHILD_CPU % code]).out.strip())
                             for _ in range(runs))


def failover(lab, pulls=3):
    """Scenario 3's first case, repeated: cable 1 off at both ends for 5 s
    under a 20 ms ping. -> [lost ms]"""
    out = []
    for _ in range(pulls):
        def during():
            time.sleep(3)
            lab.set_cable(1, False, False)
            time.sleep(5)
            lab.set_cable(1, True, True)
        loss = scenario.ping(lab.a, lab.b.address, 14, 20, during=during)
        out.append(loss)
        for vm in lab:
            scenario.wait_for(vm, scenario.bond_complete, 15, "bond whole again")
    return out


def run_way(lab, way, deb, runs, first=0):
    """-> list of per-boot records, one per machine and reboot (runs
    numbered from FIRST)."""
    lab.parallel(lambda vm: setup(way, vm, deb))
    records = []
    for run in range(first, first + runs):
        lab.reboot()
        if way == "import-at-boot":
            lab.parallel(scenario.wait_running)
            cpus = [unit_cpu(vm, PROBE_UNIT) for vm in lab]
            records.extend({"cpu": c} for c in cpus)
            print("%-14s run %d: CPU A %.2f s  B %.2f s" % (way, run + 1, *cpus), flush=True)
            continue
        (ra, fa, na, ua, ca), (rb, fb, nb, ub, cb) = lab.parallel(measure)
        for vm, ready, fin, named, userspace, agent_cpu in ((lab.a, ra, fa, na, ua, ca),
                                                            (lab.b, rb, fb, nb, ub, cb)):
            rec = {"ready": ready, "finished": fin, "named": named, "userspace": userspace,
                   "agent_cpu": agent_cpu}
            if way.startswith("ib40"):
                rec["units"] = ib40_units(vm)
                rec["rss"] = rss_mb(vm, "ib40d.service")
                if run == 0:
                    # What each link unit did this boot: took the daemon's mark, or asked.
                    print(vm.run("journalctl -b -o short-monotonic --no-pager -u ib40d.service "
                                 "-u 'ib40-link@*' | tail -n 30; ls -l /run/ib40 /run/ib40/configured",
                                 check=False).out, flush=True)
            elif way == "networkd":
                rec["rss"] = rss_mb(vm, "systemd-networkd.service")
            records.append(rec)
        extra = ""
        if way.startswith("ib40"):
            extra = " | CPU A %.2f s  B %.2f s | ib40d RSS A %.1f MB  B %.1f MB" % (
                sum(c for c, _ in records[-2]["units"].values()),
                sum(c for c, _ in records[-1]["units"].values()),
                records[-2]["rss"] or -1, records[-1]["rss"] or -1)
        elif way == "networkd":
            extra = " | networkd RSS A %.1f MB  B %.1f MB" % (records[-2]["rss"] or -1, records[-1]["rss"] or -1)
        print("%-12s run %d: bond0 ready A %s  B %s | ports named A %s  B %s | boot finished A %.1f s  B %.1f s%s"
              % (way, run + 1, seconds(ra), seconds(rb), seconds(na), seconds(nb), fa, fb, extra), flush=True)
    return records


def report(results, reference, suite, runs):
    print("\n%s: uptime at which bond0 is ready / boot finished (median of %d boots x 2 machines)"
          % (suite, runs))
    med = {}
    for way, rows in results.items():
        if way == "import-at-boot":
            continue
        ready = [r["ready"] for r in rows if r["ready"] is not None]
        failed = len(rows) - len(ready)
        if not ready:
            print("  %-12s bond0 never ready" % way)
            continue
        med[way] = statistics.median(ready)
        print("  %-12s ready %5.1f s (min %.1f, max %.1f)   finished %5.1f s%s"
              % (way, med[way], min(ready), max(ready), statistics.median(r["finished"] for r in rows),
                 "   (%d of %d boots: bond0 not ready within 120 s, left out)" % (failed, len(rows))
                 if failed else ""))
    for ib40 in [w for w in results if w.startswith("ib40")]:
        for other, target in TARGETS.items():
            if other in med:
                ratio = med[ib40] / med[other]
                print("  %s / %-9s = %.2f (target <= %.1f: %s)"
                      % (ib40, other, ratio, target, "met" if ratio <= target else "NOT met"))
    # The same boots from the start of systemd in the root file system: the
    # kernel's and the initramfs's time, which no way touches, varies by
    # seconds between boots of the same image (seen on trixie: systemd's
    # -.slice at 7.1 s in the first boot after a `dpkg -i`, 4.2-5.2 s in
    # the boots around it).
    print("  from the start of userspace (systemd in the root file system) to bond0 ready:")
    since = {}
    for way, rows in results.items():
        values = [r["ready"] - r["userspace"] for r in rows if r.get("ready") is not None and r.get("userspace")]
        if values:
            since[way] = statistics.median(values)
            print("    %-12s %5.1f s (min %.1f, max %.1f)" % (way, since[way], min(values), max(values)))
    for ib40 in [w for w in results if w.startswith("ib40") and w in since]:
        for other, target in TARGETS.items():
            if other in since:
                ratio = since[ib40] / since[other]
                print("  %s / %-9s = %.2f from userspace's start (target <= %.1f: %s)"
                      % (ib40, other, ratio, target, "met" if ratio <= target else "NOT met"))
    # The instrument: the guest agent is a Python process running from early
    # in boot, so its CPU is taken from the boot it measures.
    agent = [r["agent_cpu"] for rows in results.values() for r in rows if r.get("agent_cpu") is not None]
    if agent:
        print("  the lab agent's own CPU by the time bond0 was ready: %.2f s (median of all boots)"
              % statistics.median(agent))
    # The floor: udev names the ports for every way alike, and none can
    # enslave a port before. What a way adds is bond0-ready minus that.
    print("  after udev had named both ports (median of the same boots):")
    named = {}
    for way, rows in results.items():
        after = [r["ready"] - r["named"] for r in rows if r.get("ready") is not None and r.get("named") is not None]
        if after:
            named[way] = statistics.median(r["named"] for r in rows if r.get("named") is not None)
            print("    %-12s ports named at %5.1f s, bond0 ready %.2f s later" % (way, named[way], statistics.median(after)))
    for ib40 in [w for w in results if w.startswith("ib40") and w in named]:
        for other in [o for o in TARGETS if o in med]:
            print("  %s at its floor (bond0 ready as udev names the ports) / %s = %.2f"
                  % (ib40, other, named[ib40] / med[other]))
    if reference:
        print("\nCPU in the same guests (median over machines and runs of each):")
        for name, value in reference.items():
            print("  %-40s %.2f s" % (name, value))
        ref = reference["python3 -c 'import pyroute2'"]
        at_boot = reference.get("python3 -c 'import pyroute2' at boot (import-at-boot)")
        for ib40 in [w for w in results if w.startswith("ib40")]:
            rows = results[ib40]
            total = statistics.median(sum(c for c, _ in r["units"].values()) for r in rows)
            print("  %s: ib40 units %.2f s CPU per boot = %.2fx one `import pyroute2` after boot (target <= %.1fx: %s)"
                  % (ib40, total, total / ref, CPU_TARGET, "met" if total / ref <= CPU_TARGET else "NOT met"))
            if at_boot:
                print("  %s: ib40 units %.2f s CPU per boot = %.2fx one `import pyroute2` at the same place of a boot"
                      " (target <= %.1fx: %s)" % (ib40, total, total / at_boot, CPU_TARGET,
                                                  "met" if total / at_boot <= CPU_TARGET else "NOT met"))
            restart = reference.get("%s: ib40d.service restarted after boot, bond0 made again" % ib40)
            if restart:
                print("  %s: ib40d.service restarted after boot %.2f s = %.2fx one `import pyroute2` after boot"
                      % (ib40, restart, restart / ref))
            units = sorted({u for r in rows for u in r["units"]})
            started = [u for u in units if all(r["units"].get(u, (0, False))[1] for r in rows)]
            # ib40d.service runs Python; a link unit that took the daemon's mark ran
            # only its shell (its journal says "configured by ib40d.service").
            print("    units whose main process ran in every boot: %d (%s)" % (len(started), ", ".join(started)))
            for unit in units:
                cpu = statistics.median(r["units"].get(unit, (0.0, False))[0] for r in rows)
                ran = sum(r["units"].get(unit, (0, False))[1] for r in rows)
                print("    %-32s %.2f s  (main process ran in %d of %d boots)" % (unit, cpu, ran, len(rows)))
    print("\nresident memory after boot (VmRSS, median):")
    for way, rows in results.items():
        values = [r["rss"] for r in rows if r.get("rss")]
        if values:
            rss = statistics.median(values)
            who = "systemd-networkd" if way == "networkd" else "%s daemon (ib40d)" % way
            verdict = "" if way == "networkd" else " (target <= %.0f MB: %s)" % (
                RSS_TARGET_MB, "met" if rss <= RSS_TARGET_MB else "NOT met")
            print("  %-28s %5.1f MB%s" % (who, rss, verdict))


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default=",".join(WAYS))
    ap.add_argument("--deb", default=None, help="ib40.deb to install (default: make deb)")
    ap.add_argument("--deb-before", default=None,
                    help="an older ib40.deb, measured as 'ib40-before' before --deb is installed over it")
    ap.add_argument("--no-failover", action="store_true", help="skip the failover loss window")
    args = ap.parse_args()
    ways = args.only.split(",")
    debs = {"ib40": args.deb or scenario.ensure_deb()} if "ib40" in ways else {}
    if args.deb_before:
        debs["ib40-before"] = args.deb_before
        if "ib40-before" not in ways:
            ways.insert(ways.index("ib40") if "ib40" in ways else len(ways), "ib40-before")
    elif "ib40-before" in ways:
        ap.error("ib40-before needs --deb-before")
    image = build_image()
    results, reference = {}, {}
    loss_windows = []
    t0 = time.monotonic()
    lab = Lab(image, os.path.join(RUN, "bench"))
    try:
        lab.start()
        builds = [w for w in ways if w.startswith("ib40")]
        restarts = {build: [] for build in builds}
        # The ways take turns, one reboot each, set up before it and taken
        # away after it, so that whatever drifts along a run (the host's
        # load, the guests' disks) falls on all alike, and every boot is the
        # first after its way was set up. The order turns by one every run,
        # so each way boots in each place of the round: with one build in
        # two places, the boots in the second place reached bond0 7 s later
        # by uptime (all of it before systemd's start in the root file
        # system) and cost 0.45 s less CPU (trixie, 2 x 2 boots each).
        for run in range(args.runs):
            turn = run % len(ways)
            for way in ways[turn:] + ways[:turn]:
                results.setdefault(way, []).extend(run_way(lab, way, debs.get(way), 1, run))
                if way in builds:
                    restarts[way].extend(lab.parallel(lambda vm: restart_cpu(vm, runs=1)))
                    if run == args.runs - 1 and way == builds[-1]:
                        # The references, in the same guests, with ib40 installed.
                        reference["python3 -c 'import pyroute2'"] = statistics.median(
                            lab.parallel(lambda vm: child_cpu(vm, "import pyroute2")))
                        reference["python3 -c pass"] = statistics.median(
                            lab.parallel(lambda vm: child_cpu(vm, "pass")))
                        reference["python3 -c 'import ib40d.system.pyroute2_lean'"] = statistics.median(
                            lab.parallel(lambda vm: child_cpu(vm, "import ib40d.system.pyroute2_lean")))
                        if way == "ib40" and not args.no_failover:
                            loss_windows = failover(lab)
                lab.parallel(lambda vm: teardown(way, vm))
        for build in builds:
            reference["%s: ib40d.service restarted after boot, bond0 made again" % build] = \
                statistics.median(restarts[build])
        if "import-at-boot" in results:
            reference["python3 -c 'import pyroute2' at boot (import-at-boot)"] = statistics.median(
                r["cpu"] for r in results["import-at-boot"] if r["cpu"] is not None)
    finally:
        lab.stop()
        for vm in lab:
            vm.kill()

    report(results, reference, DEFAULT_SUITE, args.runs)
    if loss_windows:
        print("\nfailover (cable 1 off at both ends, ping every 20 ms): floor miimon 100 + downdelay 200 = 300 ms")
        for loss in loss_windows:
            print("  %s -> %.1fx the floor" % (loss, loss.lost_ms / 300.0))
    print("\n(%s, %.0f s in all)" % (DEFAULT_SUITE, time.monotonic() - t0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
