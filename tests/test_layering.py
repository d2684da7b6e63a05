"""The import layering of hyperzoo, checked from the source (``ast``), module-level and function-level imports alike.

One table, :data:`ALLOWED`, says which parts of hyperzoo each part may import; a part is a subpackage
(``hyperzoo.ghn``) or a top-level module (``hyperzoo.cli``). The *base* modules (errors, registry, io, ...) may be
imported from anywhere and import only each other. Every subpackage's ``__init__`` docstring repeats its row in a
"May import:" paragraph, and a test keeps the two in sync. The layers, bottom to top:

- base: ``errors``, ``registry``, ``io``, ``progress``, ``tables``, ``cli_types``, ``cli_flags``, ``config_yaml``,
  ``bench``, ``_lazy``, ``_procs``
- low: ``nets``; ``graphs``, ``layers`` (both build on ``nets``); ``data`` (graph datasets build on ``graphs``)
- ``hypernets`` (what every hypernetwork shares), then the hypernetworks ``ghn`` and ``smash``
- the model zoo ``zoo``, then the methods that use it, ``merge`` and ``stitch`` (which uses ``merge``'s solvers)
- ``lightning`` (a LightningModule per method), ``demo``, then ``cli`` at the very top

Private names (``_name``) are not imported from another module, inside a subpackage or across subpackages: a name
another module needs is public (listed in its module's ``__all__`` or at least without the underscore). Private
*modules* (``hyperzoo._lazy``) are hyperzoo-internal and may be imported by any hyperzoo module. Tests may import
private names to test them.

What the checks cannot see: imports by string (``importlib.import_module``), such as the registry sources in
:data:`hyperzoo.nets.factory.MODEL_SOURCES`; that is how a low package names modules above it that add entries to
its registry without importing them.
"""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "hyperzoo"

BASE = frozenset(
    {"errors", "registry", "io", "progress", "tables", "cli_types", "cli_flags", "config_yaml", "bench", "_lazy"}
    | {"_procs"}  # (two lines only for the line length)
)
LOW = frozenset({"nets", "graphs", "layers", "data"})

#: part -> the parts (besides itself and the base modules) it may import
ALLOWED: dict[str, frozenset[str]] = {
    "nets": frozenset(),
    "graphs": frozenset({"nets"}),
    "layers": frozenset({"nets"}),
    "data": frozenset({"nets", "graphs"}),
    "hypernets": LOW,
    "ghn": LOW | {"hypernets"},
    "smash": LOW | {"hypernets"},
    "zoo": LOW | {"hypernets"},
    "merge": LOW | {"hypernets", "zoo"},
    "stitch": LOW | {"hypernets", "zoo", "merge"},
    "lightning": LOW | {"hypernets", "ghn", "smash", "zoo", "merge", "stitch"},
    "demo": LOW | {"hypernets", "ghn", "smash", "zoo", "merge", "stitch", "lightning"},
    "cli": LOW | {"hypernets", "ghn", "smash", "zoo", "merge", "stitch", "lightning", "demo"},
    # the package itself re-exports the public API lazily (names resolved on first use)
    "hyperzoo": LOW | {"hypernets", "ghn", "smash", "zoo", "merge", "stitch", "lightning"},
    **{name: frozenset() for name in BASE},
}

# Imports that break the table, each with its reason (none left); an entry that no longer matches an import fails
# test_allowlists_hold_only_live_entries, so a stale one is noticed. (importing module, imported module)
LAYERING_ALLOWLIST: dict[tuple[str, str], str] = {}

# Private names imported from another module (importing module, defining module, name): none left; an entry needs
# a reason, as in the tables above.
PRIVATE_ALLOWLIST: dict[tuple[str, str, str], str] = {}

# Modules that import each other through function-level (deferred) imports. Python runs them, but each is a knot
# to untie. (sorted module names of the cycle)
CYCLE_ALLOWLIST: dict[tuple[str, ...], str] = {}


@dataclass(frozen=True)
class Import:
    """One imported hyperzoo module (``target``), and the name taken from it (``None``: the module itself)."""

    source: str
    line: int
    target: str
    name: str | None
    module_level: bool  # runs when ``source`` is imported (not inside a function, not under TYPE_CHECKING)
    runs: bool  # runs at all (not under TYPE_CHECKING)


def _module_files() -> dict[str, tuple[Path, bool]]:
    out = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(ROOT).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return out


MODULES = _module_files()


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


Walked = Iterator[tuple[ast.Import | ast.ImportFrom, bool, bool]]


def _walk(body: list[ast.AST], module_level: bool, runs: bool) -> Walked:
    """``(import statement, module_level, runs)`` of every import in ``body``, nested statements included."""
    for node in body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node, module_level, runs
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            yield from _walk(list(node.body), False, runs)
        elif isinstance(node, ast.If) and _is_type_checking(node.test):
            yield from _walk(list(node.body), False, False)
            yield from _walk(list(node.orelse), module_level, runs)
        else:
            for field in ("body", "orelse", "finalbody", "handlers"):
                inner = getattr(node, field, None)
                if isinstance(inner, list):
                    yield from _walk(inner, module_level, runs)


def imports_of(module: str) -> list[Import]:
    """Every hyperzoo import of ``module``: module level, in functions and classes, under TYPE_CHECKING."""
    path, is_package = MODULES[module]
    out = []
    for node, module_level, runs in _walk(list(ast.parse(path.read_text(encoding="utf-8")).body), True, True):
        if isinstance(node, ast.Import):
            pairs = [(alias.name, None) for alias in node.names]
        else:
            if node.level:
                base = module.split(".") if is_package else module.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                origin = ".".join([*base, *([node.module] if node.module else [])])
            else:
                origin = node.module or ""
            pairs = [
                (f"{origin}.{a.name}", None) if f"{origin}.{a.name}" in MODULES else (origin, a.name)
                for a in node.names
            ]
        for target, name in pairs:
            if target == "hyperzoo" or target.startswith("hyperzoo."):
                out.append(Import(module, node.lineno, target, name, module_level, runs))
    return out


ALL_IMPORTS = [imp for module in MODULES for imp in imports_of(module)]


#: modules of a subpackage that are the command layer (argument parsing and printing): they sit with ``cli``
COMMAND_LAYER = frozenset({"commands", "generate_cli"})


def part(module: str) -> str:
    """The unit of the layering table: ``hyperzoo.ghn.decoder`` -> ``ghn``, ``hyperzoo.cli`` -> ``cli``.

    A subpackage's ``commands`` module (``hyperzoo.zoo.commands``) is part of the command layer, ``cli``.
    """
    pieces = module.split(".")
    if len(pieces) > 2 and pieces[-1] in COMMAND_LAYER:
        return "cli"
    return pieces[1] if len(pieces) > 1 else "hyperzoo"


def _allowed(source: str, target: str, name: str | None) -> bool:
    src, dst = part(source), part(target)
    if src == dst or dst in BASE:
        return True
    if dst == "hyperzoo":  # `import hyperzoo` (its location, version): the package, not what it re-exports
        return name is None or name.startswith("__") or src in ("cli", "hyperzoo")
    return dst in ALLOWED[src]


def test_every_part_is_in_the_table():
    parts = {part(m) for m in MODULES}
    assert parts <= set(ALLOWED), f"add these to ALLOWED in {__file__}: {sorted(parts - set(ALLOWED))}"


def test_the_table_has_no_cycle():
    order: list[str] = []
    remaining = dict(ALLOWED)
    while remaining:  # peel the parts whose allowed imports are all placed already
        ready = [p for p, deps in remaining.items() if deps <= set(order)]
        assert ready, f"the layering table has a cycle among {sorted(remaining)}"
        order += sorted(ready)
        for p in ready:
            del remaining[p]


def test_imports_follow_the_layering():
    bad = [
        f"{imp.source}:{imp.line} imports {imp.target}{'.' + imp.name if imp.name else ''}"
        for imp in ALL_IMPORTS
        if not _allowed(imp.source, imp.target, imp.name) and (imp.source, imp.target) not in LAYERING_ALLOWLIST
    ]
    assert not bad, "imports against the layering table (tests/test_layering.py):\n" + "\n".join(bad)


def test_no_private_names_across_modules():
    bad = [
        f"{imp.source}:{imp.line} imports the private {imp.target}.{imp.name}"
        for imp in ALL_IMPORTS
        if imp.name is not None
        and imp.name.startswith("_")
        and not imp.name.startswith("__")
        and imp.target != imp.source
        and (imp.source, imp.target, imp.name) not in PRIVATE_ALLOWLIST
    ]
    assert not bad, "make these names public (or move the code that needs them):\n" + "\n".join(bad)


def test_no_private_attributes_of_imported_modules():
    """``module._name`` on a hyperzoo module bound by an import is a private import in disguise."""
    bad = []
    for module, (path, _) in MODULES.items():
        tree = ast.parse(path.read_text(encoding="utf-8"))
        aliases = {}
        for imp in imports_of(module):
            if imp.name is None and imp.target in MODULES:
                aliases[imp.target.rsplit(".", 1)[-1]] = imp.target
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom | ast.Import):
                for alias in node.names:
                    if alias.asname and alias.name.split(".")[-1] in aliases:
                        aliases[alias.asname] = aliases.pop(alias.name.split(".")[-1])
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
                and aliases[node.value.id] != module
            ):
                bad.append(f"{module}:{node.lineno} uses {aliases[node.value.id]}.{node.attr}")
    assert not bad, "\n".join(bad)


def _cycles(module_level_only: bool) -> list[tuple[str, ...]]:
    graph: dict[str, set[str]] = {m: set() for m in MODULES}
    for imp in ALL_IMPORTS:
        if not imp.runs or (module_level_only and not imp.module_level):
            continue
        pieces = imp.target.split(".")
        own_parents = {".".join(imp.source.split(".")[:i]) for i in range(1, imp.source.count(".") + 1)}
        for i in range(2, len(pieces) + 1):  # importing a.b.c runs a.b too (unless a.b is one's own parent)
            name = ".".join(pieces[:i])
            if name in MODULES and name != imp.source and (name == imp.target or name not in own_parents):
                graph[imp.source].add(name)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[tuple[str, ...]] = []

    def visit(v: str) -> None:  # Tarjan's strongly connected components (recursion depth: the import chain)
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(tuple(sorted(component)))

    for v in graph:
        if v not in index:
            visit(v)
    return found


def test_no_import_cycles_at_import_time():
    assert _cycles(module_level_only=True) == []


def test_no_import_cycles_through_deferred_imports():
    cycles = [c for c in _cycles(module_level_only=False) if c not in CYCLE_ALLOWLIST]
    assert not cycles, f"modules that import each other (counting imports inside functions): {cycles}"


def test_allowlists_hold_only_live_entries():
    live_layering = {(imp.source, imp.target) for imp in ALL_IMPORTS}
    live_private = {(imp.source, imp.target, imp.name) for imp in ALL_IMPORTS}
    live_cycles = set(_cycles(module_level_only=False))
    stale = [k for k in LAYERING_ALLOWLIST if k not in live_layering]
    stale += [k for k in PRIVATE_ALLOWLIST if k not in live_private]
    stale += [k for k in CYCLE_ALLOWLIST if k not in live_cycles]
    assert not stale, f"fixed: remove these from the allowlists in {__file__}: {stale}"


SUBPACKAGES = sorted(m for m, (_, is_package) in MODULES.items() if m.count(".") == 1 and is_package)


@pytest.mark.parametrize("package", SUBPACKAGES)
def test_package_docstring_says_what_it_owns_and_may_import(package):
    path, _ = MODULES[package]
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8"))) or ""
    match = re.search(r"May import:(.*?)(?:\n\n|$)", doc, flags=re.S)
    assert match, f"{path}: the docstring needs a 'May import:' paragraph (what the package may import)"
    named = set(re.findall(r"hyperzoo\.(\w+)", match.group(1)))
    assert named == set(ALLOWED[part(package)]), (
        f"{path}: 'May import:' names {sorted(named)}, tests/test_layering.py allows {sorted(ALLOWED[part(package)])}"
    )
    assert len(doc.split("May import:")[0].strip()) > 40, f"{path}: say what the package owns"


def test_model_names_are_registered_in_one_place_without_a_cycle():
    """``hyperzoo.nets`` imports nothing above it, yet lists the models of ``hyperzoo.layers``, in either order."""
    code = (
        "import sys\n"
        "first = sys.argv[1]\n"
        "__import__(first)\n"
        "assert 'hyperzoo.layers' in sys.modules or first == 'hyperzoo.nets'\n"
        "import hyperzoo.nets as nets\n"
        "if first == 'hyperzoo.nets': assert 'hyperzoo.layers' not in sys.modules, 'nets imported layers'\n"
        "names = nets.list_models()\n"
        "assert {'resnet20', 'resnet20_laurel_rw', 'resnet20_gcr4', 'mgwrn16_2', 'deepnets1m_darts'} <= set(names)\n"
        "assert 'hyperzoo.layers' in sys.modules\n"
        "assert not [m for m in nets.MODEL_SOURCES if m not in sys.modules]\n"
    )
    for first in ("hyperzoo.nets", "hyperzoo.layers"):
        run = subprocess.run(
            [sys.executable, "-c", code, first], cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
        )
        assert run.returncode == 0, run.stderr[-2000:]
