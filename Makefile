# SPDX-License-Identifier: GPL-2.0-or-later
# Debian's python3: the tests run against bookworm's python3-pyroute2 & co,
# the same versions the package depends on.
PYTHON ?= /usr/bin/python3
PYTEST = $(PYTHON) -m pytest

.PHONY: test test-pure test-netns bench example

# Everything: pure, fake-system, real-kernel (netns, needs root), the .deb,
# and the QEMU lab.
test:
	$(PYTEST) -v tests

# What the package build runs: no root, no network namespaces, no QEMU.
test-pure:
	$(PYTEST) -m "not netns and not lab and not deb" tests

test-netns:
	$(PYTEST) -v -m netns tests

# CLI start-up figures (status, check, plan vs `import pyroute2`).
bench:
	$(PYTHON) bench/cli.py

# Until a card or the lab is at hand: plan the bundled example against the
# bundled fake machine.
example:
	$(PYTHON) -m ib40d plan --root examples/fake-root -c examples/ib40.conf || test $$? = 1

-include mk/*.mk
