"""Shared CLI options and helpers for every command module (kept here so plugins don't import cli.py)."""

from __future__ import annotations

import json
import math
from datetime import datetime
from pathlib import Path
from typing import Any

import pandas as pd
import typer
from rich.console import Console
from rich.table import Table

from repscope.errors import check_choice
from repscope.paths import default_db_path
from repscope.results import ResultsDB
from repscope.results.connect import check_db_file

console = Console(stderr=True)  # progress, logs and errors; tables and data go to stdout through `print_table`
FORMATS = ("table", "csv", "json")


def _check_db(value: Path | None) -> Path | None:
    """--db callback: refuse a path that is not a DuckDB file while options are parsed, before any work."""
    check_db_file(Path(value) if value is not None else default_db_path())
    return value


DbOption = typer.Option(None, "--db", envvar="REPSCOPE_DB", callback=_check_db,
                        help="Results DuckDB file (default ./repscope.duckdb).")
StudyOption = typer.Option("default", "--study", envvar="REPSCOPE_STUDY", help="Study name recorded with each row.")
DeviceOption = typer.Option("auto", "--device", help="auto, cpu or cuda.")


def _check_size(value: str | None) -> str | None:
    """--max-memory callback: refuse a size that does not parse (one-line ConfigError) before any work."""
    if value is not None:
        from repscope.budget import parse_size

        parse_size(value)
    return value


MaxMemoryOption = typer.Option(None, "--max-memory", metavar="SIZE", callback=_check_size,
                               help="Memory budget for a layer's working copies, e.g. 2GB or 512MiB (default: 25% of "
                                    "the available RAM). A larger layer streams (CKA, spectrum, ridge/NB/LDA …) or "
                                    "is subsampled, the rows used recorded in params.")


PairByOption = typer.Option(None, "--pair-by", metavar="COLUMN",
                            help="Opt in to stores of different samples: compare only the samples whose value of this "
                                 "samples column (a sample id) both stores hold, aligned by it (recorded in params).")
UnpairedOption = typer.Option(False, "--unpaired",
                              help="Opt in to stores of different samples: take row i of each as a pair, as they "
                                   "are (same row count; recorded in params).")


def _check_format(value: str) -> str:
    if value not in FORMATS:
        raise typer.BadParameter(f"'{value}' is not one of {', '.join(FORMATS)}")
    return value


FormatOption = typer.Option("table", "--format", callback=_check_format,
                            help="Output on stdout: table (human), csv or json (records).")


def open_db(db: Path | None, study: str = "default") -> ResultsDB:
    """ResultsDB for a CLI command's --db/--study options (`--db` was already checked to be a DuckDB file or new)."""
    return ResultsDB(db, study=study)


def split_csv(value: str | None) -> list[str] | None:
    """'a,b, c' -> ['a', 'b', 'c']; None/'' -> None."""
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]


def _cell_json(v: Any) -> Any:
    """Dicts/lists (e.g. parsed `params`) become JSON text so CSV and table cells read back as the DB stores them."""
    return json.dumps(v, sort_keys=True, default=str) if isinstance(v, dict | list | tuple) else v


def _cell_plain(v: Any) -> Any:
    """A JSON-ready cell: NaN/NaT/None -> None, timestamps -> ISO 8601, numpy scalars -> Python numbers."""
    if isinstance(v, dict | list | tuple):
        return v
    if not pd.api.types.is_scalar(v):
        return v.tolist() if hasattr(v, "tolist") else str(v)
    if v is None or pd.isna(v):
        return None
    if isinstance(v, pd.Timestamp | datetime):
        return v.isoformat()
    return v.item() if hasattr(v, "item") else v


def _cell_text(v: Any) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)) or v is pd.NaT:
        return ""
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(_cell_json(v))


def print_table(df: pd.DataFrame, fmt: str = "table", title: str | None = None) -> None:
    """Write a table of results to STDOUT in `fmt` (the value of `FormatOption`); logs stay on stderr (`console`).

    - ``table``: a rich table for people (floats shown with 4 significant digits, nothing elided, `title` above it);
    - ``csv``: ``df.to_csv(index=False)``, full precision, dict/list cells (such as `params`) as JSON text, so
      ``pd.read_csv`` reads back the same rows;
    - ``json``: one JSON array of records (``[{"column": value, ...}, ...]``), floats exact, NaN/None as null,
      timestamps ISO 8601, dict cells as JSON objects.

    `title` is only used by ``table`` (csv and json stay machine-readable). Signature is stable:
    ``print_table(df, fmt, title=None)``.
    """
    check_choice(fmt, FORMATS, "output format")
    if fmt == "csv":
        typer.echo(df.map(_cell_json).to_csv(index=False), nl=False)
    elif fmt == "json":
        records = [{str(k): _cell_plain(v) for k, v in r.items()} for r in df.to_dict(orient="records")]
        typer.echo(json.dumps(records, ensure_ascii=False, default=str))  # floats as repr: exact round trip
    else:
        t = Table(title=title)
        for c in df.columns:
            t.add_column(str(c), overflow="fold")
        for r in df.itertuples(index=False):
            t.add_row(*[_cell_text(v) for v in r])
        Console().print(t)  # stdout


def print_result(result: Any, fmt: str, study: str | None = None) -> None:
    """A recorded `Result`'s rows on stdout as `print_table` does, in the results table's columns (no `created`),
    `study` filled in as the DB records it, so ``--format csv`` reads back as ``repscope results`` shows the rows."""
    from repscope.results.db import COLUMNS

    df = result.frame()
    df["study"] = [s or study for s in df["study"]]
    print_table(df[[c for c in COLUMNS if c in df.columns]], fmt)


# ---- option help that lists a registry's names (so a name registered at run time shows up in --help) ----------------
_CHOICE_HELP: list[tuple[Any, str, str]] = []


def choice_option(default: Any, *decls: str, registry: str, text: str, **kw: Any) -> Any:
    """A `typer.Option` whose help is `text` with `{choices}` filled from the registry `registry` ("module:attr")
    each time the app is built for --help (`refresh_choice_help`), not at import time."""
    info = typer.Option(default, *decls, help=text.replace("{choices}", "see --help"), **kw)
    _CHOICE_HELP.append((info, text, registry))
    return info


def choice_argument(default: Any, *, registry: str, text: str, **kw: Any) -> Any:
    """A `typer.Argument` whose help lists the registry's names, as `choice_option` does for options."""
    info = typer.Argument(default, help=text.replace("{choices}", "see --help"), **kw)
    _CHOICE_HELP.append((info, text, registry))
    return info


def refresh_choice_help() -> None:
    """Fill every `choice_option` help text with its registry's current names."""
    from repscope.analyses import resolve

    for info, text, ref in _CHOICE_HELP:
        info.help = text.replace("{choices}", ", ".join(resolve(ref).names()))


def with_provenance(result: Any, *stores: Any) -> Any:
    """`result` plus each store's provenance artifact (see `repscope.report.provenance`), imported lazily."""
    from repscope.report.provenance import with_provenance as add

    return add(result, *stores)
