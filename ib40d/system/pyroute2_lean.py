# SPDX-License-Identifier: GPL-2.0-or-later
"""pyroute2's IPRoute and NetlinkError without the rest of pyroute2.

`import pyroute2` runs the package's __init__, which imports every class the
package offers (0.7.2 loads its 64 entry points; 0.7.7 imports them by
name): NDB, IPDB, the CLI, asyncio, unittest.mock... whatever one asks for.
ib40 writes through IPRoute only. Here the package module is created from
its spec but not executed, so importing `pyroute2.iproute.linux` runs that
module and what it imports, and nothing else. `pyroute2.lab` (a mixin that
wraps every method in unittest.mock when a test suite asks for it) is given
as a plain base class for the duration of the import: ib40 never mocks.
On this machine (0.7.2): 0.12 s and 33 MB peak for the package, 0.04 s and
15 MB this way.

Traffic control is imported when it is first used. IPRoute's module and
its message parser take `tcmsg` and the tc plugins by name at import, and
importing them (every qdisc, class, filter and action kind pyroute2 knows)
was up to a fifth of what was left: TCMSG_MODULE below says more.

pyroute2.config, which IPRoute's modules import, records the platform at
import: platform.uname() (its processor field runs `uname -p`) and
platform.architecture() (runs `file -b` on the interpreter). That is two
programs started by every process that imports it, each apply's child
here, for values ib40's writes never read. During the lean import PATH
holds no directory, so neither program is found and platform answers from
what Python knows itself: the same pointer size ("64bit"), and no processor
name (which Debian's `uname -p` does not give either: "unknown").

If anything in that differs from what this expects (another pyroute2
layout), the partial import is undone and the plain `import pyroute2` used;
`how` says which was done, and a debug log line why. IB40_PYROUTE2=full
forces the plain import (tests run both).

Whoever later asks the package for anything else (`pyroute2.NDB`) gets the
package's own __init__ run then, on the same module: nothing breaks for a
caller that expects the whole package.
"""

from __future__ import annotations

import collections.abc
import importlib
import importlib.util
import logging
import os
import sys
import types

log = logging.getLogger(__name__)

# What ib40 uses, and the modules they live in (0.7.2 to 0.7.12 alike).
IPROUTE_MODULE = "pyroute2.iproute.linux"
EXCEPTIONS_MODULE = "pyroute2.netlink.exceptions"
LAB_MODULE = "pyroute2.lab"
# Given lazily (_tc_on_first_use). The CPU of the lean import, in chroots of
# the lab's images on this machine (median of 21, taking turns): Debian 13
# (pyroute2 0.7.7) 51 ms with it, 40 ms without; Debian 12 (0.7.2) 35 ms
# and 31 ms. ib40 sends no tc request and its IPRoute socket joins no
# multicast group, so no tc message reaches it unasked; whoever does use tc
# through this IPRoute (or the whole package later) gets the real module.
TCMSG_MODULE = "pyroute2.netlink.rtnl.tcmsg"


def _tc_on_first_use() -> types.ModuleType:
    """A stand-in for TCMSG_MODULE whose two names reach the real module
    when used: `tcmsg(...)` makes an instance of the real class, `plugins`
    reads the real dict. The real module is imported at that first use."""
    stand_in = types.ModuleType(TCMSG_MODULE)

    def real():
        module = importlib.import_module(TCMSG_MODULE)
        if module is stand_in:  # only while the lean import runs, which uses neither
            raise ImportError(f"{TCMSG_MODULE} used during the lean import")
        return module

    class tcmsg:  # noqa: N801 (pyroute2's name)
        def __new__(cls, *args, **kwargs):
            return real().tcmsg(*args, **kwargs)

    class Plugins(collections.abc.Mapping):
        def __getitem__(self, kind):
            return real().plugins[kind]

        def __iter__(self):
            return iter(real().plugins)

        def __len__(self):
            return len(real().plugins)

    stand_in.tcmsg = tcmsg
    stand_in.plugins = Plugins()
    return stand_in


def _lean():
    """-> (IPRoute, NetlinkError) imported without the package's __init__."""
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("pyroute2 is not a package here")
    package = importlib.util.module_from_spec(spec)  # __path__ set, __init__ not run
    lab = types.ModuleType(LAB_MODULE)
    lab.LAB_API = type("LAB_API", (), {})  # the real one, with use_mock off, adds nothing
    tc = _tc_on_first_use()
    sys.modules["pyroute2"] = package
    sys.modules[LAB_MODULE] = lab
    sys.modules[TCMSG_MODULE] = tc
    path = os.environ.get("PATH")
    os.environ["PATH"] = os.devnull  # not a directory: no program is found (see above)
    try:
        iproute = importlib.import_module(IPROUTE_MODULE)
        exceptions = importlib.import_module(EXCEPTIONS_MODULE)
    finally:
        if path is None:
            del os.environ["PATH"]
        else:
            os.environ["PATH"] = path
        # Anyone who imports pyroute2.lab or the tc module later gets the real one.
        if sys.modules.get(LAB_MODULE) is lab:
            del sys.modules[LAB_MODULE]
        package.__dict__.pop("lab", None)
        if sys.modules.get(TCMSG_MODULE) is tc:  # found there, never set on its package
            del sys.modules[TCMSG_MODULE]
    IPRoute, NetlinkError = iproute.IPRoute, exceptions.NetlinkError
    if not (isinstance(IPRoute, type) and callable(getattr(IPRoute, "link", None))
            and callable(getattr(IPRoute, "addr", None))):
        raise ImportError(f"{IPROUTE_MODULE}.IPRoute is not the class ib40 writes through")
    if not (isinstance(NetlinkError, type) and issubclass(NetlinkError, Exception)):
        raise ImportError(f"{EXCEPTIONS_MODULE}.NetlinkError is not an exception class")
    package.__getattr__ = _whole_package(package, spec)
    return IPRoute, NetlinkError


def _whole_package(package, spec):
    """The package's module __getattr__: the first name it lacks runs its
    own __init__ (once), as a plain `import pyroute2` would have."""

    def complete(name):
        if name.startswith("__") or importlib.util.find_spec(f"pyroute2.{name}") is not None:
            # A dunder probe, or a submodule: the import system imports
            # those itself when the attribute is missing.
            raise AttributeError(name)
        package.__dict__.pop("__getattr__", None)
        spec.loader.exec_module(package)
        return getattr(package, name)

    return complete


def _full():
    import pyroute2
    from pyroute2.netlink.exceptions import NetlinkError

    return pyroute2.IPRoute, NetlinkError


def _load():
    if os.environ.get("IB40_PYROUTE2") == "full":
        return "full (IB40_PYROUTE2=full)", *_full()
    if "pyroute2" in sys.modules:
        return "full (already imported)", *_full()
    before = set(sys.modules)
    try:
        return "lean", *_lean()
    except Exception as e:  # any layout we don't know: undo, then the plain import
        for name in set(sys.modules) - before:
            if name == "pyroute2" or name.startswith("pyroute2."):
                del sys.modules[name]
        log.debug("pyroute2: importing only %s failed (%s: %s); importing the whole package",
                  IPROUTE_MODULE, type(e).__name__, e)
        return f"full ({type(e).__name__}: {e})", *_full()


how, IPRoute, NetlinkError = _load()
log.debug("pyroute2 imported %s", how)
