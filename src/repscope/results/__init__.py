"""Results database: tidy rows in DuckDB, one `record(...)` API for every analysis, safe across processes."""

from repscope.results.connect import ResultsDBError, ResultsLockedError
from repscope.results.db import ImportSummary, ResultsDB, Row, record, record_artifact, save_frame
from repscope.results.result import Artifact, Result

__all__ = ["Artifact", "ImportSummary", "Result", "ResultsDB", "ResultsDBError", "ResultsLockedError", "Row",
           "record", "record_artifact", "save_frame"]
