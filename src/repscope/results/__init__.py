"""Results database: tidy rows in DuckDB, one `record(...)` API for every analysis."""

from repscope.results.db import ResultsDB, Row, record, record_artifact
from repscope.results.result import Artifact, Result

__all__ = ["Artifact", "Result", "ResultsDB", "Row", "record", "record_artifact"]
