"""Study step (`run: sae` in a study YAML): train and evaluate an SAE on one layer of each store."""

from __future__ import annotations

from typing import Any

from repscope.dictionary.runs import train_sae_on_store
from repscope.errors import ConfigError
from repscope.results import ResultsDB


def run(stores: list, db: ResultsDB, layer: str | None = None, **params: Any) -> None:
    """`layer` is required; other params go to `train_sae_on_store` (arch, k, expansion, n_steps, …)."""
    if not layer:
        raise ConfigError("the sae step needs params.layer, e.g. params: {layer: encoder.layer.3, k: 32}")
    for store in stores:
        train_sae_on_store(store, layer, db=db, **params)
