"""Study step (`run: geometry` in a study YAML)."""

from __future__ import annotations

from typing import Any

from repscope.geometry.profile import geometry_profile
from repscope.results import ResultsDB


def run(stores: list, db: ResultsDB, measures: str | list[str] | None = None, layers: Any = None,
        label: str | None = "auto", max_rows: int | None = 3000, seed: int = 0, device: str = "auto") -> None:
    """Geometry profile of every layer of each store."""
    chosen = measures.split(",") if isinstance(measures, str) else measures
    for store in stores:
        geometry_profile(store, db, measures=chosen, layers=layers, label_col=label, max_rows=max_rows, seed=seed,
                         device=device)
