# SPDX-License-Identifier: GPL-2.0-or-later
# The QEMU lab (lab/, tests/lab/): MachineA and MachineB, two Debian VMs
# cabled back to back, ib40.deb installed with apt. Needs root, qemu-system-x86,
# qemu-utils, debootstrap, e2fsprogs (.ci/run installs them).
.PHONY: lab lab-image lab-test lab-bench

# The demo: image (cached), ./ib40.deb, boot, install, configure, reboot,
# both machines' `ib40d status`.
lab: deb
	$(PYTHON) -m lab.demo ib40.deb

# Build the cached image only (lab/cache/, keyed on its package list).
lab-image:
	$(PYTHON) -m lab.image

# The seven scenarios (also part of `make test`).
lab-test:
	$(PYTEST) -v -m lab tests/lab

# Boot-to-ready-bond: ib40 vs systemd-networkd vs ifupdown+ifenslave, and
# the failover loss window against its floor. Figures, not a test.
lab-bench:
	$(PYTHON) bench/boot.py

# Three VMs in a full mesh (one /30 per cable, routes for the rest): pings
# and iperf3 between all pairs, direct and routed. Figures, not a test.
.PHONY: lab-mesh
lab-mesh: deb
	$(PYTHON) -m lab.mesh
