"""repscope: a workbench for learned neural-network representations.

Public names are imported on first use (PEP 562, `repscope.lazy.attach`: `from repscope import RepStore` or
`repscope.probe`), so `import repscope` stays cheap. Subpackages: sources, extract, store, probe, similarity,
geometry, dictionary, compress, compat, disentangle, learn, results, report.
"""

from typing import TYPE_CHECKING

__version__ = "0.1.0"

if TYPE_CHECKING:
    from repscope import compat as compat
    from repscope import compress as compress
    from repscope import dictionary as dictionary
    from repscope import disentangle as disentangle
    from repscope import extract as extract
    from repscope import geometry as geometry
    from repscope import learn as learn
    from repscope import probe as probe
    from repscope import report as report
    from repscope import results as results
    from repscope import similarity as similarity
    from repscope import sources as sources
    from repscope import store as store
    from repscope.errors import ConfigError, DataError, RepscopeError, StoreError
    from repscope.registry import Registry
    from repscope.results import Result, ResultsDB, record
    from repscope.sources import load_dataset, load_model
    from repscope.store import RepStore, write_store
else:
    from repscope.lazy import attach

    __getattr__, __dir__ = attach(__name__)

__all__ = [
    "ConfigError", "DataError", "Registry", "RepStore", "RepscopeError", "Result", "ResultsDB", "StoreError",
    "__version__", "load_dataset", "load_model", "record", "write_store",
]
