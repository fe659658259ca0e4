# SPDX-License-Identifier: GPL-2.0-or-later
# Debian's python3: the tests run against bookworm's python3-pyroute2 & co,
# the same versions the package depends on.
PYTHON ?= /usr/bin/python3
PYTEST = $(PYTHON) -m pytest

.PHONY: deps lint test test-pure test-netns bench

# What building, testing and the lab need on Debian bookworm (as root).
# Run-time dependencies are Debian's own python3-* packages, the versions the
# .deb depends on.
DEPS = python3 python3-pytest python3-hypothesis python3-setuptools python3-all \
	python3-pyroute2 python3-pyudev python3-pystemd python3-sdnotify python3-yaml \
	iproute2 iperf3 kmod udev systemd procps pyflakes3 \
	build-essential debhelper dh-python fakeroot lintian dpkg-dev \
	qemu-system-x86 qemu-utils debootstrap e2fsprogs linux-image-amd64 \
	debian-archive-keyring ca-certificates \
	ansible-core openssh-client

deps:
	apt-get update
	DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends $(DEPS)

# pyflakes (Debian's pyflakes3: unused imports and variables, undefined
# names) on every Python file of ours, python3 scripts without .py included.
# lab/cache and lab/run hold the guests' trees, which are not our code.
PYFLAKES ?= pyflakes3
LINT_PATHS = ib40d tests bench $(filter-out lab/cache lab/run,$(wildcard lab/*))

lint:
	$(PYFLAKES) $(LINT_PATHS)

# The tests, by folder (README.md, "Tests, in layers"): tests/unit (pure
# code), tests/fake (fake machines: sysfs trees, fake tools and netlink),
# tests/kernel (network namespaces: root), tests/package (the .deb),
# tests/lab (the QEMU lab). A test's folder is its layer.
PURE_TESTS = tests/unit tests/fake

# Everything: lint, then every folder in that order.
test: lint
	$(PYTEST) -v tests/unit tests/fake tests/kernel tests/package tests/lab

# What the package build runs (debian/rules): no root, no network
# namespaces, no QEMU.
test-pure:
	$(PYTEST) $(PURE_TESTS)

test-netns:
	$(PYTEST) -v tests/kernel

# CLI start-up figures (status, check, plan vs `import pyroute2`); with
# AGAINST=TREE (another checkout) the same commands run alternately on both.
bench:
	$(PYTHON) bench/cli.py $(if $(AGAINST),--against $(AGAINST))

-include mk/*.mk
