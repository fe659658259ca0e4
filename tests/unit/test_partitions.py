# SPDX-License-Identifier: GPL-2.0-or-later
"""The partitions file ib40 renders for its opensm, against opensm's grammar.

opensm 3.3 stops at "No local ports detected!" before it reads the file on
a machine without an HCA, so its own parser can't run here. The checker
below is written from opensm's doc/partition-config.txt ("File Format"):

  file        := { entry | comment | blank }
  entry       := definition ':' guids ';'        (may wrap after ':')
  definition  := [name] ['=' pkey] { ',' flag ['=' value] } [',' defmember]
  flag        := ipoib | rate | mtu | sl | scope
  defmember   := 'defmember=' ( full | limited )
  guids       := [ member { ',' member } ]
  member      := ( guid | ALL | ALL_CAS | ALL_SWITCHES | ALL_ROUTERS | SELF ) ['=' word]
  white space allowed around '=', ',', ':', ';'; '#' starts a comment

It is tried on real files (tests/fixtures/partitions, sources in INDEX.md)
and on lines it must refuse, so that it can fail."""

import re

import pytest

from helpers import only_problem, FIXTURES, fixture_output
from ib40d.core.config import parse_text
from ib40d.core.partitions import render

_NAME = r"[^=,:;#\s]+"
_NUMBER = r"(?:0x[0-9A-Fa-f]+|[0-9]+)"
_FLAG = r"(?:ipoib|(?:rate|mtu|sl|scope)\s*=\s*[0-9]+|defmember\s*=\s*(?:full|limited))"
_DEFINITION = re.compile(rf"\s*(?:{_NAME})?\s*(?:=\s*{_NUMBER})?\s*(?:,\s*{_FLAG}\s*)*")
_MEMBER = re.compile(rf"\s*(?:{_NUMBER}|ALL|ALL_CAS|ALL_SWITCHES|ALL_ROUTERS|SELF)\s*(?:=\s*[A-Za-z]+)?\s*")


def grammar_problems(text: str) -> list[str]:
    """Each entry of TEXT that opensm's documented grammar does not allow."""
    body = "\n".join(line.split("#", 1)[0] for line in text.splitlines())
    entries = body.split(";")
    problems = [f"text after the last ';': {entries[-1].strip()!r}"] if entries[-1].strip() else []
    for entry in entries[:-1]:
        definition, colon, guids = entry.partition(":")
        if not colon or ":" in guids:
            problems.append(f"not 'definition : guids': {entry.strip()!r}")
            continue
        if "\n" in definition.strip():
            problems.append(f"a line may wrap only after ':': {entry.strip()!r}")
        if not _DEFINITION.fullmatch(definition):
            problems.append(f"bad partition definition: {definition.strip()!r}")
        members = guids.split(",") if guids.strip() else []
        problems += [f"bad member: {m.strip()!r}" for m in members if not _MEMBER.fullmatch(m)]
    return problems


@pytest.mark.parametrize("name", sorted(p.name for p in (FIXTURES / "partitions").iterdir()))
def test_real_partitions_files_follow_the_grammar(name):
    text = fixture_output(f"partitions/{name}")
    assert text.count(";") >= 3
    assert grammar_problems(text) == []


@pytest.mark.parametrize("bad", [
    "Default=0x7fff, ipoib : ALL=full",                 # no ';'
    "Default=0x7fff, ipoib ALL=full ;",                 # no ':'
    "Default=0x7fff, ipoib, mtu=big : ALL=full ;",      # mtu takes an IBTA number
    "Default=0x7fff, jumbo : ALL=full ;",               # no such flag
    "Default=0x7fff, ipoib : everyone=full ;",          # no such member keyword
    "Default=0x7fff,\nipoib : ALL=full ;",              # wrapped before ':'
])
def test_the_checker_refuses_what_the_grammar_does_not_allow(bad):
    assert grammar_problems(bad) != []


CONF = """
[ipoib ib0]
mode = datagram
mtu = 4092
[ipoib ib0.8001]
parent = ib0
pkey = 0x0001
mode = datagram
mtu = 4092
[partition storage]
pkey = 0x0001
mtu = 4096
rate = 56
[partition backup]
pkey = 0x0002
ipoib = no
members = 0x0002c903003f02f1=full, SELF=full, ALL=limited
"""


def test_rendered_file_follows_the_grammar_and_says_what_the_config_says():
    text = render(parse_text(CONF))
    assert grammar_problems(text) == []
    assert [line for line in text.splitlines() if not line.startswith("#")] == [
        "Default=0x7fff, ipoib, mtu=5 : ALL=full ;",
        "storage=0x0001, ipoib, mtu=5, rate=12 : ALL=full ;",
        "backup=0x0002 : 0x0002c903003f02f1=full, SELF=full, ALL=limited ;"]


def test_the_default_partition_stays_at_2048_for_connected_mode():
    text = render(parse_text("[ipoib ib0]\nmode = connected\nmtu = 65520\n"))
    assert "Default=0x7fff, ipoib : ALL=full ;" in text.splitlines()


@pytest.mark.parametrize("text, words", [
    ("[ipoib ib0]\n[ipoib ib0.8001]\nparent = ib0\npkey = 0x8001\n",
     ["[ipoib ib0.8001] pkey: no [partition] has pkey 0x0001"]),
    ("[ipoib ib0]\n[ipoib ib0.8001]\nparent = ib0\npkey = 0x8001\nmode = datagram\nmtu = 4092\n"
     "[partition p]\npkey = 0x0001\n", ["[ipoib ib0.8001] mtu: 4092 is above 2044", "mtu = 4096 in [partition p]"]),
    ("[ipoib ib0]\n[ipoib ib0.8001]\nparent = ib0\npkey = 0x8001\n[partition p]\npkey = 0x0001\nipoib = no\n",
     ["[partition p] has ipoib = no"]),
    ("[partition p]\npkey = 0x0001\n[partition q]\npkey = 0x8001\n", ["[partition q] pkey: 0x0001 is also [partition p]"]),
    ("[partition p]\npkey = 0x7fff\n", ["default partition"]),
    ("[partition p]\npkey = 0x0003\nmembers = ALL=both\n", ["'both' is not full or limited"]),
    ("[partition p]\npkey = 0x0003\nrate = 41\n", ["not an InfiniBand rate"]),
])
def test_check_refuses(text, words):
    problem = only_problem(text)
    for word in words:
        assert word in problem


def test_another_sm_s_partitions_are_not_checked():
    parse_text("[opensm]\nstart = never\n[ipoib ib0]\n[ipoib ib0.8001]\nparent = ib0\npkey = 0x8001\n")
