"""repscope: a workbench for learned neural-network representations.

Public names are imported on first use (`from repscope import RepStore` or `repscope.probe`), so `import repscope`
stays cheap. Subpackages: sources, extract, store, probe, similarity, geometry, dictionary, results, report.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_EXPORTS = {
    "RepscopeError": "repscope.errors", "ConfigError": "repscope.errors", "DataError": "repscope.errors",
    "StoreError": "repscope.errors",
    "Registry": "repscope.registry",
    "Result": "repscope.results", "ResultsDB": "repscope.results", "record": "repscope.results",
    "RepStore": "repscope.store", "write_store": "repscope.store",
    "load_model": "repscope.sources", "load_dataset": "repscope.sources",
}
_SUBPACKAGES = ("dictionary", "extract", "geometry", "probe", "report", "results", "similarity", "sources", "store")

__all__ = sorted(_EXPORTS) + ["__version__"]


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
    elif name in _SUBPACKAGES:
        value = importlib.import_module(f"repscope.{name}")
    else:
        raise AttributeError(f"module 'repscope' has no attribute '{name}'")
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__) | set(_SUBPACKAGES))
