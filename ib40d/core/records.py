# SPDX-License-Identifier: GPL-2.0-or-later
"""The part of the standard library's dataclasses that ib40 uses, made cheap
to import: `@dataclass` (plain, frozen=True, eq=False), `field`
(default, default_factory, compare), `replace`, `asdict`, `fields` and
`make_dataclass`, each meaning what it means there.

Why not dataclasses itself: ib40d.service starts at every boot, and half of
what importing its modules cost was dataclasses. Importing it pulls in
inspect (and with it ast, dis, tokenize), and each class it makes runs an
exec() per generated method plus inspect.signature() for a docstring. Here
the module imports nothing more than operator (which collections, and so
the daemon, imports anyway), and a class's methods are closures over its
fields: no exec(), so no source is compiled at import. Measured with
`python3 -X importtime -c 'import ib40d.commands.cli, ib40d.commands.daemon'`
on Debian 12 (Python 3.11) and 13 (3.13) alike: 11 ms to import dataclasses
and 11 ms for the daemon's 28 classes, of 42-45 ms in all. One exec() per
class (this module's first way) still took 5.2 ms of the daemon's 23 ms of
imports (Debian 13's Python, on the machine ib40 is developed on).

The methods are the ones dataclasses writes: __init__ (fields in
declaration order, base classes' first; then __post_init__ if there is one),
__repr__, __eq__ unless eq=False, and for frozen classes __setattr__ and
__delattr__ that refuse and a __hash__ of the compared fields; a class with
__eq__ that is not frozen is unhashable. A method the class defines itself
is kept. tests/unit/test_records.py holds the two side by side.
"""

from __future__ import annotations

import sys
from operator import attrgetter

FIELDS = "__record_fields__"  # on each record class: its Fields, in order


class FrozenInstanceError(AttributeError):
    """Assigning to a field of a frozen record."""


class _Missing:
    def __repr__(self):
        return "MISSING"


MISSING = _Missing()


class Field:
    __slots__ = ("name", "default", "default_factory", "compare")

    def __init__(self, default=MISSING, default_factory=MISSING, compare=True):
        if default is not MISSING and default_factory is not MISSING:
            raise ValueError("cannot specify both default and default_factory")
        self.name = None
        self.default, self.default_factory, self.compare = default, default_factory, compare

    def __repr__(self):
        return f"Field(name={self.name!r}, default={self.default!r}, " \
               f"default_factory={self.default_factory!r}, compare={self.compare!r})"


def field(*, default=MISSING, default_factory=MISSING, compare=True):
    return Field(default, default_factory, compare)


def fields(class_or_instance) -> tuple[Field, ...]:
    try:
        return getattr(class_or_instance, FIELDS)
    except AttributeError:
        raise TypeError("must be called with a record class or instance") from None


def _own_annotations(cls) -> dict:
    if "__annotations__" in cls.__dict__ or "__annotate__" in cls.__dict__:
        return cls.__annotations__  # this class's own (Python >= 3.10)
    return {}


def _collect(cls) -> list[Field]:
    by_name = {}
    for base in reversed(cls.__mro__[1:]):
        for f in base.__dict__.get(FIELDS, ()):
            by_name[f.name] = f
    for name in _own_annotations(cls):
        value = cls.__dict__.get(name, MISSING)
        f = value if isinstance(value, Field) else Field(default=value)
        f.name = name
        if isinstance(f.default, (list, dict, set)):
            raise ValueError(f"mutable default {type(f.default)} for field {name} "
                             "is not allowed: use default_factory")
        if f.default is MISSING:
            if isinstance(value, Field):  # dataclasses leaves no Field on the class
                delattr(cls, name)
        else:
            setattr(cls, name, f.default)
        by_name[name] = f  # a base's field declared again keeps its place
    return list(by_name.values())


def _check_order(flds) -> None:
    """A field without a default after one with: as a def's parameters would be."""
    seen_default = False
    for f in flds:
        if f.default is not MISSING or f.default_factory is not MISSING:
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")


def _init(cls, flds, frozen: bool):
    """__init__(self, *fields): positional or by keyword, then defaults and
    factories, then __post_init__."""
    names = tuple(f.name for f in flds)
    position = {name: i for i, name in enumerate(names)}
    defaults = tuple(zip(names, (f.default for f in flds), (f.default_factory for f in flds)))
    assign = object.__setattr__ if frozen else setattr  # frozen: past our own __setattr__
    post_init = hasattr(cls, "__post_init__")
    where = f"{cls.__qualname__}.__init__()"

    def __init__(self, *args, **kwargs):
        if len(args) > len(names):
            raise TypeError(f"{where} takes {len(names) + 1} positional arguments "
                            f"but {len(args) + 1} were given")
        values = list(args) + [MISSING] * (len(names) - len(args))
        for key, value in kwargs.items():
            i = position.get(key)
            if i is None:
                raise TypeError(f"{where} got an unexpected keyword argument {key!r}")
            if i < len(args):
                raise TypeError(f"{where} got multiple values for argument {key!r}")
            values[i] = value
        for (name, default, factory), value in zip(defaults, values):
            if value is MISSING:
                if default is not MISSING:
                    value = default
                elif factory is not MISSING:
                    value = factory()
                else:
                    raise TypeError(f"{where} missing required argument: {name!r}")
            assign(self, name, value)
        if post_init:
            self.__post_init__()

    return __init__


def _values_of(names: tuple):
    """-> f(obj): the tuple of obj's NAMES, read in C by attrgetter."""
    if len(names) > 1:
        return attrgetter(*names)
    if names:
        one = attrgetter(names[0])
        return lambda obj: (one(obj),)
    return lambda obj: ()


def _methods(cls, flds, frozen: bool, eq: bool) -> dict:
    """The methods dataclasses would write for CLS, as closures over its
    fields: no source is compiled (see the module's docstring)."""
    names = tuple(f.name for f in flds)
    field_names = frozenset(names)
    shown_values = _values_of(names)
    compared = _values_of(tuple(f.name for f in flds if f.compare))

    def __repr__(self):
        shown = ", ".join(f"{name}={value!r}" for name, value in zip(names, shown_values(self)))
        return f"{self.__class__.__qualname__}({shown})"

    methods = {"__init__": _init(cls, flds, frozen), "__repr__": __repr__}
    if eq:
        def __eq__(self, other):
            if other.__class__ is self.__class__:
                return compared(self) == compared(other)
            return NotImplemented

        methods["__eq__"] = __eq__
    if eq and frozen:
        def __hash__(self):
            return hash(compared(self))

        methods["__hash__"] = __hash__
    if frozen:
        def __setattr__(self, name, value):
            if type(self) is cls or name in field_names:
                raise FrozenInstanceError(f"cannot assign to field {name!r}")
            super(cls, self).__setattr__(name, value)

        def __delattr__(self, name):
            if type(self) is cls or name in field_names:
                raise FrozenInstanceError(f"cannot delete field {name!r}")
            super(cls, self).__delattr__(name)

        methods["__setattr__"], methods["__delattr__"] = __setattr__, __delattr__
    return methods


def _process(cls, frozen: bool, eq: bool):
    flds = _collect(cls)
    _check_order(flds)
    methods = _methods(cls, flds, frozen, eq)
    # A class's own __hash__, not the None Python gives a class that defines __eq__.
    own_hash = "__hash__" in cls.__dict__ and not (
        cls.__dict__["__hash__"] is None and "__eq__" in cls.__dict__)
    for name in ("__init__", "__repr__", "__eq__", "__setattr__", "__delattr__"):
        if name in methods and name not in cls.__dict__:  # a method of the class's own stays
            _attach(cls, name, methods[name])
    if eq and not own_hash:
        if frozen:
            _attach(cls, "__hash__", methods["__hash__"])
        else:
            cls.__hash__ = None  # equal by value but mutable: unhashable
    setattr(cls, FIELDS, tuple(flds))
    return cls


def _attach(cls, name, fn):
    fn.__qualname__ = f"{cls.__qualname__}.{name}"
    fn.__module__ = cls.__module__
    setattr(cls, name, fn)


def dataclass(cls=None, /, *, frozen: bool = False, eq: bool = True):
    """@dataclass, @dataclass(frozen=True), @dataclass(eq=False)."""
    def wrap(c):
        return _process(c, frozen, eq)

    return wrap if cls is None else wrap(cls)


def make_dataclass(cls_name: str, fields_: list, *, namespace: dict | None = None, **options):
    """A record class from [(name, type, Field)] rows, as dataclasses.make_dataclass."""
    ns = dict(namespace or {})
    ns["__annotations__"] = {name: type_ for name, type_, _ in fields_}
    for name, _, f in fields_:
        ns[name] = f
    ns["__module__"] = sys._getframe(1).f_globals.get("__name__", __name__)
    return dataclass(type(cls_name, (), ns), **options)


def replace(obj, **changes):
    """A copy of the record OBJ with CHANGES, made through its __init__."""
    for f in fields(obj):
        changes.setdefault(f.name, getattr(obj, f.name))
    return obj.__class__(**changes)


def asdict(obj):
    """The record OBJ as plain dicts, lists and values (records within too)."""
    if hasattr(type(obj), FIELDS):
        return {f.name: asdict(getattr(obj, f.name)) for f in fields(obj)}
    if isinstance(obj, tuple) and hasattr(obj, "_fields"):  # a namedtuple
        return type(obj)(*(asdict(v) for v in obj))
    if isinstance(obj, (list, tuple)):
        return type(obj)(asdict(v) for v in obj)
    if isinstance(obj, dict):
        return type(obj)((asdict(k), asdict(v)) for k, v in obj.items())
    return obj
