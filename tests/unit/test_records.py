# SPDX-License-Identifier: GPL-2.0-or-later
"""ib40d.core.records against the standard library's dataclasses: the same
declarations, made by each, behave alike in everything ib40 uses."""

import dataclasses
import subprocess
import sys

import pytest

from ib40d.core import records


def declare(dc, frozen, eq):
    """The same three classes (a base, a subclass, one with a factory),
    made by the module DC (records or dataclasses)."""

    @dc.dataclass(frozen=frozen, eq=eq)
    class Base:
        """A base."""
        name: str
        mtu: int | None = None

    @dc.dataclass(frozen=frozen, eq=eq)
    class Child(Base):
        """A subclass with a field that is not compared."""
        slaves: tuple = ()
        seen: list = dc.field(default_factory=list, compare=False)

    @dc.dataclass(frozen=frozen, eq=eq)
    class Holder:
        """Records within a record."""
        items: dict = dc.field(default_factory=dict)
        first: object = None

    return Base, Child, Holder


KINDS = [dict(frozen=False, eq=True), dict(frozen=True, eq=True), dict(frozen=False, eq=False)]


@pytest.mark.parametrize("kind", KINDS, ids=["plain", "frozen", "eq=False"])
def test_records_behave_as_dataclasses_do(kind):
    ours, theirs = declare(records, **kind), declare(dataclasses, **kind)
    for Ours, Theirs in zip(ours, theirs):
        assert [f.name for f in records.fields(Ours)] == [f.name for f in dataclasses.fields(Theirs)]
    (OB, OC, OH), (TB, TC, TH) = ours, theirs

    def outcome(fn):
        try:
            return ("value", fn())
        except Exception as e:
            return ("raises", type(e).__bases__[0] if type(e).__name__ == "FrozenInstanceError" else type(e))

    def compare(fn_ours, fn_theirs):
        a, b = outcome(fn_ours), outcome(fn_theirs)
        assert a == b, (a, b)

    # construction: positional, keyword, defaults, a factory per instance, errors
    for args, kwargs in [(("eth40a",), {}), (("eth40a", 9000), {}), ((), {"name": "bond0", "mtu": 1500}),
                         ((), {}), (("a", 1, 2, 3), {})]:
        compare(lambda: repr(OB(*args, **kwargs)).split(".")[-1],
                lambda: repr(TB(*args, **kwargs)).split(".")[-1])
    o1, o2 = OC("bond0", 9000, ("eth40a",)), OC("bond0", 9000, ("eth40a",))
    t1, t2 = TC("bond0", 9000, ("eth40a",)), TC("bond0", 9000, ("eth40a",))
    assert (o1.seen is not o2.seen) and (t1.seen is not t2.seen)
    if not kind["frozen"]:
        o1.seen.append(1)
        t1.seen.append(1)
    compare(lambda: o1 == o2, lambda: t1 == t2)  # seen is not compared
    compare(lambda: o1 == OC("bond0"), lambda: t1 == TC("bond0"))
    compare(lambda: o1 == OB("bond0", 9000), lambda: t1 == TB("bond0", 9000))  # another class
    compare(lambda: hash(o1) == hash(o2), lambda: hash(t1) == hash(t2))
    compare(lambda: OB.__hash__ is None, lambda: TB.__hash__ is None)
    compare(lambda: setattr(o1, "mtu", 1500) or o1.mtu, lambda: setattr(t1, "mtu", 1500) or t1.mtu)
    compare(lambda: delattr(o2, "mtu"), lambda: delattr(t2, "mtu"))
    compare(lambda: OC.__doc__, lambda: TC.__doc__)
    # replace and asdict, records within records included
    compare(lambda: repr(records.replace(OB("x"), mtu=4)).split(".")[-1],
            lambda: repr(dataclasses.replace(TB("x"), mtu=4)).split(".")[-1])
    compare(lambda: records.asdict(OH({"k": [OB("a"), (OB("b"),)]}, OC("c"))),
            lambda: dataclasses.asdict(TH({"k": [TB("a"), (TB("b"),)]}, TC("c"))))


def test_a_method_the_class_defines_is_kept_and_declarations_are_checked():
    @records.dataclass
    class Shown:
        """Its own repr."""
        a: int = 0

        def __repr__(self):
            return "mine"

    assert repr(Shown()) == "mine" and Shown(1) == Shown(1) and Shown(1) != Shown(2)
    with pytest.raises(TypeError, match="non-default argument 'b'"):
        @records.dataclass
        class Wrong:
            a: int = 0
            b: int
    with pytest.raises(ValueError, match="mutable default"):
        @records.dataclass
        class Shared:
            a: list = []


@pytest.mark.parametrize("dc", [records, dataclasses], ids=["records", "dataclasses"])
def test_a_field_declared_again_keeps_its_place_and_post_init_runs(dc):
    @dc.dataclass
    class Base:
        a: int = 1
        b: int = 2

    @dc.dataclass
    class Again(Base):
        """Declares a again, and checks itself."""
        a: int = 5
        c: int = 3

        def __post_init__(self):
            if self.c < 0:
                raise ValueError("c < 0")

    assert [f.name for f in dc.fields(Again)] == ["a", "b", "c"]
    assert repr(Again()).endswith("Again(a=5, b=2, c=3)")
    with pytest.raises(ValueError, match="c < 0"):
        Again(c=-1)


def test_make_dataclass_makes_a_record_of_the_rows():
    Obs = records.make_dataclass("Obs", [("mode", object, records.field(default=None)),
                                         ("miimon", object, records.field(default=None))],
                                 namespace={"__doc__": "Two options."})
    assert [f.name for f in records.fields(Obs)] == ["mode", "miimon"]
    assert repr(Obs(miimon=100)) == "Obs(mode=None, miimon=100)" and Obs.__doc__ == "Two options."
    assert Obs.__module__ == __name__ and Obs("a") == Obs("a") and Obs("a") != Obs("b")


def test_the_daemon_imports_no_dataclasses():
    # what records.py is for: the daemon's import path stays off dataclasses and inspect
    code = ("import sys, ib40d.commands.cli, ib40d.commands.daemon; "
            "print(sorted({'dataclasses', 'inspect'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
