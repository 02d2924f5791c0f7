"""DuckDB results store.

Table `results` holds tidy rows: study, store, model, layer, layer_b, analysis, metric, value, params (JSON), seconds,
created. Table `artifacts` holds JSON payloads a report section needs that are not single numbers (spectra, feature
cards, curves) keyed by (study, analysis, name).
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from repscope.paths import default_db_path

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    study VARCHAR, store VARCHAR, model VARCHAR, layer VARCHAR, layer_b VARCHAR,
    analysis VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE,
    params VARCHAR, seconds DOUBLE, created TIMESTAMP, layer_index INTEGER, layer_b_index INTEGER
);
CREATE TABLE IF NOT EXISTS artifacts (
    study VARCHAR, analysis VARCHAR NOT NULL, name VARCHAR NOT NULL, payload VARCHAR, created TIMESTAMP
);
"""

COLUMNS = ["study", "store", "model", "layer", "layer_b", "analysis", "metric", "value", "params", "seconds", "created",
           "layer_index", "layer_b_index"]
_INSERT = f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
# DBs written before layer order was stored gain the columns on open
_MIGRATE = ("ALTER TABLE results ADD COLUMN IF NOT EXISTS layer_index INTEGER;"
            "ALTER TABLE results ADD COLUMN IF NOT EXISTS layer_b_index INTEGER;")


@dataclass
class Row:
    """One tidy result row; `params` is any JSON-serialisable mapping."""

    analysis: str
    metric: str
    value: float
    layer: str | None = None
    layer_b: str | None = None
    store: str | None = None
    model: str | None = None
    study: str | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    seconds: float | None = None
    layer_index: int | None = None  # position of `layer` in its store's model order (the report sorts by it)
    layer_b_index: int | None = None


def _json(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, default=str)


class ResultsDB:
    """A DuckDB file of tidy result rows. Opened per call so several processes can take turns writing."""

    def __init__(self, path: str | os.PathLike | None = None, study: str | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        self.study = study or os.environ.get("REPSCOPE_STUDY") or "default"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as con:
            con.execute(_SCHEMA)
            con.execute(_MIGRATE)

    def _connect(self) -> duckdb.DuckDBPyConnection:
        return duckdb.connect(str(self.path))

    def record_rows(self, rows: Iterable[Row]) -> int:
        """Insert rows in one transaction; returns how many were written."""
        now = datetime.now(UTC).replace(tzinfo=None)
        data = []
        for r in rows:
            v = float(r.value) if r.value is not None else None
            if v is not None and not math.isfinite(v):
                v = None  # DuckDB stores NaN fine, but NULL keeps aggregates and charts honest
            data.append(
                (r.study or self.study, r.store, r.model, r.layer, r.layer_b, r.analysis, r.metric, v,
                 _json(dict(r.params)), r.seconds, now,
                 None if r.layer_index is None else int(r.layer_index),
                 None if r.layer_b_index is None else int(r.layer_b_index))
            )
        if not data:
            return 0
        with self._connect() as con:
            con.executemany(_INSERT, data)
        return len(data)

    def record_result(self, result: Any) -> int:
        """Record a `Result` (rows and artifacts) from an analysis; returns the number of rows written."""
        n = self.record_rows(result.rows)
        for a in result.artifacts:
            self.record_artifact(a.analysis, a.name, a.payload)
        return n

    def record(self, analysis: str, metric: str, value: float, **kw: Any) -> None:
        """Insert one row; keyword arguments are the other `Row` fields."""
        self.record_rows([Row(analysis=analysis, metric=metric, value=value, **kw)])

    def record_artifact(self, analysis: str, name: str, payload: Any, study: str | None = None) -> None:
        """Store a JSON payload (curve, spectrum, feature cards) for the report, replacing one of the same key."""
        study = study or self.study
        now = datetime.now(UTC).replace(tzinfo=None)
        with self._connect() as con:
            con.execute("DELETE FROM artifacts WHERE study=? AND analysis=? AND name=?", [study, analysis, name])
            con.execute("INSERT INTO artifacts VALUES (?,?,?,?,?)", [study, analysis, name, _json(payload), now])

    def query(self, sql: str = "SELECT * FROM results", params: list | None = None) -> pd.DataFrame:
        """Run SQL against the DB and return a DataFrame."""
        with self._connect() as con:
            return con.execute(sql, params or []).fetchdf()

    @staticmethod
    def _filtered(sql: str, analysis: str | None, study: str | None) -> tuple[str, list[str]]:
        """Append `WHERE analysis = ? AND study = ?` for the filters that are set."""
        conds = [(c, v) for c, v in (("analysis", analysis), ("study", study)) if v]
        if conds:
            sql += " WHERE " + " AND ".join(f"{c} = ?" for c, _ in conds)
        return sql, [v for _, v in conds]

    def frame(self, analysis: str | None = None, study: str | None = None) -> pd.DataFrame:
        """All result rows, optionally for one analysis and/or study, with `params` parsed into dicts."""
        sql, args = self._filtered("SELECT * FROM results", analysis, study)
        df = self.query(sql + " ORDER BY created, rowid", args)  # insertion order = model order of layers
        df["params"] = [json.loads(p) if p else {} for p in df["params"]]
        return df

    def artifacts(self, analysis: str | None = None, study: str | None = None) -> list[dict[str, Any]]:
        """Artifacts as dicts with keys study, analysis, name, payload (parsed)."""
        sql, args = self._filtered("SELECT study, analysis, name, payload FROM artifacts", analysis, study)
        df = self.query(sql + " ORDER BY created, rowid", args)
        return [
            {"study": s, "analysis": a, "name": n, "payload": json.loads(p)}
            for s, a, n, p in df.itertuples(index=False)
        ]

    def export(self, sql: str, out: str | os.PathLike) -> Path:
        """Write a query's result to CSV or Parquet, chosen by the file extension."""
        out = Path(out)
        df = self.query(sql)
        if out.suffix == ".parquet":
            df.to_parquet(out, index=False)
        elif out.suffix == ".csv":
            df.to_csv(out, index=False)
        else:
            from repscope.errors import ConfigError

            raise ConfigError(f"cannot export to '{out.name}'; use a .csv or .parquet file name")
        return out


def record(analysis: str, metric: str, value: float, *, db: ResultsDB | str | os.PathLike | None = None,
           **kw: Any) -> None:
    """Record one result row into `db` (a ResultsDB, a path, or the default ./repscope.duckdb)."""
    target = db if isinstance(db, ResultsDB) else ResultsDB(db)
    target.record(analysis, metric, value, **kw)


def record_artifact(analysis: str, name: str, payload: Any, *, db: ResultsDB | str | os.PathLike | None = None) -> None:
    """Record one JSON artifact for the report into `db`."""
    target = db if isinstance(db, ResultsDB) else ResultsDB(db)
    target.record_artifact(analysis, name, payload)
