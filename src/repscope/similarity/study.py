"""Study step (`run: compare` in a study YAML): layer × layer similarity within one store or across two."""

from __future__ import annotations

from typing import Any

from repscope.errors import ConfigError
from repscope.results import ResultsDB
from repscope.similarity.matrix import compare_stores


def run(stores: list, db: ResultsDB, measures: str | list[str] = "linear_cka", layers: Any = None,
        layers_b: Any = None, max_rows: int | None = 5000, seed: int = 0, device: str = "auto") -> None:
    """One store: its layers against each other. Two stores: A's layers against B's."""
    if len(stores) not in (1, 2):
        raise ConfigError(f"compare takes one or two stores, got {len(stores)}")
    b = stores[1] if len(stores) == 2 else None
    _, rows = compare_stores(stores[0], b, measures, layers, layers_b, max_rows=max_rows, seed=seed, device=device)
    db.record_rows(rows)
