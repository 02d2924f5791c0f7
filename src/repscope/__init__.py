"""repscope: a workbench for learned neural-network representations."""

__version__ = "0.1.0"

from repscope.errors import RepscopeError  # noqa: E402
from repscope.results import ResultsDB, record  # noqa: E402
from repscope.store import RepStore, write_store  # noqa: E402

__all__ = ["RepStore", "RepscopeError", "ResultsDB", "record", "write_store", "__version__"]
