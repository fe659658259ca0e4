# SPDX-License-Identifier: GPL-2.0-or-later
"""`ib40d try` rolled back on an IPoIB machine, on the recording fake (no
machine here has IPoIB, so the kernel cannot make a P_Key child in a netns):
the trial runs in-process, its netlink is the fake and its root a tmp tree."""

import signal

import pytest

from fakenl import FakeRoot
from test_sriov import ZERO, pf_with_vfs

from ib40d.commands import try_
from ib40d.core.config import parse_text
from ib40d.system import netlink
from ib40d.system.apply_engine import converge
from ib40d.system.observe import CHILDREN_FILE

# the configuration in force: ib0 and a P_Key child ib40 made
RUNNING = ("[ipoib ib0]\nmode = datagram\nmtu = 4092\n"
           "[ipoib ib0.8001]\nparent = ib0\npkey = 0x0001\nmode = connected\nmtu = 65520\n"
           "address = 10.40.0.1/24\n[partition storage]\npkey = 0x0001\n")
# the trial: no child, and GUIDs for the card's VFs
TRIED = "[card]\nvfs = 4\n[ipoib ib0]\nmode = datagram\nmtu = 4092\n"


@pytest.fixture
def handlers():
    """The trial installs its own SIGINT/SIGTERM/SIGHUP handlers."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def unconfirmed_trial(tmp_path, monkeypatch, shown):
    nl = pf_with_vfs(shown=shown)
    root = FakeRoot(tmp_path, nl)
    etc = tmp_path / "etc/ib40.conf"
    etc.parent.mkdir()
    etc.write_text(RUNNING)
    assert converge(parse_text(RUNNING), nl, root).ok
    tried = tmp_path / "tried.conf"
    tried.write_text(TRIED)
    monkeypatch.setattr(netlink, "Netlink", lambda: nl)
    trial = try_.Trial(root, parse_text(TRIED), str(tried), str(etc), False, 0.05)
    assert trial.run({"ib0", "ib0.8001"}) == 1
    return nl, trial.out.lines


def test_a_p_key_child_the_trial_deleted_is_made_again_and_vf_guids_come_back(tmp_path, monkeypatch, handlers):
    nl, lines = unconfirmed_trial(tmp_path, monkeypatch, shown=True)
    assert ("delete_link", "ib0.8001", None) in nl.calls  # the trial did delete it
    child = nl.links["ib0.8001"]
    assert (child.parent, child.pkey, child.ipoib_mode, child.mtu, child.admin_up) == (
        "ib0", 0x8001, "connected", 65520, True)
    assert [a.cidr for a in child.addresses] == ["10.40.0.1/24"]
    assert (tmp_path / CHILDREN_FILE.lstrip("/")).read_text() == "ib0.8001\n"  # still ib40's
    assert [(v.node_guid, v.port_guid) for v in nl.links["ib0"].vfs] == [(ZERO, ZERO)] * 4
    assert "restored: ipoib.create ib0.8001: pkey (none) -> 0x8001 on ib0 (deleted during the trial)" in lines
    assert not any("cannot be put back" in line for line in lines), lines
    assert lines[-1].startswith("ib40d try: rolled back;")


def test_vf_guids_the_kernel_does_not_show_are_said_to_be_left(tmp_path, monkeypatch, handlers):
    nl, lines = unconfirmed_trial(tmp_path, monkeypatch, shown=False)
    assert "ib0.8001" in nl.links
    assert ("note: ib0: VF 0, 1, 2, 3: GUIDs NOT rolled back: the trial set them, but this kernel does not show "
            "VF GUIDs") in "\n".join(lines)
