# SPDX-License-Identifier: GPL-2.0-or-later
"""The config schema (ib40d/core/schema.py): the README's key table and
ib40.conf(5) are generated from it and in step with it, the model takes
every key, and problems are data rendered in one place."""

import os
import shutil
import subprocess
import sys

import pytest

from helpers import REPO
from ib40d import __version__
from ib40d.core import config, records, schema
from ib40d.core.config import ConfigError, parse_texts
from ib40d.system.config_reader import load
from ib40d.core.errors import Problem

README = REPO / "README.md"
MAN_PAGE = REPO / "debian/ib40.conf.5"
MODELS = {"card": config.CardConfig, "link": config.LinkConfig, "ipoib": config.IPoIBConfig,
          "bond": config.BondConfig, "vlan": config.VlanConfig, "partition": config.PartitionConfig,
          "opensm": config.OpensmConfig,
          "sysctl": config.SysctlConfig}


# ------------------------------------------------------------- the table

def test_each_section_and_key_is_declared_once_with_one_line_of_doc():
    assert list(schema.SECTIONS) == [s.name for s in schema.SECTIONS.values()]
    for section in schema.SECTIONS.values():
        assert len(set(section.key_names)) == len(section.key_names), section.name
        for key in (section, *section.keys):
            assert key.doc.endswith(".") and "\n" not in key.doc, (section.name, key.name)


@pytest.mark.parametrize("section", list(schema.SECTIONS))
def test_the_model_has_a_field_for_each_key(section):
    # config.py hands each value to the model field of the same name
    fields = {f.name for f in records.fields(MODELS[section])}
    keys = {k.name for k in schema.SECTIONS[section].keys if k.type.parse is not None}
    assert keys <= fields, keys - fields


def test_defaults_are_valid_values_and_are_the_models():
    defaults = {(s.name, k.name): k.default for s in schema.SECTIONS.values() for k in s.keys if k.default}
    assert defaults == {("opensm", "start"): "auto", ("sysctl", "tuning"): "yes", ("partition", "ipoib"): "yes",
                        ("partition", "members"): "ALL=full"}
    cfg = config.parse_text("[opensm]\npriority = 3\n[sysctl]\n")
    assert (cfg.opensm.start, cfg.sysctl.tuning) == ("auto", True)
    assert (config.Config().opensm.start, config.Config().sysctl.tuning) == ("auto", True)


def test_unknown_keys_and_sections_are_named_from_the_table():
    with pytest.raises(ConfigError) as e:
        config.parse_text("[bond b]\nslaves = a\nspeed = 40000\n[team t]\n[link a]\n")
    messages = {p.key or p.section: p.message for p in e.value.problems}
    assert messages["speed"] == "unknown key (known: " + ", ".join(sorted(schema.SECTIONS["bond"].key_names)) + ")"
    assert messages["[team t]"] == "unknown section (known: [card], [link], [ipoib], [bond], [vlan], [partition], [opensm], [sysctl])"


# ------------------------------------------------------------- the documents

def test_readme_key_table_is_the_schemas():
    readme = README.read_text(encoding="utf-8")
    assert readme.count("| section | keys |") == 1
    assert schema.readme_table() in readme
    assert schema.replace_readme_table(readme) == readme, "run `make schema-docs`"


def test_man_page_is_the_schemas_and_is_shipped():
    assert MAN_PAGE.read_text(encoding="utf-8") == schema.man_page(__version__), "run `make schema-docs`"
    assert "debian/ib40.conf.5" in (REPO / "debian/ib40.manpages").read_text().split()


def test_documents_name_every_section_and_key():
    rows = {line.split(" | ")[0].strip("|` "): line for line in schema.readme_table().splitlines()}
    pages = {part.split("\n", 1)[0]: part for part in schema.man_page(__version__).split("\n.SS ")[1:]}
    for section in schema.SECTIONS.values():
        row, page = rows[section.header], pages[section.header.replace("-", "\\-")]
        for key in section.keys:
            assert f"`{key.name}`" in row, (section.header, key.name)
            assert f"\\fB{key.name}\\fR = " in page, (section.header, key.name)


def test_schema_command_writes_both(tmp_path):
    stale = tmp_path / "README.md"
    stale.write_text(README.read_text(encoding="utf-8").replace("`mtu` (68–65520)", "`mtu`"), encoding="utf-8")
    env = dict(os.environ, PYTHONPATH=str(REPO))
    run = [sys.executable, "-m", "ib40d.commands.schema_docs"]
    subprocess.run([*run, "--readme", str(stale)], check=True, env=env, timeout=60)
    assert stale.read_text(encoding="utf-8") == README.read_text(encoding="utf-8")
    man = subprocess.run([*run, "--man"], check=True, env=env, capture_output=True, text=True, timeout=60).stdout
    assert man == MAN_PAGE.read_text(encoding="utf-8")
    assert subprocess.run([*run, "--bogus"], env=env, capture_output=True, timeout=60).returncode == 2


@pytest.mark.skipif(shutil.which("man") is None, reason="needs man-db")
def test_man_page_renders_without_warnings():
    # the command line lintian's manpage check runs
    env = dict(os.environ, LC_ALL="C.UTF-8", MANROFFSEQ="", MANWIDTH="80")
    proc = subprocess.run(["man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", str(MAN_PAGE)],
                          env=env, capture_output=True, text=True, timeout=60)
    assert (proc.returncode, proc.stderr) == (0, "")
    text = subprocess.run(["man", "-l", str(MAN_PAGE)], env=env, capture_output=True, text=True,
                          timeout=60).stdout
    assert "IB40.CONF(5)" in text and "updelay = 0..2147483647 (ms)" in text and "Default: auto." in text


# ------------------------------------------------------------- problems as data

def test_problems_are_data():
    with pytest.raises(ConfigError) as e:
        parse_texts([("main", "[link eth0]\nmtu = 1\n[nic]\n"),
                     ("drop", "mtu = 9000\n[link a]\n[bond b]\nslaves = a\nmiimon = 100\nupdelay = 150\n")])
    assert e.value.problems == [
        Problem("main", 2, "[link eth0]", "mtu", "1 is out of range 68..65520"),
        Problem("main", 3, "[nic]", None, "unknown section (known: [card], [link], [ipoib], [bond], [vlan], [partition], [opensm], [sysctl])"),
        Problem("drop", 1, None, "mtu", "key outside any section"),
        Problem("drop", 6, "[bond b]", "updelay", "150 is not a multiple of miimon 100; "
                "the kernel would round it down to 100"),
    ]
    assert str(e.value) == "\n".join(p.render() for p in e.value.problems)


def test_a_file_that_cannot_be_read_is_a_problem_without_a_line(tmp_path):
    with pytest.raises(ConfigError) as e:
        load(tmp_path / "none.conf")
    assert e.value.problems == [Problem(str(tmp_path / "none.conf"), None, None, None,
                                        "no such file (write one from /usr/share/doc/ib40/examples/ib40.conf)")]


@pytest.mark.parametrize("problem,text", [
    (Problem("f", 3, "[bond b]", "mtu", "m"), "f:3: [bond b] mtu: m"),
    (Problem("f", 3, "[bond b]", None, "m"), "f:3: [bond b]: m"),
    (Problem("f", 3, None, "mtu", "m"), "f:3: mtu: m"),
    (Problem("f", 3, None, None, "m"), "f:3: m"),
    (Problem("f", None, None, None, "m"), "f: m"),
])
def test_one_renderer_for_every_form(problem, text):
    assert problem.render() == str(problem) == text


def test_problems_are_sorted_by_their_file_and_line_not_by_their_text():
    # "a:1:2: ..." would read as line 1 of file "a" to a pattern on the text
    with pytest.raises(ConfigError) as e:
        parse_texts([("a", "\n\n\n[link x]\nmtu = 1\n"), ("a:1", "[link y]\nmtu = 1\n")])
    assert [(p.file, p.line) for p in e.value.problems] == [("a", 5), ("a:1", 2)]
