# SPDX-License-Identifier: GPL-2.0-or-later
"""The part of the standard library's dataclasses that ib40 uses, made cheap
to import: `@dataclass` (plain, frozen=True, eq=False), `field`
(default, default_factory, compare), `replace`, `asdict`, `fields` and
`make_dataclass`, each meaning what it means there.

Why not dataclasses itself: ib40d.service starts at every boot, and half of
what importing its modules cost was dataclasses. Importing it pulls in
inspect (and with it ast, dis, tokenize), and each class it makes runs an
exec() per generated method plus inspect.signature() for a docstring. Here
a class costs one exec() and the module imports nothing. Measured with
`python3 -X importtime -c 'import ib40d.commands.cli, ib40d.commands.daemon'`
on Debian 12 (Python 3.11) and 13 (3.13) alike: 11 ms to import dataclasses
and 11 ms for the daemon's 28 classes, of 42-45 ms in all.

The generated methods are the ones dataclasses writes: __init__ (fields in
declaration order, base classes' first; then __post_init__ if there is one),
__repr__, __eq__ unless eq=False, and for frozen classes __setattr__ and
__delattr__ that refuse and a __hash__ of the compared fields; a class with
__eq__ that is not frozen is unhashable. A method the class defines itself
is kept. tests/unit/test_records.py holds the two side by side.
"""

from __future__ import annotations

import sys

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


def _source(cls, flds, frozen: bool, eq: bool) -> str:
    """The source of the generated methods, all made by one exec()."""
    params, body = [], []
    seen_default = False
    for f in flds:
        if f.default is not MISSING:
            params.append(f"{f.name}=_dflt_{f.name}")
            seen_default = True
        elif f.default_factory is not MISSING:
            params.append(f"{f.name}=_HAS_FACTORY")
            seen_default = True
        elif seen_default:
            raise TypeError(f"non-default argument {f.name!r} follows default argument")
        else:
            params.append(f.name)
        value = f.name if f.default_factory is MISSING else \
            f"_factory_{f.name}() if {f.name} is _HAS_FACTORY else {f.name}"
        body.append(f"_object_setattr(self, {f.name!r}, {value})" if frozen
                    else f"self.{f.name} = {value}")
    if hasattr(cls, "__post_init__"):
        body.append("self.__post_init__()")
    lines = [f"def __init__(self, {', '.join(params)}):" if params else "def __init__(self):"]
    lines += [f"    {b}" for b in body or ["pass"]]
    shown = ", ".join(f"{f.name}={{self.{f.name}!r}}" for f in flds)
    lines += ["def __repr__(self):",
              f"    return f\"{{self.__class__.__qualname__}}({shown})\""]
    compared = "".join(f"self.{f.name}," for f in flds if f.compare)
    if eq:
        lines += ["def __eq__(self, other):",
                  "    if other.__class__ is self.__class__:",
                  f"        return ({compared}) == ({compared.replace('self.', 'other.')})",
                  "    return NotImplemented"]
    if frozen:
        lines += ["def __setattr__(self, name, value):",
                  "    if type(self) is _cls or name in _names:",
                  "        raise FrozenInstanceError(f'cannot assign to field {name!r}')",
                  "    super(_cls, self).__setattr__(name, value)",
                  "def __delattr__(self, name):",
                  "    if type(self) is _cls or name in _names:",
                  "        raise FrozenInstanceError(f'cannot delete field {name!r}')",
                  "    super(_cls, self).__delattr__(name)"]
        if eq:
            lines += ["def __hash__(self):", f"    return hash(({compared}))"]
    return "\n".join(lines)


def _process(cls, frozen: bool, eq: bool):
    flds = _collect(cls)
    namespace = {"_object_setattr": object.__setattr__, "_HAS_FACTORY": MISSING, "_cls": cls,
                 "_names": frozenset(f.name for f in flds), "FrozenInstanceError": FrozenInstanceError}
    for f in flds:
        namespace[f"_dflt_{f.name}"] = f.default
        namespace[f"_factory_{f.name}"] = f.default_factory
    exec(_source(cls, flds, frozen, eq), namespace)  # noqa: S102 - code made above from field names
    # A class's own __hash__, not the None Python gives a class that defines __eq__.
    own_hash = "__hash__" in cls.__dict__ and not (
        cls.__dict__["__hash__"] is None and "__eq__" in cls.__dict__)
    for name in ("__init__", "__repr__", "__eq__", "__setattr__", "__delattr__"):
        if name in namespace and name not in cls.__dict__:  # a method of the class's own stays
            _attach(cls, name, namespace[name])
    if eq and not own_hash:
        if frozen:
            _attach(cls, "__hash__", namespace["__hash__"])
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
