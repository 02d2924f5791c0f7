"""`disentangle_store`: every disentanglement metric on every pooled layer of a RepStore, as a `Result`."""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from repscope.disentangle.inputs import encode_factors
from repscope.disentangle.suite import disentanglement_details, heatmap_payload, resolve_metrics
from repscope.errors import ConfigError, DataError, format_choices
from repscope.results import Result
from repscope.selection import subset_rows
from repscope.store.repstore import pooled_layers

ANALYSIS = "disentangle"


def factor_names(factors: Sequence[str] | str) -> list[str]:
    """Factor column names from a list or comma-separated text; a one-line ConfigError when there are none."""
    names = [s.strip() for s in factors.split(",") if s.strip()] if isinstance(factors, str) else list(factors)
    if not names:
        raise ConfigError("no factors given; name sample columns, e.g. --factors topic,sentiment,tense")
    return names


def disentangle_store(store: Any, factors: Sequence[str] | str, *, metrics: Sequence[str] | str | None = None,
                      layers: Sequence[str] | str | None = None, max_rows: int | None = 10000, seed: int = 0,
                      **options: Any) -> Result:
    """Disentanglement scores of each pooled layer of `store` against its sample columns `factors`: one row per
    (layer, score) with `layer_index` = position in `store.layers`, plus one heatmap artifact per layer.

    At most `max_rows` rows are used (a seeded subsample, its size recorded in `params["n_rows"]`); `options` go to
    `disentanglement_details` (bins, importance, sap_mode, mi_estimator, infoe_split, batch_pool, test_fraction,
    n_train, …) and are recorded in the rows' params."""
    names = factor_names(factors)
    samples = store.samples
    for f in names:
        if f not in samples.columns:
            raise DataError(f"factor column '{f}' not in samples of store '{store.name}'; available: "
                            f"{format_choices([c for c in samples.columns if c not in ('id', 'text')])}")
    n = int(store.n_rows)
    rows = None
    if max_rows is not None and n > max_rows:
        rows = subset_rows(n, int(max_rows), seed)
    table = samples[names].iloc[rows] if rows is not None else samples[names].iloc[:n]
    encode_factors(table, n_rows=len(table))  # fail on a bad factor before reading any layer
    chosen = pooled_layers(store, layers, "disentanglement")
    order = list(store.layers)
    metric_list = resolve_metrics(metrics)
    params = {"factors": names, "metrics": metric_list, "n_rows": len(table),
              "seed": seed, **{k: v for k, v in options.items() if k != "threads"}}
    if "dci" in metric_list and options.get("importance", "gbt") == "gbt":
        params["dci_engine"] = "exact-gbt"  # "gbt" meant histogram GBT before repscope 2026-11-29; rows say which
    res = Result()
    for layer in chosen:
        t0 = time.perf_counter()
        x = store.get(layer, rows if rows is not None else slice(0, n))
        det = disentanglement_details(x, table, metrics=metric_list, seed=seed, **options)
        sec = time.perf_counter() - t0
        idx = order.index(layer)
        for metric, value in det["scores"].items():
            res.add(ANALYSIS, metric, float(value), layer=layer, layer_index=idx, store=store.name,
                    model=store.model, params={**params, "n_latents": int(x.reshape(len(x), -1).shape[1])},
                    seconds=sec)
        res.add_artifact(ANALYSIS, f"heatmap:{layer}", {"layer": layer, "layer_index": idx, "store": store.name,
                                                        **heatmap_payload(det)})
    return res
