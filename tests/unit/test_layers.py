# SPDX-License-Identifier: GPL-2.0-or-later
"""Imports go one way: commands -> system -> core. Read from the sources
with ast (module-level and function-level imports alike), so a lazy import
inside a function cannot slip a layer."""
import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "ib40d"
LAYERS = ("core", "system", "commands")
# What the pure core must not reach for: sockets, processes, D-Bus, udev,
# file descriptors and signals belong to the system layer.
IO_MODULES = {"os", "socket", "subprocess", "pyroute2", "pyudev", "pystemd", "sdnotify", "fcntl", "select",
              "selectors", "signal", "shutil", "tempfile", "ctypes"}
IO_CALLS = {"open"}


def module_name(path: Path) -> str:
    rel = path.relative_to(PACKAGE.parent).with_suffix("")
    parts = rel.parts[:-1] if rel.name == "__init__" else rel.parts
    return ".".join(parts)


def imports(tree: ast.AST, name: str) -> list[tuple[str, bool, int]]:
    """(imported module, at module level?, line) for every import in TREE.
    `from ib40d.core import x` counts as ib40d.core.x when that is a module."""
    found = []
    top = set(map(id, tree.body))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top, node.lineno) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:  # relative: resolve against this module's package
                base = name.split(".")[:-node.level] + ([node.module] if node.module else [])
                module = ".".join(base)
            else:
                module = node.module
            for a in node.names:
                sub = f"{module}.{a.name}"
                target = sub if (PACKAGE.parent / (sub.replace(".", "/") + ".py")).exists() else module
                found.append((target, id(node) in top, node.lineno))
    return found


def sources(root: Path = PACKAGE) -> dict[str, ast.AST]:
    return {module_name(p): ast.parse(p.read_text(encoding="utf-8"), str(p)) for p in sorted(root.rglob("*.py"))}


def layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 2 and parts[0] == "ib40d" and parts[1] in LAYERS else None


def violations(trees: dict[str, ast.AST]) -> list[str]:
    bad = []
    for name, tree in trees.items():
        mine = layer(name)
        for target, _, line in imports(tree, name):
            theirs = layer(target)
            where = f"{name}:{line} imports {target}"
            if mine == "core":
                if target.startswith("ib40d") and theirs != "core" and target != "ib40d":
                    bad.append(f"{where}: core imports only core")
                if target.split(".")[0] in IO_MODULES:
                    bad.append(f"{where}: core does no I/O")
            elif mine == "system" and theirs == "commands":
                bad.append(f"{where}: system never imports commands")
        if mine == "core":
            for node in ast.walk(tree):
                if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in IO_CALLS:
                    bad.append(f"{name}:{node.lineno} calls {node.func.id}(): core does no I/O")
    return bad


def cycles(trees: dict[str, ast.AST]) -> list[list[str]]:
    graph = {name: sorted({t for t, top, _ in imports(tree, name) if top and t in trees and t != name})
             for name, tree in trees.items()}
    found, state = [], {}

    def visit(node, path):
        state[node] = "open"
        for nxt in graph[node]:
            if state.get(nxt) == "open":
                found.append(path[path.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, path + [nxt])
        state[node] = "done"

    for name in graph:
        if name not in state:
            visit(name, [name])
    return found


def test_every_module_is_in_a_layer():
    loose = [n for n in sources() if n not in ("ib40d", "ib40d.__main__") and layer(n) is None
             and n not in {f"ib40d.{x}" for x in LAYERS}]
    assert loose == [], "put each module in ib40d/core, ib40d/system or ib40d/commands"


def test_imports_go_one_way():
    assert violations(sources()) == []


def test_no_import_cycle_among_module_level_imports():
    assert cycles(sources()) == []


def test_core_modules_are_found():
    # the walk above would pass on an empty tree
    trees = sources()
    assert {"ib40d.core.config", "ib40d.core.plan", "ib40d.system.netlink", "ib40d.commands.cli"} <= set(trees)


@pytest.mark.parametrize("module, line, want", [
    ("ib40d.core.x", "from ib40d.system.sysroot import SysRoot", "core imports only core"),
    ("ib40d.core.x", "def f():\n    from ib40d.commands import cli", "core imports only core"),
    ("ib40d.core.x", "import socket", "core does no I/O"),
    ("ib40d.core.x", "def f():\n    import subprocess", "core does no I/O"),
    ("ib40d.core.x", "def f(p):\n    return open(p).read()", "core does no I/O"),
    ("ib40d.system.x", "def f():\n    from ib40d.commands.apply import report", "system never imports commands"),
])
def test_the_checks_catch_a_bad_import(module, line, want):
    [problem] = violations({module: ast.parse(line)})
    assert want in problem


def test_the_cycle_check_catches_a_cycle():
    a_to_b = ast.parse("import ib40d.core.b")
    assert cycles({"ib40d.core.a": a_to_b, "ib40d.core.b": ast.parse("import ib40d.core.a")}) == [
        ["ib40d.core.a", "ib40d.core.b", "ib40d.core.a"]]
    # a function-level import is how a cycle is broken: not one
    assert cycles({"ib40d.core.a": a_to_b, "ib40d.core.b": ast.parse("def f():\n    import ib40d.core.a")}) == []
