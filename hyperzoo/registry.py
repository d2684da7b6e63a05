"""One registry for everything a user names by string (target networks, hypernetwork variants, ...).

A :class:`Registry` maps names to factory functions. Names are listed with shell-style patterns
(``list("resnet*")``), a duplicate registration is an error, and an unknown name raises
:class:`~hyperzoo.errors.UnknownNameError` with the closest registered names.

A registry may name its *sources*: the modules whose import registers its entries. They are imported on the first
lookup, so the registry's own package never imports a package above it that adds entries (``hyperzoo.nets`` lists
``hyperzoo.layers.laurel`` among the sources of its model registry instead of importing it).
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import threading
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from hyperzoo.errors import UnknownNameError

__all__ = ["Registry", "RegistryEntry"]

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class RegistryEntry(Generic[F]):
    """A registered factory with its metadata.

    Args:
        name: the registered name.
        fn: the factory.
        family: a coarse group the entry belongs to (``"cifar_resnet"``, ``"torchvision"``, ...).
        meta: free-form metadata (paper, defaults, ...).
    """

    name: str
    fn: F
    family: str = ""
    meta: dict[str, Any] = field(default_factory=dict)


class Registry(Generic[F]):
    """Name -> factory mapping with pattern listing and helpful errors.

    Args:
        kind: what the registry holds, used in error messages (``"model"``, ``"GHN variant"``).
        list_hint: how a user lists the names, appended to unknown-name errors.
        sources: modules whose import registers entries; imported (once, in order) on the first lookup.
    """

    def __init__(self, kind: str, list_hint: str = "", sources: Sequence[str] = ()) -> None:
        self.kind = kind
        self.list_hint = list_hint
        self.sources = tuple(sources)
        self._entries: dict[str, RegistryEntry[F]] = {}
        self._loaded = not self.sources
        self._loading = False
        self._lock = threading.RLock()

    def load(self) -> None:
        """Imports the source modules (a no-op after the first call); every lookup calls it.

        Other threads wait until the sources are imported; a lookup from inside a source module while it is being
        imported sees the entries registered so far.
        """
        if self._loaded:
            return
        with self._lock:
            if self._loaded or self._loading:
                return
            self._loading = True
            try:
                for module in self.sources:
                    importlib.import_module(module)
                self._loaded = True
            finally:
                self._loading = False

    def add(self, name: str, fn: F, family: str = "", **meta: Any) -> F:
        """Registers ``fn`` under ``name``; raises ``ValueError`` if the name is taken."""
        if name in self._entries:
            raise ValueError(f"{self.kind} {name!r} is already registered (by {self._entries[name].fn!r})")
        self._entries[name] = RegistryEntry(name, fn, family, dict(meta))
        return fn

    def register(self, name: str | None = None, family: str = "", **meta: Any) -> Callable[[F], F]:
        """Decorator form of :meth:`add`; the name defaults to the function's name."""

        def decorator(fn: F) -> F:
            return self.add(name or fn.__name__, fn, family, **meta)

        return decorator

    def entry(self, name: str) -> RegistryEntry[F]:
        """Returns the entry of ``name`` or raises :class:`UnknownNameError` with suggestions."""
        self.load()
        try:
            return self._entries[name]
        except KeyError:
            raise UnknownNameError(self.unknown_message(name)) from None

    def get(self, name: str) -> F:
        """Returns the factory registered under ``name``."""
        return self.entry(name).fn

    def unknown_message(self, name: str) -> str:
        close = self.closest(name)
        msg = f"unknown {self.kind} {name!r}"
        if close:
            msg += f"; did you mean {', '.join(repr(c) for c in close)}?"
        if self.list_hint:
            msg += f" ({self.list_hint})"
        return msg

    def closest(self, name: str, n: int = 5) -> list[str]:
        """Registered names closest to ``name`` (by edit similarity, then by shared prefix)."""
        self.load()
        names = list(self._entries)
        close = difflib.get_close_matches(name.lower(), names, n=n, cutoff=0.6)
        if len(close) < n:
            # a truncated name ("resnet") should still suggest its family
            close += [c for c in names if c.startswith(name.lower()) and c not in close][: n - len(close)]
        return close

    def names(self, pattern: str | Iterable[str] = "*", family: str | None = None) -> list[str]:
        """Sorted names matching one shell-style pattern or any of several."""
        self.load()
        patterns = [pattern] if isinstance(pattern, str) else list(pattern)
        return sorted(
            n
            for n, e in self._entries.items()
            if any(fnmatch.fnmatchcase(n, p) for p in patterns) and (family is None or e.family == family)
        )

    def __contains__(self, name: object) -> bool:
        self.load()
        return name in self._entries

    def __len__(self) -> int:
        self.load()
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"
