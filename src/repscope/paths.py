"""Locations: the optional shared data folder and the results DB default."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """The `shared/` folder: $REPSCOPE_SHARED, else ../shared beside the repo root; None when absent."""
    env = os.environ.get("REPSCOPE_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(REPO_ROOT.parent / "shared")
    for c in candidates:
        if (c / "data").is_dir():
            return c
    return None


def shared_data(*parts: str) -> Path | None:
    """Path under shared/data, or None when shared/ is absent or the file is missing."""
    root = shared_dir()
    if root is None:
        return None
    p = root.joinpath("data", *parts)
    return p if p.exists() else None


def default_db_path() -> Path:
    """Results DB path: $REPSCOPE_DB, else ./repscope.duckdb."""
    return Path(os.environ.get("REPSCOPE_DB", "repscope.duckdb"))
