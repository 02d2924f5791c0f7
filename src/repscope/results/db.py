"""DuckDB results store.

Table `results` holds tidy rows: study, store, model, layer, layer_b, analysis, metric, value, params (JSON), seconds,
created. Table `artifacts` holds JSON payloads a report section needs that are not single numbers (spectra, feature
cards, curves) keyed by (study, analysis, name). Table `imports` remembers which side files were merged.

Concurrency: several processes may record into one file at once. Each write is one short transaction on its own
connection; every connect retries DuckDB's single-writer lock (see `repscope.results.connect`). Reads use read-only
connections. If the lock is still held after the timeout, the rows are saved to a side file next to the DB and a
`ResultsLockedError` names it; `ResultsDB.import_pending` (`repscope results --import FILE`) merges it later.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
from collections.abc import Iterable, Mapping
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple

import duckdb
import pandas as pd

from repscope.atomic import atomic_write
from repscope.errors import ConfigError, RepscopeError
from repscope.paths import default_db_path
from repscope.results.connect import (
    SANDBOX,
    ResultsDBError,
    ResultsLockedError,
    check_db_file,
    connection,
    is_sandbox_refusal,
    sql_error_line,
)
from repscope.results.pending import read_side_file, write_side_file

_SCHEMA = """
CREATE TABLE IF NOT EXISTS results (
    study VARCHAR, store VARCHAR, model VARCHAR, layer VARCHAR, layer_b VARCHAR,
    analysis VARCHAR NOT NULL, metric VARCHAR NOT NULL, value DOUBLE,
    params VARCHAR, seconds DOUBLE, created TIMESTAMP, layer_index INTEGER, layer_b_index INTEGER
);
CREATE TABLE IF NOT EXISTS artifacts (
    study VARCHAR, analysis VARCHAR NOT NULL, name VARCHAR NOT NULL, payload VARCHAR, created TIMESTAMP
);
CREATE TABLE IF NOT EXISTS imports (id VARCHAR PRIMARY KEY, file VARCHAR, n_rows INTEGER, created TIMESTAMP);
"""

COLUMNS = ["study", "store", "model", "layer", "layer_b", "analysis", "metric", "value", "params", "seconds", "created",
           "layer_index", "layer_b_index"]
_INSERT = f"INSERT INTO results ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"
# DBs written before layer order was stored gain the columns on open
_MIGRATE = ("ALTER TABLE results ADD COLUMN IF NOT EXISTS layer_index INTEGER;"
            "ALTER TABLE results ADD COLUMN IF NOT EXISTS layer_b_index INTEGER;")
_NEEDED = {("results", c) for c in COLUMNS} | {("artifacts", "payload"), ("imports", "id")}


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


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class ImportSummary(NamedTuple):
    """What `ResultsDB.import_pending` merged."""

    rows: int
    artifacts: int
    already_imported: bool


class ResultsDB:
    """A DuckDB file of tidy result rows, safe to share between processes.

    Each call opens its own connection: reads read-only, writes as one short transaction, both retrying the
    single-writer lock for `timeout` seconds (default $REPSCOPE_DB_TIMEOUT, else 60). A path that exists but is not a
    DuckDB file is refused here, before any analysis runs. Construction opens no connection (so it cannot block or
    fail on a lock); the tables are created by the first read or write.
    """

    def __init__(self, path: str | os.PathLike | None = None, study: str | None = None, *,
                 timeout: float | None = None):
        self.path = Path(path) if path is not None else default_db_path()
        self.study = study or os.environ.get("REPSCOPE_STUDY") or "default"
        self.timeout = timeout
        check_db_file(self.path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise ConfigError(f"--db '{self.path}': cannot create its folder ({err.strerror})") from err
        self._ready = False  # tables known to exist with every column

    def _connect(self, read_only: bool = True,
                 config: dict[str, Any] | None = None) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        """A locked connection for one `with` block (see `repscope.results.connect.connection`)."""
        return connection(self.path, read_only=read_only, timeout=self.timeout, config=config)

    def _ensure_schema(self) -> None:
        """Create the tables (and add columns that older files lack), taking the write lock only when needed."""
        if self.path.exists():
            with self._connect(read_only=True) as con:
                have = set(con.execute("SELECT table_name, column_name FROM information_schema.columns "
                                       "WHERE table_schema = 'main'").fetchall())
            if _NEEDED <= have:
                self._ready = True
                return
        with self._connect(read_only=False) as con:
            con.execute(_SCHEMA)
            con.execute(_MIGRATE)
        self._ready = True

    # ---- writing -------------------------------------------------------------------------------------------------

    def _row_tuple(self, r: Row, now: datetime) -> tuple:
        v = float(r.value) if r.value is not None else None
        if v is not None and not math.isfinite(v):
            v = None  # DuckDB stores NaN fine, but NULL keeps aggregates and charts honest
        return (r.study or self.study, r.store, r.model, r.layer, r.layer_b, r.analysis, r.metric, v,
                _json(dict(r.params)), r.seconds, now,
                None if r.layer_index is None else int(r.layer_index),
                None if r.layer_b_index is None else int(r.layer_b_index))

    def _transaction(self, rows: list[tuple], artifacts: list[tuple], import_id: str | None = None,
                     source: str | None = None) -> bool:
        """Write rows and artifacts in one transaction; False (nothing written) if `import_id` was imported before."""
        with self._connect(read_only=False) as con:
            con.execute("BEGIN TRANSACTION")
            try:
                if not self._ready:
                    con.execute(_SCHEMA)
                    con.execute(_MIGRATE)
                if import_id is not None:
                    if con.execute("SELECT 1 FROM imports WHERE id = ?", [import_id]).fetchone():
                        con.execute("ROLLBACK")
                        return False
                    con.execute("INSERT INTO imports VALUES (?, ?, ?, ?)", [import_id, source, len(rows), _now()])
                if rows:
                    con.executemany(_INSERT, rows)
                for study, analysis, name, payload, created in artifacts:
                    # replace an artifact of the same key unless the stored one is newer (a late import is older)
                    con.execute("DELETE FROM artifacts WHERE study=? AND analysis=? AND name=? AND created <= ?",
                                [study, analysis, name, created])
                    con.execute("INSERT INTO artifacts SELECT ?, ?, ?, ?, ? WHERE NOT EXISTS (SELECT 1 FROM artifacts "
                                "WHERE study=? AND analysis=? AND name=?)",
                                [study, analysis, name, payload, created, study, analysis, name])
                con.execute("COMMIT")
            except BaseException:
                with contextlib.suppress(duckdb.Error):  # keep the original error if the connection is gone
                    con.execute("ROLLBACK")
                raise
        self._ready = True
        return True

    def _save(self, rows: list[tuple], artifacts: list[tuple]) -> None:
        """Write, or — if the DB cannot be written — park everything in a side file and say how to merge it."""
        if not rows and not artifacts:
            return
        try:
            self._transaction(rows, artifacts)
        except (duckdb.Error, RepscopeError, OSError) as err:
            try:
                side = write_side_file(self.path, COLUMNS, rows, artifacts)
            except OSError as side_err:
                raise ResultsDBError(f"cannot write results DB '{self.path}' ({sql_error_line(err)}) nor a side file "
                                     f"for its {len(rows)} rows ({side_err.strerror})") from err
            what = f"{len(rows)} rows and {len(artifacts)} artifacts saved to '{side}'; merge them with " \
                   f"`repscope results --db '{self.path}' --import '{side}'`"
            if isinstance(err, ResultsLockedError):
                raise ResultsLockedError(f"{err.brief}; {what}", side) from err
            raise ResultsDBError(f"cannot write results DB '{self.path}' ({sql_error_line(err)}); {what}") from err

    def record_rows(self, rows: Iterable[Row]) -> int:
        """Insert rows in one transaction; returns how many were written."""
        now = _now()
        data = [self._row_tuple(r, now) for r in rows]
        self._save(data, [])
        return len(data)

    def record_result(self, result: Any) -> int:
        """Record a `Result` (rows and artifacts) from an analysis in one transaction; returns the rows written."""
        now = _now()
        data = [self._row_tuple(r, now) for r in result.rows]
        arts = [(self.study, a.analysis, a.name, _json(a.payload), now) for a in result.artifacts]
        self._save(data, arts)
        return len(data)

    def record(self, analysis: str, metric: str, value: float, **kw: Any) -> None:
        """Insert one row; keyword arguments are the other `Row` fields."""
        self.record_rows([Row(analysis=analysis, metric=metric, value=value, **kw)])

    def record_artifact(self, analysis: str, name: str, payload: Any, study: str | None = None) -> None:
        """Store a JSON payload (curve, spectrum, feature cards) for the report, replacing one of the same key."""
        self._save([], [(study or self.study, analysis, name, _json(payload), _now())])

    def import_pending(self, path: str | os.PathLike) -> ImportSummary:
        """Merge a side file written while the DB was locked, then delete it; a file imported before adds nothing."""
        path = Path(path)
        sid, rows, arts = read_side_file(path, COLUMNS)
        fresh = self._transaction(rows, arts, import_id=sid, source=str(path))
        path.unlink()
        return ImportSummary(len(rows) if fresh else 0, len(arts) if fresh else 0, not fresh)

    # ---- reading -------------------------------------------------------------------------------------------------

    def query(self, sql: str = "SELECT * FROM results", params: list | None = None) -> pd.DataFrame:
        """Run SQL on a read-only connection and return a DataFrame."""
        if not self._ready:
            self._ensure_schema()
        with self._connect(read_only=True) as con:
            return con.execute(sql, params or []).fetchdf()

    def run_sql(self, sql: str, *, write: bool = False) -> pd.DataFrame:
        """The SQL console: read-only with no file or network access and locked settings unless `write=True`.

        Refused statements (COPY … TO, ATTACH, read_text('/etc/…'), CREATE …) and SQL errors raise a one-line
        `ConfigError`; a statement that returns nothing gives an empty frame.
        """
        if not sql or not sql.strip():
            raise ConfigError("empty SQL; give a query such as \"SELECT * FROM results LIMIT 10\" "
                              "(tables: results, artifacts)")
        if not self._ready:
            self._ensure_schema()
        with self._connect(read_only=not write, config=None if write else dict(SANDBOX)) as con:
            try:
                cur = con.execute(sql)
                return cur.fetchdf() if con.description else pd.DataFrame()
            except duckdb.Error as err:
                line = sql_error_line(err)
                if not write and is_sandbox_refusal(err):
                    raise ConfigError(f"SQL refused: {line}; the results console is read-only without file access "
                                      "— rerun with --write to allow writes, COPY and ATTACH") from err
                raise ConfigError(f"SQL error: {line}") from err

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

    def export(self, sql: str, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
        """Write a query's result to CSV or Parquet, chosen by the file extension (see `save_frame`)."""
        return save_frame(self.query(sql), out, overwrite=overwrite)


def save_frame(df: pd.DataFrame, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write a frame to .csv or .parquet (by extension; a one-line ConfigError for any other name) through a temp
    file. Parquet carries repscope's marker in its schema metadata; an existing file is replaced only with
    `overwrite`, and a Parquet file only when repscope wrote it (`ownership.check_export_output`)."""
    from repscope import __version__
    from repscope.store.ownership import check_export_output

    out = Path(out)
    if out.suffix not in (".parquet", ".csv"):
        raise ConfigError(f"cannot export to '{out.name}'; use a .csv or .parquet file name")
    check_export_output(out, overwrite=overwrite)
    with atomic_write(out) as tmp:
        if out.suffix == ".parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            table = pa.Table.from_pandas(df, preserve_index=False)
            table = table.replace_schema_metadata({**(table.schema.metadata or {}), b"repscope": __version__.encode()})
            pq.write_table(table, tmp)
        else:
            df.to_csv(tmp, index=False)
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
