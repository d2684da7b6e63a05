"""Lazy package exports: ``from hyperzoo.ghn import GHN`` works, ``import hyperzoo.ghn`` imports no torch.

A package's ``__init__`` lists its public imports inside ``if TYPE_CHECKING:`` (so that type checkers and
readers see them) and ends with::

    __getattr__, __dir__ = lazy_exports(__name__, __file__, __all__)

On first access of an exported name, :func:`lazy_exports` reads the ``from X import Y`` statements of that
``TYPE_CHECKING`` block from the package's source, imports ``X`` and returns ``Y`` (cached in the package). A
name that is not exported but is a submodule (``hyperzoo.graphs.store``) is imported as before. This keeps
``hyperzoo --help`` and every subcommand's ``--help`` free of torch, torchvision and Lightning.
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

__all__ = ["lazy_exports", "type_checking_imports"]


def type_checking_imports(package: str, source_file: str) -> dict[str, tuple[str, str]]:
    """``{exported name: (module, attribute)}`` of the ``from ... import ...`` statements under ``if TYPE_CHECKING:``.

    Args:
        package: the package's ``__name__`` (resolves relative imports).
        source_file: the package's ``__file__``.
    """
    tree = ast.parse(Path(source_file).read_text(encoding="utf-8"), filename=source_file)
    out: dict[str, tuple[str, str]] = {}
    for node in tree.body:
        if not (isinstance(node, ast.If) and _is_type_checking(node.test)):
            continue
        for stmt in ast.walk(node):
            if isinstance(stmt, ast.ImportFrom):
                base = "." * stmt.level + (stmt.module or "")
                module = importlib.util.resolve_name(base, package) if stmt.level else base
                for alias in stmt.names:
                    out[alias.asname or alias.name] = (module, alias.name)
    return out


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def lazy_exports(
    package: str, source_file: str, names: Sequence[str]
) -> tuple[Callable[[str], Any], Callable[[], list[str]]]:
    """The module ``__getattr__`` and ``__dir__`` of a package whose exports are imported on first use.

    Args:
        package: the package's ``__name__``.
        source_file: the package's ``__file__`` (its ``TYPE_CHECKING`` imports say where each name lives).
        names: the package's ``__all__``.
    """
    table: dict[str, tuple[str, str]] = {}

    def __getattr__(name: str) -> Any:
        if not table:
            table.update(type_checking_imports(package, source_file))
        if name in table:
            module, attr = table[name]
            value = getattr(importlib.import_module(module), attr)
            setattr(sys.modules[package], name, value)  # later lookups skip __getattr__
            return value
        if not name.startswith("__") and importlib.util.find_spec(f"{package}.{name}") is not None:
            return importlib.import_module(f"{package}.{name}")  # submodule attribute access, as before
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__() -> list[str]:
        return sorted(set(names) | set(vars(sys.modules[package])))

    return __getattr__, __dir__
