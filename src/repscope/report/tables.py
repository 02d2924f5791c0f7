"""Tables for the report: formatted cells (numbers right-aligned), filter tags per row and a CSV data URI.

The CSV holds the table's full-precision values (what the page shows is rounded to 4 significant digits).
"""

from __future__ import annotations

import json
import math
import re
from typing import Any
from urllib.parse import quote

import pandas as pd

from repscope.report.filters import FilterOptions, row_tags

PAGE_ROWS = 50  # rows shown per page of a long table


def fmt(v: Any) -> str:
    """A table cell as text: floats to 4 significant digits, NaN/None empty, dicts and lists as JSON."""
    if isinstance(v, float):
        return "" if v != v else f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return "" if v is None or v is pd.NA else str(v)


def _is_num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and not (isinstance(v, float) and math.isnan(v))


def _csv_cell(v: Any) -> Any:
    if isinstance(v, (dict, list)):
        return json.dumps(v, sort_keys=True)
    if isinstance(v, float) and math.isnan(v):
        return ""
    return v


def csv_text(df: pd.DataFrame) -> str:
    """The table as CSV text (header + rows, full precision, JSON for dict/list cells)."""
    d = df.copy()
    d.columns = [str(c) for c in d.columns]
    for c in d.columns:
        if d[c].dtype == object:
            d[c] = d[c].map(_csv_cell)
    return d.to_csv(index=False, float_format="%.17g", lineterminator="\n")


def csv_data_uri(df: pd.DataFrame) -> str:
    """A `data:text/csv` URI of the table (percent-encoded, safe inside an href attribute)."""
    return "data:text/csv;charset=utf-8," + quote(csv_text(df), safe="")


def _slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "table"


def render_table(df: pd.DataFrame, name: str, opts: FilterOptions) -> dict[str, Any]:
    """Template-ready table: columns, rows (cells + filter tags), the CSV URI and file name, page size."""
    cols = [str(c) for c in df.columns]
    rows = []
    for rec in df.itertuples(index=False):
        values = list(rec)
        d = dict(zip(cols, values, strict=True))
        rows.append({"cells": [{"v": fmt(v), "num": _is_num(v)} for v in values], "tags": row_tags(d, opts)})
    return {"columns": cols, "rows": rows, "csv": csv_data_uri(df), "filename": _slug(name) + ".csv",
            "page": PAGE_ROWS}
