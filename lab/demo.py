# SPDX-License-Identifier: GPL-2.0-or-later
"""`make lab`: the newcomer's demo. Boots MachineA and MachineB (two cables),
installs ib40.deb with apt in both, writes /etc/ib40.conf, enables the
units, reboots, and prints both machines' `ib40d status`.

    python3 -m lab.demo [path/to/ib40.deb] [--keep]

--keep leaves both machines running (monitor and agent sockets under
lab/run/demo/) until Enter is pressed.
"""
import os
import sys
import time

from . import scenario
from .image import build_image
from .vm import RUN, Lab


def say(msg):
    print("==> " + msg, flush=True)


def main(argv):
    keep = "--keep" in argv
    args = [a for a in argv if a != "--keep"]
    deb = os.path.abspath(args[0]) if args else scenario.ensure_deb()
    t0 = time.monotonic()
    say("image (cached under lab/cache/ after the first run)")
    image = build_image()
    lab = Lab(image, os.path.join(RUN, "demo"))
    try:
        say("booting MachineA and MachineB (software emulation: about a minute)")
        lab.start()
        say("apt install ./ib40.deb; /etc/ib40.conf; ib40d check; ib40d plan; systemctl enable")
        plans = lab.parallel(lambda vm: (scenario.install_deb(vm, deb),
                                         scenario.configure(vm, scenario.bond_conf(vm)))[1])
        for vm, plan in zip(lab, plans):
            print("--- %s: ib40d plan\n%s" % (vm.hostname, plan.rstrip()))
            print("--- %s: /etc/ib40.conf\n%s" % (vm.hostname, vm.run("cat /etc/ib40.conf").out.rstrip()))
        say("reboot")
        lab.reboot()
        lab.parallel(lambda vm: scenario.wait_running(vm))
        for vm in lab:
            print("--- %s: ib40d status" % vm.hostname)
            print(vm.run("ib40d status", check=False).out.rstrip())
        loss = scenario.ping(lab.a, lab.b.address, 3, 50)
        print("--- ping machinea -> machineb over bond0: %s" % loss)
        say("done in %.0f s" % (time.monotonic() - t0))
        if keep:
            input("machines running (lab/run/demo/); Enter stops them ")
    finally:
        lab.stop()
        for vm in lab:
            vm.kill()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
