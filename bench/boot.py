# SPDX-License-Identifier: GPL-2.0-or-later
"""Boot-to-ready-bond in the lab: the same image and topology with bond0
made three ways, and the failover loss window against its floor.

    python3 bench/boot.py [--runs N] [--only ib40,networkd,ifupdown]

For each way: boot both machines, set it up (ib40: apt install ./ib40.deb +
/etc/ib40.conf + enable; networkd: .link/.netdev/.network + enable
systemd-networkd; ifupdown: the HOWTO's udev rules and /etc/network/
interfaces stanzas), then reboot N times. Each reboot is one measurement on
each machine: the uptime at which bond0 was first ready (address, both
slaves, operstate up; polled every 50 ms by the guest agent from early in
boot) and systemd's FinishTimestampMonotonic (boot finished). Figures, not
a test: under software emulation they move with the host's load.
"""
import argparse
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from lab import guestconf, scenario  # noqa: E402
from lab.image import build_image  # noqa: E402
from lab.vm import RUN, Lab  # noqa: E402

WAYS = ("ib40", "networkd", "ifupdown")


def setup(way, vm, deb):
    if way == "ib40":
        scenario.install_deb(vm, deb)
        scenario.configure(vm, scenario.bond_conf(vm))
        return
    if way == "networkd":
        files = guestconf.networkd_files(vm.macs, vm.address)
        enable = "systemctl enable systemd-networkd.service"
    else:
        files = guestconf.ifupdown_files(vm.macs, vm.address)
        enable = "true"
    for path, text in files.items():
        vm.run("mkdir -p %s" % os.path.dirname(path))
        vm.put(path, text)
    vm.run(enable)


def measure(vm):
    scenario.wait_for(vm, lambda v: v.bondready()["ready_at"] is not None or "not ready", 120,
                      "bond0 ready")
    ready = vm.bondready()["ready_at"]
    scenario.wait_running(vm)
    finished = int(vm.run("systemctl show -P FinishTimestampMonotonic").out.strip()) / 1e6
    return ready, finished


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


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--only", default=",".join(WAYS))
    ap.add_argument("--deb", default=None, help="ib40.deb to install (default: make deb)")
    args = ap.parse_args()
    ways = args.only.split(",")
    deb = args.deb or (scenario.ensure_deb() if "ib40" in ways else None)
    image = build_image()
    results = {}
    loss_windows = []
    for way in ways:
        lab = Lab(image, os.path.join(RUN, "bench"))
        try:
            lab.start()
            lab.parallel(lambda vm: setup(way, vm, deb))
            rows = []
            for run in range(args.runs):
                lab.reboot()
                (ra, fa), (rb, fb) = lab.parallel(measure)
                rows.append((ra, fa, rb, fb))
                print("%-9s run %d: bond0 ready A %.1f s  B %.1f s | boot finished A %.1f s  B %.1f s"
                      % (way, run + 1, ra, rb, fa, fb), flush=True)
            results[way] = rows
            if way == "ib40":
                loss_windows = failover(lab)
        finally:
            lab.stop()
            for vm in lab:
                vm.kill()

    print("\nuptime at which bond0 is ready / boot finished (median of %d runs x 2 machines)" % args.runs)
    med = {}
    for way, rows in results.items():
        ready = [r[0] for r in rows] + [r[2] for r in rows]
        fin = [r[1] for r in rows] + [r[3] for r in rows]
        med[way] = statistics.median(ready)
        print("  %-9s ready %5.1f s (min %.1f, max %.1f)   finished %5.1f s"
              % (way, med[way], min(ready), max(ready), statistics.median(fin)))
    if "ib40" in med:
        for other, target in (("networkd", 1.0), ("ifupdown", 0.8)):
            if other in med:
                ratio = med["ib40"] / med[other]
                print("  ib40 / %-9s = %.2f (target <= %.1f: %s)"
                      % (other, ratio, target, "met" if ratio <= target else "NOT met"))
    if loss_windows:
        print("\nfailover (cable 1 off at both ends, ping every 20 ms): floor miimon 100 + downdelay 200 = 300 ms")
        for loss in loss_windows:
            print("  %s -> %.1fx the floor" % (loss, loss.lost_ms / 300.0))
    return 0


if __name__ == "__main__":
    sys.exit(main())
