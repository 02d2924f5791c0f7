"""Study steps (`run: probe`, `run: sts` in a study YAML) over stores named in the study."""

from __future__ import annotations

from typing import Any

from repscope.probe.protocols import concept_depth, few_shot_curve, layer_sweep, sts_sweep
from repscope.results import ResultsDB


def run(stores: list, db: ResultsDB, probes: str | list[str] = "logistic", target: str = "label",
        layers: Any = None, cv: int | None = None, few_shot: bool = False, seed: int = 0,
        device: str = "auto", threshold: float = 0.9) -> None:
    """Per-layer probe sweep (+ concept depth, optional few-shot curve at the best layer) for each store."""
    names = probes.split(",") if isinstance(probes, str) else list(probes)
    for store in stores:
        sweep = layer_sweep(store, names, target, layers=layers, cv=cv, seed=seed, db=db, device=device)
        concept_depth(sweep, store.resolve_layers(layers), threshold=threshold, db=db, model=store.model)
        if few_shot:
            acc = sweep[(sweep["metric"] == "accuracy")]
            best = str(acc.loc[acc["value"].idxmax(), "layer"])
            few_shot_curve(store, best, names, target, seed=seed, db=db, device=device)


def run_sts(stores: list, db: ResultsDB, layers: Any = None) -> None:
    """STS Spearman per layer for stores of sentence pairs (columns pair, side, score)."""
    for store in stores:
        sts_sweep(store, layers=layers, db=db)
