"""Packages whose public names are imported on first use, so `import repscope.<pkg>` (and CLI start-up) stays cheap.

Written by hand because PEP 562's module `__getattr__` alone is not enough here: several packages export a function
with the same name as a submodule (`similarity.rsa`, `disentangle.dci`, …). Importing such a submodule rebinds the
package attribute to the module, so the exported name would silently become the module. `lazy_package` swaps the
package's class for one whose attribute lookup resolves exported names first — the same result an eager
`from .rsa import rsa` in `__init__` gives.
"""

from __future__ import annotations

import importlib
import sys
import types
from typing import Any


class _LazyPackage(types.ModuleType):
    """A package module whose exported names (`_lazy_exports`: name -> submodule) load on first access."""

    def __getattribute__(self, name: str) -> Any:
        get = types.ModuleType.__getattribute__
        exports = get(self, "__dict__").get("_lazy_exports")
        if exports is not None and name in exports:
            cache = get(self, "_lazy_cache")
            if name not in cache:
                module = importlib.import_module(f"{get(self, '__name__')}.{exports[name]}")
                cache[name] = getattr(module, name)
            return cache[name]
        return get(self, name)

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self.__dict__.get("_lazy_exports", {})))


def lazy_package(name: str, exports: dict[str, str]) -> list[str]:
    """Make package `name` import each exported name from its submodule (`exports`: name -> submodule) on first
    use; returns the sorted names for `__all__`."""
    module = sys.modules[name]
    module.__dict__["_lazy_exports"] = dict(exports)
    module.__dict__["_lazy_cache"] = {}
    module.__class__ = _LazyPackage
    return sorted(exports)
