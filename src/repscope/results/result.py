"""`Result`: what every analysis returns — tidy rows plus JSON artifacts — and nothing else.

Analyses never take the results DB. The CLI, the study runner and the demo record a `Result` with
`ResultsDB.record_result`, and Ray workers ship `Result`s back to the driver, the only DuckDB writer.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from repscope.results.db import Row


@dataclass
class Artifact:
    """A JSON payload a report section needs that is not a single number (curve, spectrum, feature cards)."""

    analysis: str
    name: str
    payload: Any


@dataclass
class Result:
    """Tidy result rows plus artifacts, returned by every analysis."""

    rows: list[Row] = field(default_factory=list)
    artifacts: list[Artifact] = field(default_factory=list)

    def add(self, analysis: str, metric: str, value: float, **kw: Any) -> Row:
        """Append one row (keyword arguments are the other `Row` fields) and return it."""
        row = Row(analysis=analysis, metric=metric, value=value, **kw)
        self.rows.append(row)
        return row

    def add_artifact(self, analysis: str, name: str, payload: Any) -> None:
        """Append one JSON artifact."""
        self.artifacts.append(Artifact(analysis, name, payload))

    def extend(self, other: Result | Iterable[Row]) -> Result:
        """Append another Result's rows and artifacts (or plain rows); returns self."""
        if isinstance(other, Result):
            self.rows.extend(other.rows)
            self.artifacts.extend(other.artifacts)
        else:
            self.rows.extend(other)
        return self

    def __iter__(self) -> Iterator[Row]:
        return iter(self.rows)

    def __len__(self) -> int:
        return len(self.rows)

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (columns as in the DB's `results` table, `params` as dicts)."""
        cols = ["study", "store", "model", "layer", "layer_index", "layer_b", "layer_b_index", "analysis", "metric",
                "value", "params", "seconds"]
        return pd.DataFrame([{c: getattr(r, c) for c in cols} for r in self.rows], columns=cols)
