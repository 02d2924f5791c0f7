"""Side files for results that could not be written because the DB stayed locked (merged by `results --import`).

A side file is JSON, written atomically next to the DB as `<db>.pending-<UTC time>-<pid>-<id>.json`:
`{"repscope_pending": 1, "id": ..., "db": ..., "rows": [{column: value}], "artifacts": [{...}]}`. Rows keep the
study and `created` time they had when computed. Its `id` is recorded in the DB's `imports` table in the same
transaction as the rows, so importing the same file (or a copy of it) twice never duplicates rows.
"""

from __future__ import annotations

import json
import os
import tempfile
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from repscope.atomic import atomic_write
from repscope.errors import ConfigError

VERSION = 1
ART_COLUMNS = ("study", "analysis", "name", "payload", "created")


def _encode(v: Any) -> Any:
    return v.isoformat() if isinstance(v, datetime) else v


def write_side_file(db_path: Path, columns: list[str], rows: list[tuple], artifacts: list[tuple]) -> Path:
    """Save rows (tuples in `columns` order) and artifacts (study, analysis, name, payload, created) as JSON."""
    now = datetime.now(UTC)
    sid = uuid.uuid4().hex[:12]
    name = f"{db_path.name}.pending-{now:%Y%m%dT%H%M%S}-{os.getpid()}-{sid}.json"
    doc = {
        "repscope_pending": VERSION, "id": sid, "db": str(db_path), "written": now.isoformat(),
        "rows": [{c: _encode(v) for c, v in zip(columns, r, strict=True)} for r in rows],
        "artifacts": [dict(zip(ART_COLUMNS, map(_encode, a), strict=True)) for a in artifacts],
    }
    folder = db_path.parent if os.access(db_path.parent, os.W_OK) else Path(tempfile.gettempdir())
    out = folder / name
    with atomic_write(out, prefix=".tmp-pending-", suffix=".json") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(doc, fh)
    return out


def read_side_file(path: Path, columns: list[str]) -> tuple[str, list[tuple], list[tuple]]:
    """(id, rows in `columns` order, artifacts) from a side file; a one-line ConfigError if it is not one."""
    if not path.is_file():
        raise ConfigError(f"--import '{path}' does not exist; give a .pending-*.json file that repscope wrote "
                          "when the results DB was locked")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        if doc.get("repscope_pending") != VERSION:
            raise ValueError("not a pending-results file")
        rows = [tuple(_decode(c, r.get(c)) for c in columns) for r in doc["rows"]]
        arts = [tuple(_decode(k, a[k]) for k in ART_COLUMNS) for a in doc["artifacts"]]
    except (ValueError, KeyError, TypeError, AttributeError, UnicodeDecodeError) as err:
        raise ConfigError(f"--import '{path}' is not a repscope pending-results file ({err}); give a "
                          ".pending-*.json file that repscope wrote when the results DB was locked") from err
    for what, cols, records in (("row", columns, rows), ("artifact", ART_COLUMNS, arts)):
        for i, rec in enumerate(records):
            for col, v in zip(cols, rec, strict=True):
                problem = _column_problem(col, v)
                if problem:
                    got = "" if v is None else f" (got {v!r})"
                    raise ConfigError(f"--import '{path}': {what} {i} column '{col}' {problem}{got}; nothing was "
                                      "imported — fix or drop that entry in the file and import it again")
    return str(doc["id"]), rows, arts


_REQUIRED = ("analysis", "metric", "name")  # NOT NULL in the results / artifacts tables
_NUMBERS = ("value", "seconds")
_INTEGERS = ("layer_index", "layer_b_index")


def _column_problem(col: str, v: Any) -> str | None:
    """Why `v` cannot go into column `col` of the results DB, or None when it can (the tables' types)."""
    if v is None:
        return "is missing (the results DB requires it)" if col in _REQUIRED else None
    if col in _NUMBERS:
        ok = isinstance(v, int | float) and not isinstance(v, bool)
        return None if ok else "must be a number or null"
    if col in _INTEGERS:
        return None if isinstance(v, int) and not isinstance(v, bool) else "must be an integer or null"
    if col == "created":
        return None if isinstance(v, datetime) else "must be an ISO 8601 time"
    return None if isinstance(v, str) else "must be text"


def _decode(key: str, v: Any) -> Any:
    if key == "created" and isinstance(v, str):
        try:
            return datetime.fromisoformat(v)
        except ValueError:
            return v  # reported by `_column_problem` with the row and column
    return v
