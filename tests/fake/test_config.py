# SPDX-License-Identifier: GPL-2.0-or-later
"""Config parsing and validation: every malformed file names FILE:LINE."""

import os

import pytest

from helpers import HOWTO_BOND, REPO, run_ib40d
from ib40d.core.config import ConfigError, parse_text, parse_texts
from ib40d.system.config_reader import load

GOOD_BOND = HOWTO_BOND + "broadcast = 10.30.255.255\n"


def rendered(e) -> list[str]:
    """A ConfigError's problems as `ib40d check` prints them."""
    return [p.render() for p in e.value.problems]

# (name, text, expected line, words the message must contain)
MALFORMED = [
    ("unknown section", "[nic eth0]\n", 1, ["unknown section"]),
    ("unknown key", "[link eth0]\nspeed = 40000\n", 2, ["[link eth0] speed", "unknown key"]),
    ("duplicate section", "[link eth0]\nmtu = 9000\n[link eth0]\n", 3, ["duplicate section", "line 1"]),
    ("duplicate key", "[link eth0]\nmtu = 9000\nmtu = 1500\n", 3, ["mtu", "duplicate key"]),
    ("key outside section", "mtu = 9000\n", 1, ["outside any section"]),
    ("not key=value", "[link eth0]\nmtu 9000\n", 2, ["key = value"]),
    ("malformed header", "[link eth0\n", 1, ["malformed section header"]),
    ("link without name", "[link]\nmtu = 9000\n", 1, ["needs a link name"]),
    ("card named by no PCI address", "[card x]\n", 1, ["is not a PCI address"]),
    ("empty value", "[link eth0]\nmtu =\n", 2, ["empty value"]),
    ("bad mac", "[link eth0]\nmac = 00:02:c9:3e:ca\n", 2, ["mac", "not a MAC"]),
    ("multicast mac", "[link eth0]\nmac = 01:00:5e:00:00:01\n", 2, ["multicast"]),
    ("same mac twice", "[link a]\nmac = 00:02:c9:3e:ca:b1\n[link b]\nmac = 00:02:C9:3E:CA:B1\n", 4, ["also the MAC"]),
    ("bad cidr", "[link eth0]\naddress = 10.30.0.300/16\n", 2, ["address", "CIDR"]),
    ("address without prefix", "[link eth0]\naddress = 10.30.0.2\n", 2, ["prefix length"]),
    ("network address", "[link eth0]\naddress = 10.30.0.0/16\n", 2, ["network address"]),
    ("bad netmask", "[link eth0]\naddress = 10.30.0.2\nnetmask = 255.0.255.0\n", 3, ["netmask"]),
    ("netmask and prefix", "[link eth0]\naddress = 10.30.0.2/16\nnetmask = 255.255.0.0\n", 3, ["netmask", "use one"]),
    ("broadcast outside", "[link eth0]\naddress = 10.30.0.2/24\nbroadcast = 10.30.255.255\n", 3, ["outside"]),
    ("broadcast without address", "[link eth0]\nbroadcast = 10.30.0.255\n", 2, ["needs an address"]),
    ("name too long", "[link eth40a-abcdefghijk]\n", 1, ["IFNAMSIZ"]),
    ("name with slash", "[link eth/0]\n", 1, ["'/'"]),
    ("name with colon", "[bond bond:0]\nslaves = a\n", 1, ["':'"]),
    ("mtu too small", "[link eth0]\nmtu = 67\n", 2, ["mtu", "68..65520"]),
    ("mtu too large", "[link eth0]\nmtu = 65521\n", 2, ["68..65520"]),
    ("mtu not a number", "[link eth0]\nmtu = jumbo\n", 2, ["not a whole number"]),
    ("txqueuelen negative", "[link eth0]\ntxqueuelen = -1\n", 2, ["txqueuelen", "out of range"]),
    ("miimon negative", "[link a]\n[bond bond0]\nslaves = a\nmiimon = -100\n", 4, ["miimon", "out of range"]),
    ("updelay not multiple", GOOD_BOND.replace("updelay = 200", "updelay = 250"), 11, ["updelay", "multiple of miimon"]),
    ("downdelay not multiple", GOOD_BOND.replace("downdelay = 200", "downdelay = 150"), 12, ["downdelay", "multiple"]),
    ("updelay without miimon", "[link a]\n[bond bond0]\nslaves = a\nupdelay = 200\n", 4, ["needs miimon"]),
    ("bad bond mode", GOOD_BOND.replace("balance-rr", "round-robin"), 9, ["mode", "not a bonding mode"]),
    ("slave not a section", GOOD_BOND.replace("eth40a eth40b", "eth40a eth40c"), 8, ["eth40c", "neither"]),
    ("link in two bonds", GOOD_BOND + "[bond bond1]\nslaves = eth40b\n", 16, ["eth40b", "already a slave of bond0"]),
    ("address on slave", GOOD_BOND.replace("txqueuelen = 10000\n[link eth40b]", "address = 10.1.0.1/24\n[link eth40b]", 1), 3, ["never on a slave"]),
    ("ipoib slave not active-backup", "[ipoib ib0]\n[ipoib ib1]\n[bond bond1]\nslaves = ib0 ib1\nmode = balance-rr\n", 5, ["active-backup"]),
    ("ipoib slave default mode", "[ipoib ib0]\n[bond bond1]\nslaves = ib0\n", 2, ["active-backup", "default"]),
    ("ipoib and ether mixed", "[ipoib ib0]\n[link eth0]\n[bond bond1]\nslaves = ib0 eth0\nmode = active-backup\n", 4, ["cannot be slaves of the same bond"]),
    ("ipoib datagram mtu", "[ipoib ib0]\nmode = datagram\nmtu = 65520\n", 3, ["4092", "connected"]),
    ("ipoib mtu without mode", "[ipoib ib0]\nmtu = 9000\n", 2, ["4092", "mode = connected"]),
    ("bad ipoib mode", "[ipoib ib0]\nmode = reliable\n", 2, ["connected, datagram"]),
    ("bad port type", "[card]\nport1 = infiniband\n", 2, ["port1", "ib, eth, auto"]),
    ("port1 eth with port2 ib", "[card]\nport1 = eth\nport2 = ib\n", 2, ["mlx4", "port 2"]),
    ("bad pci", "[card]\npci = 5:0.0\n", 2, ["PCI address"]),
    ("bad opensm start", "[opensm]\nstart = sometimes\n", 2, ["auto, always, never"]),
    ("bad boolean", "[sysctl]\ntuning = maybe\n", 2, ["boolean"]),
    ("same name twice", "[link bond0]\n[bond bond0]\nslaves = x\n", 2, ["already configured"]),
    ("bond without slaves", "[bond bond0]\nmode = balance-rr\n", 1, ["needs slaves"]),
    ("arp with miimon", "[link a]\n[bond b]\nslaves = a\nmiimon = 100\narp_interval = 200\narp_ip_target = 10.30.0.1\n", 5, ["exclude"]),
    ("arp in 802.3ad", "[link a]\n[bond b]\nslaves = a\nmode = 802.3ad\nmiimon = 0\narp_interval = 200\narp_ip_target = 10.30.0.1\n", 6, ["802.3ad"]),
    ("arp without target", "[link a]\n[bond b]\nslaves = a\nmiimon = 0\narp_interval = 200\n", 5, ["arp_ip_target"]),
    ("slave mtu vs bond", GOOD_BOND.replace("[link eth40b]\n", "mtu = 9000\n[link eth40b]\n").replace("miimon = 100", "miimon = 100\nmtu = 1500"), 4, ["differs"]),
    ("slave mtu without bond mtu", GOOD_BOND.replace("[link eth40b]\n", "mtu = 9000\n[link eth40b]\n"), 4, ["slave of bond0", "[bond bond0]"]),
    ("arp target twice", "[link a]\n[bond b]\nslaves = a\nmiimon = 0\narp_interval = 200\narp_ip_target = 10.30.0.1 10.30.0.1\n", 6, ["listed twice"]),
    ("arp target broadcast", "[link a]\n[bond b]\nslaves = a\nmiimon = 0\narp_interval = 200\narp_ip_target = 255.255.255.255\n", 6, ["cannot be an ARP target"]),
    ("ipoib bond mtu datagram", "[ipoib ib0]\nmode = datagram\n[bond b]\nslaves = ib0\nmode = active-backup\nmtu = 65520\n", 6, ["connected mode"]),
    ("bad guid", "[ipoib ib0]\nguid = 0002c903003f02f1\n", 2, ["GUID"]),
    # names udev or the kernel would take otherwise than written, or refuse
    ("name lo", "[link lo]\naddress = 127.0.0.1/8\n", 1, ["[link lo]: interface name 'lo' is the loopback device"]),
    ("name all", "[link all]\n", 1, ["[link all]: interface name 'all' is refused by the kernel (EINVAL)"]),
    ("name default", "[ipoib default]\n", 1, ["[ipoib default]: interface name 'default' is refused by the kernel"]),
    ("name with quotes", '[link x",RUN+="evil]\nmac = 00:02:c9:3e:ca:b1\n', 1,
     ['[link x",RUN+="evil]: interface name \'x",RUN+="evil\' contains \'"\'']),
    ("name with *", "[link eth*]\n", 1, ["[link eth*]: interface name 'eth*' contains '*'"]),
    ("name with ?", "[link eth?]\n", 1, ["contains '?'"]),
    ("name with brackets", "[link eth[0]]\n", 1, ["[link eth[0]]: interface name 'eth[0]' contains '['"]),
    ("name with %", "[link a]\n[bond bond%d]\nslaves = a\n", 2, ["[bond bond%d]: interface name 'bond%d' contains '%'"]),
    ("name .", "[link .]\n", 1, ["not a valid interface name"]),
    ("name with escape", "[link a\x1bb]\n", 1, ["[link a\\x1bb]: interface name 'a\\x1bb' contains '\\x1b'"]),
    # addresses the kernel refuses, drops, or that cannot be a host's
    ("ipv6 zone", "[link eth0]\nmtu = 9000\naddress = 2001:db8::1%v1/64\n", 3,
     ["[link eth0] address: '2001:db8::1%v1/64' has a zone"]),
    ("unspecified", "[link eth0]\naddress = 0.0.0.0/32\n", 2, ["[link eth0] address: '0.0.0.0/32' is the unspecified"]),
    ("unspecified v6", "[link eth0]\naddress = ::/128\n", 2, ["unspecified"]),
    ("limited broadcast", "[link eth0]\naddress = 255.255.255.255/32\n", 2, ["limited broadcast"]),
    ("subnet broadcast", "[link eth0]\naddress = 10.30.0.255/24\n", 2, ["is the broadcast address of 10.30.0.0/24"]),
    ("subnet broadcast by netmask", "[link eth0]\naddress = 10.30.0.255\nnetmask = 255.255.255.0\n", 2,
     ["[link eth0] address: '10.30.0.255' is the broadcast address of 10.30.0.0/24"]),
    ("multicast address", "[bond b]\nslaves = a\naddress = 224.0.0.5/24\n[link a]\n", 3, ["[bond b] address", "multicast"]),
    ("multicast v6", "[link eth0]\naddress = ff02::1/64\n", 2, ["multicast"]),
    ("link-local v6", "[ipoib ib0]\naddress = fe80::2/64\n", 2, ["[ipoib ib0] address: 'fe80::2/64' is link-local"]),
    ("zero mac", "[link eth0]\nmac = 00:00:00:00:00:00\n", 2, ["[link eth0] mac: '00:00:00:00:00:00' is all zero"]),
    ("broadcast mac", "[link eth0]\nmac = FF:FF:FF:FF:FF:FF\n", 2, ["is the broadcast address, not a port's MAC"]),
    ("zero guid", "[ipoib ib0]\nguid = 0x0000000000000000\n", 2, ["[ipoib ib0] guid: '0x0000000000000000' is all zero"]),
    ("same guid twice", "[ipoib ib0]\nguid = 0x0002c903003f02f1\n[ipoib ib1]\nguid = 0002:C903:003f:02f1\n", 4,
     ["[ipoib ib1] guid: 0002:c903:003f:02f1 is also the port GUID of [ipoib ib0]"]),
    ("slaves only a comma", "[link a]\n[bond b]\nslaves = ,\n", 3, ["[bond b] slaves: ',' names no link"]),
    ("full-width digits", "[link eth0]\nmtu = \uff19\uff10\uff10\uff10\n", 2, ["[link eth0] mtu:", "not a whole number"]),
    ("number int() refuses", "[link eth0]\nmtu = " + "9" * 5000 + "\n", 2, ["[link eth0] mtu: 99999999... (5000 digits) is out of range"]),
    ("underscore in a number", "[link eth0]\ntxqueuelen = 10_000\n", 2, ["'10_000' is not a whole number"]),
    ("kelvin sign in a mode", "[ipoib ib0]\nmode = connected\n[bond b]\nslaves = ib0\nmode = active-bac\u212aup\n", 5,
     ["[bond b] mode:", "not a bonding mode"]),
]


def test_there_are_at_least_30_malformed_cases():
    assert len(MALFORMED) >= 30


@pytest.mark.parametrize("name,text,line,words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_reports_file_line_and_key(name, text, line, words):
    with pytest.raises(ConfigError) as e:
        parse_text(text, "/etc/ib40.conf")
    first = rendered(e)[0]
    assert first.startswith(f"/etc/ib40.conf:{line}: "), rendered(e)
    for word in words:
        assert any(word in p for p in rendered(e)), (word, rendered(e))


@pytest.mark.parametrize("name,text,line,words", MALFORMED, ids=[m[0] for m in MALFORMED])
def test_check_prints_the_line_and_exits_2(name, text, line, words, tmp_path, capsys):
    """The same files through `ib40d check`'s entry point (in-process)."""
    from ib40d.commands import cli

    conf = tmp_path / "ib40.conf"
    conf.write_text(text, encoding="utf-8")
    assert cli.main(["check", "-c", str(conf)]) == 2
    err = capsys.readouterr().err.splitlines()
    assert any(e.startswith(f"{conf}:{line}: ") for e in err), err
    for word in words:
        assert any(word in e for e in err if e.startswith(f"{conf}:")), (word, err)
    assert err[-1].endswith("nothing was changed")


def test_hosts_of_31_and_32_bit_prefixes_are_fine():
    # RFC 3021: a /31 has no network or broadcast address, nor has a /32
    cfg = parse_text("[link eth0]\naddress = 10.30.0.0/31 10.31.0.1/31 10.32.0.255/32 10.33.0.0/32 2001:db8::/127\n")
    assert len(cfg.links["eth0"].addresses) == 5


@pytest.mark.parametrize("sep", ["\f", "\v", "\r", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"],
                         ids=lambda c: f"U+{ord(c):04X}")
def test_only_newline_ends_a_line(sep):
    text = f"[link eth0]\n# a comment{sep}with a separator\nmtu = 1{sep}\n[link eth1]\r\nmtu = 2\r\n"
    with pytest.raises(ConfigError) as e:
        parse_text(text, "f")
    assert [p.split(":")[1] for p in rendered(e)] == ["3", "5"], rendered(e)


def test_a_byte_order_mark_is_skipped(tmp_path):
    assert parse_text("\ufeff[link eth0]\nmtu = 9000\n").links["eth0"].mtu == 9000
    conf = tmp_path / "ib40.conf"
    conf.write_bytes(b"\xef\xbb\xbf[link eth0]\r\nmtu = 9000\r\n")
    assert load(conf).links["eth0"].mtu == 9000


def test_a_line_that_is_not_utf8_is_reported_at_its_line(tmp_path):
    conf = tmp_path / "ib40.conf"
    conf.write_bytes(b"[link eth0]\nmtu = 9000  # caf\xe9\n[link eth1]\nmtu = 1\n")
    with pytest.raises(ConfigError) as e:
        load(conf)
    assert rendered(e) == [
        f"{conf}:2: byte 0xe9 (byte 18 of the line) is not UTF-8; write the file as UTF-8",
        f"{conf}:4: [link eth1] mtu: 1 is out of range 68..65520",
    ]


def test_files_are_utf8_whatever_the_locale(tmp_path):
    conf = tmp_path / "ib40.conf"
    conf.write_text("# caf\u00e9: the port by the window\n[link eth40a]\nmtu = 9000\n", encoding="utf-8")
    ascii_locale = {"LC_ALL": "C", "PYTHONUTF8": "0"}  # Python's ASCII locale, not its UTF-8 mode
    run_ib40d("check", "-c", str(conf), env=ascii_locale, check_rc=0)
    conf.write_text("[link eth40a]\nmtu = \uff19\uff10\uff10\uff10\n", encoding="utf-8")
    proc = run_ib40d("check", "-c", str(conf), env=ascii_locale, check_rc=2)
    assert f"{conf}:2: [link eth40a] mtu: " in proc.stderr and "Traceback" not in proc.stderr


def test_every_problem_is_reported_not_just_the_first():
    text = "[link eth0]\nmtu = 1\ntxqueuelen = x\nmac = nope\n[bogus]\n"
    with pytest.raises(ConfigError) as e:
        parse_text(text, "f")
    assert [p.split(":")[1] for p in rendered(e)] == ["2", "3", "4", "5"]


def test_good_bond_parses_to_the_howto_values():
    cfg = parse_text(GOOD_BOND)
    bond = cfg.bonds["bond0"]
    assert (bond.mode, bond.miimon, bond.updelay, bond.downdelay) == ("balance-rr", 100, 200, 200)
    assert bond.slaves == ("eth40a", "eth40b")
    assert str(bond.addresses[0].interface) == "10.30.0.2/16"
    assert str(bond.addresses[0].broadcast) == "10.30.255.255"
    assert cfg.links["eth40a"].mac == "00:02:c9:3e:ca:b1"


def test_howto_netmask_form_and_comments():
    cfg = parse_text("""
# HOWTO single port
[link eth40a]   ; the only port
mac = 00:02:C9:3E:CA:B0     # upper case is fine
address = 10.30.0.2
netmask = 255.255.255.0
broadcast = 10.30.0.255
[card]
pci = 05:00.0
""")
    link = cfg.links["eth40a"]
    assert link.mac == "00:02:c9:3e:ca:b0"
    assert str(link.addresses[0].interface) == "10.30.0.2/24"
    assert cfg.card.pci == "0000:05:00.0"


def test_numeric_bond_mode_and_ipoib_guid_forms():
    cfg = parse_text("[ipoib ib0]\nguid = 0x0002C903003F02F1\nmode = connected\n"
                     "[ipoib ib1]\nguid = 0002:c903:003f:02f2\n[bond b]\nslaves = ib0 ib1\nmode = 1\n")
    assert cfg.bonds["b"].mode == "active-backup"
    assert cfg.links["ib0"].guid == "0002:c903:003f:02f1"
    assert cfg.links["ib1"].guid == "0002:c903:003f:02f2"


def test_dropins_are_read_in_name_order_and_override(tmp_path):
    main = tmp_path / "ib40.conf"
    main.write_text(GOOD_BOND)
    d = tmp_path / "ib40.conf.d"
    d.mkdir()
    (d / "20-mtu.conf").write_text("[bond bond0]\nmtu = 9000\n")
    (d / "10-addr.conf").write_text("[bond bond0]\nmtu = 4000\naddress = 10.30.0.9/16\nbroadcast = 10.30.255.255\n")
    (d / "notes.txt").write_text("[garbage\n")
    cfg = load(main)
    assert cfg.bonds["bond0"].mtu == 9000
    assert str(cfg.bonds["bond0"].addresses[0].interface) == "10.30.0.9/16"
    assert [p.rsplit("/", 1)[1] for p in cfg.files] == ["ib40.conf", "10-addr.conf", "20-mtu.conf"]


def test_dropin_problem_names_the_dropin_file(tmp_path):
    main = tmp_path / "ib40.conf"
    main.write_text(GOOD_BOND)
    (tmp_path / "ib40.conf.d").mkdir()
    (tmp_path / "ib40.conf.d" / "50-x.conf").write_text("\n[bond bond0]\nmiimon = fast\n")
    with pytest.raises(ConfigError) as e:
        load(main)
    assert rendered(e)[0].startswith(f"{tmp_path}/ib40.conf.d/50-x.conf:3: [bond bond0] miimon:")


def test_problems_sorted_main_file_first():
    with pytest.raises(ConfigError) as e:
        parse_texts([("main", "[link a]\nmtu = 1\n"), ("drop", "[link a]\ntxqueuelen = x\n[zz]\n")])
    assert [p.split(":")[0] for p in rendered(e)] == ["main", "drop", "drop"]


def test_examples_shipped_in_the_repo_are_valid():
    examples = sorted((REPO / "examples").glob("*.conf"))
    assert examples, "examples/*.conf must exist"
    for path in examples:
        load(path)


def test_cli_check_exit_2_no_traceback(tmp_path):
    bad = tmp_path / "bad.conf"
    bad.write_text("[link eth0]\nmtu = 9\n[bond b]\nslaves = nope\n")
    proc = run_ib40d("check", "-c", str(bad))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert f"{bad}:2: [link eth0] mtu: 9 is out of range 68..65520" in proc.stderr
    assert f"{bad}:4: [bond b] slaves:" in proc.stderr


def test_cli_check_missing_file_is_clear(tmp_path):
    proc = run_ib40d("check", "-c", str(tmp_path / "none.conf"))
    assert proc.returncode == 2 and "no such file" in proc.stderr and "Traceback" not in proc.stderr


def test_cli_check_valid_summary(tmp_path):
    good = tmp_path / "good.conf"
    good.write_text(GOOD_BOND)
    proc = run_ib40d("check", "-c", str(good), check_rc=0)
    assert proc.stdout.strip() == f"{good}: valid; 2 links, 1 bond, 0 IPoIB"


def test_subcommand_help_lists_its_own_options():
    proc = run_ib40d("apply", "--help", check_rc=0)
    assert "--link NAME" in proc.stdout and "--root DIR" in proc.stdout
    assert run_ib40d("--version", check_rc=0).stdout.startswith("ib40d ")


def test_usage_mistakes_get_the_whole_command_list_and_status_2():
    # the parser is built for the one command named; anything else gets the
    # full one, which lists every command
    from ib40d.commands.cli import SUBCOMMANDS

    proc = run_ib40d(check_rc=2)
    assert "usage: ib40d [-h] [--version] COMMAND" in proc.stderr and "required: COMMAND" in proc.stderr
    for argv in (["bogus"], ["--root", "/", "check"]):
        proc = run_ib40d(*argv, check_rc=2)
        assert "usage: ib40d" in proc.stderr and "Traceback" not in proc.stderr
        assert all(name in proc.stderr for name in SUBCOMMANDS), proc.stderr
    top = run_ib40d("--help", check_rc=0)
    assert all(name in top.stdout for name in SUBCOMMANDS)
    # a known command with an option it lacks (apply has --link, check not)
    proc = run_ib40d("check", "--link", "x", check_rc=2)
    assert "unrecognized arguments: --link x" in proc.stderr and "Traceback" not in proc.stderr


def _check_limited(*args):
    """`ib40d check` with its memory bounded: before ib40 refused them,
    /dev/zero as the config ate memory until the OOM killer came."""
    import resource
    import subprocess
    import sys

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    return subprocess.run([sys.executable, "-m", "ib40d", "check", *args], capture_output=True, text=True,
                          cwd=REPO, timeout=120, preexec_fn=limit)


def test_check_reads_only_regular_files(tmp_path):
    fifo = tmp_path / "ib40.conf"
    os.mkfifo(fifo)  # opening it for reading would wait for a writer
    for conf, kind in ((fifo, "a FIFO"), ("/dev/zero", "a character device"), (tmp_path, "a directory")):
        proc = _check_limited("-c", str(conf))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.splitlines()[0] == f"{conf}: is {kind}, not a regular file"


def test_a_file_too_large_to_be_a_configuration_is_refused(tmp_path):
    conf = tmp_path / "ib40.conf"
    with open(conf, "wb") as f:
        f.truncate(64 << 30)  # sparse: 64 GiB of NULs
    proc = _check_limited("-c", str(conf))
    assert proc.returncode == 2 and proc.stderr.splitlines()[0] == f"{conf}: larger than 1 MiB: not a configuration"


def test_dropins_that_cannot_be_read_are_problems_not_skipped(tmp_path):
    main = tmp_path / "ib40.conf"
    main.write_text(GOOD_BOND)
    d = tmp_path / "ib40.conf.d"
    d.mkdir()
    os.mkfifo(d / "10-fifo.conf")
    (d / "20-dangling.conf").symlink_to(d / "gone")
    (d / "30-loop.conf").symlink_to(d / "30-loop.conf")
    (d / "40-zero.conf").symlink_to("/dev/zero")
    (d / "50-dir.conf").mkdir()
    (d / "60-fine.conf").write_text("[bond bond0]\nmtu = 9000\n")
    with pytest.raises(ConfigError) as e:
        load(main)
    assert rendered(e) == [
        f"{d}/10-fifo.conf: is a FIFO, not a regular file",
        f"{d}/20-dangling.conf: a dangling symbolic link ({d}/gone does not exist)",
        f"{d}/30-loop.conf: cannot read: Too many levels of symbolic links",
        f"{d}/40-zero.conf: is a character device, not a regular file",
        f"{d}/50-dir.conf: is a directory, not a regular file",
    ]
    proc = run_ib40d("check", "-c", str(main), check_rc=2)
    assert proc.stderr.splitlines()[0] == f"{d}/10-fifo.conf: is a FIFO, not a regular file"


def test_hidden_dropins_are_not_read(tmp_path):
    # as systemd skips them, and the shell glob of ib40-sync.service
    main = tmp_path / "ib40.conf"
    main.write_text(GOOD_BOND)
    (tmp_path / "ib40.conf.d").mkdir()
    (tmp_path / "ib40.conf.d" / ".10-x.conf").write_text("[bond bond0]\nmtu = 9000\n")
    (tmp_path / "ib40.conf.d" / ".conf").write_text("[bond bond0]\nmtu = 9000\n")
    cfg = load(main)
    assert cfg.files == (str(main),) and cfg.bonds["bond0"].mtu is None


def test_a_file_name_stays_on_its_line(tmp_path):
    main = tmp_path / "ib40.conf"
    main.write_text(GOOD_BOND)
    (tmp_path / "ib40.conf.d").mkdir()
    (tmp_path / "ib40.conf.d" / "10-a\nb\x1b.conf").write_text("[bond bond0]\nmtu = 1\n")
    with pytest.raises(ConfigError) as e:
        load(main)
    assert rendered(e) == [f"{tmp_path}/ib40.conf.d/10-a\\x0ab\\x1b.conf:2: [bond bond0] mtu: 1 is out of range 68..65520"]
