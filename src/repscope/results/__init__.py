"""Results database: tidy rows in DuckDB, one `record(...)` API for every analysis."""

from repscope.results.db import ResultsDB, Row, record, record_artifact

__all__ = ["ResultsDB", "Row", "record", "record_artifact"]
