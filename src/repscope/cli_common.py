"""Shared CLI options and helpers for every command module (kept here so plugins don't import cli.py)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from repscope.results import ResultsDB

console = Console(stderr=True)

DbOption = typer.Option(None, "--db", envvar="REPSCOPE_DB", help="Results DuckDB file (default ./repscope.duckdb).")
StudyOption = typer.Option("default", "--study", envvar="REPSCOPE_STUDY", help="Study name recorded with each row.")
DeviceOption = typer.Option("auto", "--device", help="auto, cpu or cuda.")


def open_db(db: Path | None, study: str = "default") -> ResultsDB:
    """ResultsDB for a CLI command's --db/--study options."""
    return ResultsDB(db, study=study)


def split_csv(value: str | None) -> list[str] | None:
    """'a,b, c' -> ['a', 'b', 'c']; None/'' -> None."""
    if not value:
        return None
    return [v.strip() for v in value.split(",") if v.strip()]
