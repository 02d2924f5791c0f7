"""One generic registry for named implementations: similarity and geometry measures, probes, SAE architectures,
quantizers.

A `Registry` maps a canonical name (and its aliases) to an object plus declared metadata (paper, invariances, task,
`default`, …). Lookups are case-insensitive and resolve aliases; an unknown name raises the one-line
`ConfigError("unknown <kind> '<name>'; choose one of …")`. Everything that lists or resolves choices (CLI, studies,
reports, the generic property tests) reads the registry at call time, so an entry registered later shows up everywhere.

One population rule: a registry's built-ins are present from its first access, whatever that access is (a lookup, a
listing or a `register`). A registry either registers its built-ins in the module that creates it (importing the
registry loads them), or names a loader, `Registry(kind, builtins="module:function")` (or a callable), which runs
once, before the first access completes; an entry registered by a user therefore always comes after the built-ins
and can never hide them. Properties that callers branch on (streamable, CCA-like, supports transcoders, …) are
declared in entry metadata and read with `names(flag=True)` / `metadata(name)`, never kept in separate name lists.

Example::

    PROBES = Registry("probe")

    @PROBES.register("ridge", task="regression", paper="Hoerl & Kennard 1970")
    def make_ridge(device="auto", **params): ...

    PROBES.get("ridge")                      # the factory
    PROBES.entry("ridge").metadata["task"]   # "regression"
"""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Generic, TypeVar, overload

from repscope.errors import ConfigError, format_choices

T = TypeVar("T")


def _key(name: str) -> str:
    return str(name).strip().lower()


def split_names(names: str | Iterable[str] | None) -> list[str]:
    """A comma-separated string or an iterable of names as a list of stripped, non-empty names (None: [])."""
    if names is None:
        return []
    items = names.split(",") if isinstance(names, str) else [str(n) for n in names]
    return [n.strip() for n in items if n.strip()]


@dataclass(frozen=True)
class Entry(Generic[T]):
    """One registered implementation: canonical name, the object, its aliases and its declared metadata."""

    name: str
    obj: T
    aliases: tuple[str, ...] = ()
    metadata: Mapping[str, Any] = field(default_factory=dict)


class Registry(Generic[T]):
    """Named implementations of one kind, with aliases and declared metadata, in registration order."""

    def __init__(self, kind: str, *, builtins: str | Callable[[], Any] | None = None) -> None:
        """An empty registry of `kind` (the word used in error messages); `builtins` ("module:function" or a
        callable, no arguments) registers the built-in entries and runs once, on the registry's first access."""
        self.kind = kind
        self._entries: dict[str, Entry[T]] = {}
        self._aliases: dict[str, str] = {}
        self._builtins = builtins
        self._loaded = builtins is None
        self._loading = False
        self._lock = threading.RLock()

    def _load(self) -> None:
        """Register the built-ins once (a no-op afterwards and for registries filled at import)."""
        if self._loaded:
            return
        with self._lock:  # other threads wait here until the built-ins are complete
            if self._loaded or self._loading:  # _loading: the loader's own register() calls (same thread)
                return
            self._loading = True
            before = set(self._entries)
            try:
                loader = self._builtins
                if isinstance(loader, str):
                    module, _, attr = loader.partition(":")
                    loader = getattr(importlib.import_module(module), attr)
                loader()  # type: ignore[operator, misc]
                self._loaded = True
            except BaseException:  # a failed load leaves the registry as it was, to be retried
                for name in [n for n in self._entries if n not in before]:
                    self._drop(name)
                raise
            finally:
                self._loading = False

    # ---- registration ------------------------------------------------------------------------------------------
    @overload
    def register(self, name: str, obj: None = None, *, aliases: tuple[str, ...] | list[str] = (),
                 **metadata: Any) -> Callable[[T], T]: ...

    @overload
    def register(self, name: str, obj: T, *, aliases: tuple[str, ...] | list[str] = (), **metadata: Any) -> T: ...

    def register(self, name: str, obj: Any = None, *, aliases: tuple[str, ...] | list[str] = (), **metadata: Any):
        """Register `obj` under `name` (and `aliases`) with declared `metadata`; without `obj`, return a decorator.

        Names and aliases are unique across the registry (case-insensitive); a clash raises ConfigError.
        """
        if obj is None:
            def decorator(target: T) -> T:
                self.register(name, target, aliases=aliases, **metadata)
                return target
            return decorator
        self._load()  # built-ins first: a user entry never hides them, and a clash with one is reported here
        key = _key(name)
        if not key:
            raise ConfigError(f"a {self.kind} needs a non-empty name")
        alias_keys = tuple(dict.fromkeys(_key(a) for a in aliases if _key(a) != key))
        for k in (key, *alias_keys):
            if k in self._entries or k in self._aliases:
                raise ConfigError(f"{self.kind} '{k}' is already registered; pick another name or unregister it first")
        self._entries[key] = Entry(key, obj, alias_keys, MappingProxyType(dict(metadata)))
        for a in alias_keys:
            self._aliases[a] = key
        return obj

    def unregister(self, name: str) -> Entry[T]:
        """Remove an entry (by name or alias) with its aliases; returns the removed entry."""
        entry = self.entry(name)
        self._drop(entry.name)
        return entry

    def _drop(self, key: str) -> None:
        entry = self._entries.pop(key)
        for a in entry.aliases:
            self._aliases.pop(a, None)

    # ---- lookup ------------------------------------------------------------------------------------------------
    def resolve(self, name: str) -> str:
        """Canonical name for a name or alias; ConfigError listing the choices when unknown."""
        self._load()
        key = _key(name)
        key = self._aliases.get(key, key)
        if key not in self._entries:
            raise ConfigError(f"unknown {self.kind} '{name}'; choose one of {self.choices()}")
        return key

    def resolve_many(self, names: str | Iterable[str] | None) -> list[str]:
        """Canonical names for a comma-separated string or a list of names/aliases, in order, without repeats.

        A string is one list (`"a,b"` and `"a"` alike), never iterated by character; an empty list is an error."""
        items = split_names(names)
        if not items:
            raise ConfigError(f"no {self.kind} given; choose one or more of {self.choices()}")
        return list(dict.fromkeys(self.resolve(n) for n in items))

    def entry(self, name: str) -> Entry[T]:
        """The full entry (name, obj, aliases, metadata) for a name or alias."""
        return self._entries[self.resolve(name)]

    def get(self, name: str) -> T:
        """The registered object for a name or alias."""
        return self.entry(name).obj

    def metadata(self, name: str) -> Mapping[str, Any]:
        """Declared metadata of a name or alias (read-only)."""
        return self.entry(name).metadata

    def names(self, **where: Any) -> list[str]:
        """Canonical names in registration order, optionally only those whose metadata match `where`
        (e.g. `names(default=True)`, `names(task="regression")`)."""
        return [e.name for e in self.entries(**where)]

    def entries(self, **where: Any) -> list[Entry[T]]:
        """Entries in registration order, optionally filtered by metadata equality."""
        self._load()
        return [e for e in self._entries.values() if all(e.metadata.get(k) == v for k, v in where.items())]

    def aliases(self) -> dict[str, str]:
        """{alias: canonical name}."""
        self._load()
        return dict(self._aliases)

    def choices(self, limit: int = 40) -> str:
        """The names (then aliases) as one line for an error message or a CLI --help text."""
        text = format_choices(self.names(), limit=limit)  # names() loads the built-ins
        if self._aliases:
            text += f" (aliases: {', '.join(f'{a}={n}' for a, n in self._aliases.items())})"
        return text

    # ---- dict-like reading -------------------------------------------------------------------------------------
    def __contains__(self, name: object) -> bool:
        if not isinstance(name, str):
            return False
        self._load()
        key = _key(name)
        return key in self._entries or key in self._aliases

    def __getitem__(self, name: str) -> T:
        return self.get(name)

    def __iter__(self) -> Iterator[str]:
        self._load()
        return iter(list(self._entries))

    def __len__(self) -> int:
        self._load()
        return len(self._entries)

    def keys(self) -> list[str]:
        """Canonical names (as `names()`)."""
        return self.names()

    def values(self) -> list[T]:
        """Registered objects in registration order."""
        return [e.obj for e in self.entries()]

    def items(self) -> list[tuple[str, T]]:
        """(name, object) pairs in registration order."""
        return [(e.name, e.obj) for e in self.entries()]

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}: {', '.join(self)})"


__all__ = ["Entry", "Registry"]
