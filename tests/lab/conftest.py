# SPDX-License-Identifier: GPL-2.0-or-later
"""The lab's shared boots. Booting two emulated machines costs about a
minute, so one pair serves every scenario, in file order:

  lab        both machines booted from the cached image, nothing installed
  ib40_lab   the same pair after `apt install ./ib40.deb`, /etc/ib40.conf,
             `systemctl enable`, reboot

Two Debian releases: every scenario runs on $LAB_SUITE (default trixie, the
current stable), and those marked `both_releases` (boot, bond settings,
failover of one cable, hotplug, idempotence, purge) run again on the other
one, on a pair booted from that release's image with the same ib40.deb.
pytest groups the tests by release, so each pair is booted once.

Each scenario records its figures with `figures(...)`; they are printed in
the terminal summary (and on stdout with -s). A failing scenario's report
carries the guests' ib40/udev journal and bonding kernel messages.
"""
import os
import shutil
import time

import pytest

from lab import scenario
from lab.image import DEFAULT_SUITE, SUITES, build_image
from lab.vm import Lab

_FIGURES = []
_LAB = {}
OTHER_SUITES = [s for s in SUITES if s != DEFAULT_SUITE]


def pytest_generate_tests(metafunc):
    if "lab_suite" in metafunc.fixturenames:
        both = metafunc.definition.get_closest_marker("both_releases") is not None
        metafunc.parametrize("lab_suite", [DEFAULT_SUITE] + (OTHER_SUITES if both else []),
                             indirect=True, scope="session")


@pytest.fixture(scope="session")
def lab_suite(request):
    """The Debian release the lab's machines run (see the module's doc)."""
    _LAB["suite"] = request.param
    return request.param


def _missing_tools():
    need = ("qemu-system-x86_64", "qemu-img", "debootstrap", "mkfs.ext4")
    return [t for t in need if shutil.which(t) is None]


@pytest.fixture(scope="session")
def figures():
    def record(scenario_name, text):
        line = "%-8s %-12s %s" % (_LAB.get("suite", ""), scenario_name, text)
        _FIGURES.append(line)
        print("[lab] " + line)
    return record


@pytest.fixture(scope="session")
def lab_image(lab_suite, figures):
    missing = _missing_tools()
    if os.geteuid() != 0 or missing:
        reason = "the lab needs root and %s" % (", ".join(missing) or "nothing else")
        if os.environ.get("CI"):
            pytest.fail(reason + ": CI installs them, so the lab must run there")
        pytest.skip(reason)
    t0 = time.monotonic()
    path = build_image(lab_suite)
    figures("image", "ready in %.0f s (%s)" % (time.monotonic() - t0, os.path.basename(path)))
    return path


@pytest.fixture(scope="session")
def lab(lab_image, figures):
    machines = Lab(lab_image)
    _LAB["lab"] = machines
    try:
        ta, tb = machines.start()
        figures("boot", "both machines booted in parallel: A %.0f s, B %.0f s (host clock, to agent)" % (ta, tb))
        yield machines
    finally:
        machines.stop()
        for vm in machines:
            vm.kill()


@pytest.fixture(scope="session")
def ib40_lab(lab, figures):
    """ib40 installed and configured on both, rebooted, boot finished."""
    deb = scenario.ensure_deb()
    t0 = time.monotonic()

    lab.rules_missed = {}

    def setup(vm):
        scenario.install_deb(vm, deb)
        scenario.configure(vm, scenario.bond_conf(vm))
        # ib40-sync.path should have generated the naming rules from the new
        # file. When it has not (seen intermittently), the scenario for it
        # fails, and `ib40d sync` by hand lets the others test the rest.
        missed = vm.run("test -s " + scenario.NAMES_RULES, check=False).rc != 0
        lab.rules_missed[vm.key] = missed
        if missed:
            vm.run("ib40d sync", timeout=120)
    lab.parallel(setup)
    t_install = time.monotonic() - t0
    ta, tb = lab.reboot()
    lab.parallel(lambda vm: scenario.wait_running(vm))
    figures("install", "apt install + configure %.0f s; reboot to agent A %.0f s, B %.0f s"
            % (t_install, ta, tb))
    return lab


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when == "call" and rep.failed and "lab" in _LAB and (
            "lab" in item.fixturenames or "ib40_lab" in item.fixturenames):
        try:
            rep.sections.append(("guest journals", scenario.journal_report(_LAB["lab"])))
        except Exception as exc:  # the report must not hide the failure
            rep.sections.append(("guest journals", "unavailable: %s" % exc))


def pytest_terminal_summary(terminalreporter):
    if _FIGURES:
        terminalreporter.section("lab figures")
        for line in _FIGURES:
            terminalreporter.write_line(line)
