# SPDX-License-Identifier: GPL-2.0-or-later
"""Scenario 7, second half: `apt purge ib40` leaves the system clean: no
file of the package, no generated rule, no unit, no state; only the admin's
own /etc/ib40.conf stays (README.Debian says purge keeps it)."""
import pytest

pytestmark = [pytest.mark.lab, pytest.mark.both_releases]

# Written by the lab itself, not by the package: the config, the .deb, and
# the Ansible role's own copies (test_56: the .deb it installs from and its
# candidate config), which are the role's to keep, not the package's.
OURS = {"/etc/ib40.conf", "/root/ib40.deb",
        "/var/cache/ib40-ansible", "/var/cache/ib40-ansible/ib40.deb",
        "/run/ib40-ansible", "/run/ib40-ansible/ib40.conf"}


def test_purge_leaves_nothing_behind(ib40_lab, figures):
    a = ib40_lab.a
    files = [f for f in a.run("dpkg -L ib40").out.split() if f.startswith("/")]
    a.run("DEBIAN_FRONTEND=noninteractive apt-get purge -y ib40 2>&1", timeout=300)
    assert a.run("dpkg -s ib40", check=False).rc != 0
    # directories are shared (/lib, /usr/share/doc...): files and links only
    left_files = a.run("for f in %s; do [ -d \"$f\" ] && continue; "
                       "if [ -f \"$f\" ] || [ -L \"$f\" ]; then echo \"$f\"; fi; done; true"
                       % " ".join(files)).out.split()
    found = a.run("find / -xdev \\( -path /proc -o -path /sys -o -path /var/log/journal \\) -prune -o "
                  "\\( -name '*ib40*' -o -lname '*ib40*' \\) -print; ls -d /run/ib40* 2>/dev/null; true").out.split()
    units = a.run("systemctl list-unit-files --no-legend 'ib40*'", check=False).out.strip()
    leftovers = sorted(set(left_files) | (set(found) - OURS))
    figures("purge", "A: apt purge ib40: %d package files checked, leftovers %s, unit files [%s]"
            % (len(files), leftovers or "none", units))
    assert leftovers == [], leftovers
    assert units == "", units
