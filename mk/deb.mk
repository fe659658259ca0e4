# SPDX-License-Identifier: GPL-2.0-or-later
# The Debian package and the checks on what it ships. Included by the
# top-level Makefile; also usable alone: make -f mk/deb.mk deb
PYTHON ?= /usr/bin/python3
# Not build/: the build starts with `debian/rules clean`, which removes it.
DEB_OUT := debian/out

.PHONY: deb verify-units sysctl-file schema-docs

# dpkg-buildpackage writes its results to ..; send them to debian/out instead
# (the .deb through debian/rules' IB40_DEB_DESTDIR, the .buildinfo and
# .changes through their own options), then copy the .deb to ./ib40.deb so
# `apt install ./ib40.deb` works as written.
# PATH is Debian's own: a python3 from pyenv or a venv earlier on PATH has
# none of the python3-* packages the build-time tests import.
deb:
	rm -rf $(DEB_OUT) && mkdir -p $(DEB_OUT)
	PATH=/usr/sbin:/usr/bin:/sbin:/bin IB40_DEB_DESTDIR=$(CURDIR)/$(DEB_OUT) dpkg-buildpackage -us -uc -b \
	    --buildinfo-option=-u$(CURDIR)/$(DEB_OUT) --buildinfo-file=$(CURDIR)/$(DEB_OUT)/ib40.buildinfo \
	    --changes-option=-u$(CURDIR)/$(DEB_OUT) --changes-file=$(CURDIR)/$(DEB_OUT)/ib40.changes
	cp $(DEB_OUT)/ib40_*_all.deb ib40.deb
	# Leave the tree as it was: no .pybuild/, debian/ib40/, debhelper logs.
	PATH=/usr/sbin:/usr/bin:/sbin:/bin debian/rules clean >/dev/null
	@echo "built ./ib40.deb"

# systemd-analyze verify on every shipped unit (tests/fake/test_units.py says how
# and why; any output is a failure).
verify-units:
	$(PYTHON) -m pytest -p no:cacheprovider -q tests/fake/test_units.py

# The shipped sysctl.d file is generated from ib40d/core/tuning.py; a test fails
# when they disagree, and this target regenerates it.
sysctl-file:
	$(PYTHON) -c 'from ib40d.core.tuning import sysctl_d_text; print(sysctl_d_text(), end="")' > sysctl/60-ib40.conf

# ib40.conf(5) and README.md's key table are generated from ib40d/core/schema.py;
# tests/fake/test_schema.py fails when they disagree, and this target regenerates
# both.
schema-docs:
	$(PYTHON) -m ib40d.commands.schema_docs --man > debian/ib40.conf.5
	$(PYTHON) -m ib40d.commands.schema_docs --readme README.md
