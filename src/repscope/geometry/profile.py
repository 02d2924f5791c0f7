"""Geometry profile: run the chosen measures on every layer of a store; returns a `Result` (rows + spectra)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.errors import ConfigError, DataError, RepscopeError
from repscope.geometry.measures import compute, get_measures
from repscope.geometry.spectrum import SpectrumCache, as_matrix, covariance_eigenvalues
from repscope.results import Result
from repscope.store import RepStore

ANALYSIS = "geometry"
SPECTRUM_ARTIFACT = "spectrum"
MAX_SPECTRUM = 512


def default_label_column(store: RepStore) -> str | None:
    """'label' when the store has it, else None (label-free measures only)."""
    return "label" if "label" in store.samples.columns else None


def positive_pairs(samples: pd.DataFrame, rows: np.ndarray,
                   min_score: float = 4.0) -> tuple[np.ndarray, np.ndarray] | None:
    """Positive pairs among the selected rows from columns `pair` (pair id) and `side` (0/1); None if absent.

    When a `score` column exists (STS, 0–5), only pairs scoring at least `min_score` count as positive.
    """
    if not {"pair", "side"} <= set(samples.columns):
        return None
    cols = ["pair", "side"] + (["score"] if "score" in samples.columns else [])
    sub = samples.iloc[rows][cols].reset_index(drop=True)
    sub["pos"] = np.arange(len(sub))
    if "score" in sub.columns:
        sub = sub[sub["score"].astype(float) >= min_score]
    piv = sub.pivot_table(index="pair", columns="side", values="pos", aggfunc="first").dropna()
    if piv.shape[1] < 2 or len(piv) == 0:
        return None
    return piv.iloc[:, 0].to_numpy(np.int64), piv.iloc[:, 1].to_numpy(np.int64)


def select_rows(store: RepStore, max_rows: int | None, seed: int, keep_pairs: bool = True) -> np.ndarray:
    """Sorted row indices: all rows, or a seeded random subset of `max_rows` (whole pairs kept if present)."""
    from repscope.selection import subset_rows

    s = store.samples
    pairs = s["pair"].to_numpy() if keep_pairs and "pair" in s.columns else None
    return subset_rows(store.n_rows, max_rows, seed, groups=pairs)


def geometry_profile(store: RepStore, measures: list[str] | None = None, layers: str | list[str] | None = None,
                     label_col: str | None = "auto", max_rows: int | None = 3000, seed: int = 0,
                     device: str = "auto", params: dict[str, dict[str, Any]] | None = None, spectra: bool = True,
                     progress: Callable[[str], None] | None = None) -> Result:
    """Compute `measures` for each pooled layer of `store` on a seeded subset of at most `max_rows` rows.

    Label-based measures use `label_col` ("auto" = 'label' if present, None = skip them). Positive pairs for
    `alignment` come from sample columns `pair`/`side`. Returns a `Result`: rows of analysis 'geometry' (params
    measure, n, dim, n_layers, the measure's parameters; `layer_index` = position in `store.layers`) and the
    covariance spectrum of each layer as artifact 'spectrum:<store>'.
    """
    chosen = get_measures(measures)
    params = params or {}
    unknown = set(params) - {m.name for m in chosen}
    if unknown:
        raise ConfigError(f"parameters given for measures not run: {', '.join(sorted(unknown))}")
    layer_names = store.resolve_layers(layers)
    if label_col == "auto":
        label_col = default_label_column(store)
    rows_idx = select_rows(store, max_rows, seed)
    if len(rows_idx) < 3:
        raise DataError(f"store '{store.name}' has {len(rows_idx)} rows; geometry needs at least 3")
    labels = store.labels(label_col)[rows_idx] if label_col else None
    pairs = positive_pairs(store.samples, rows_idx)
    result = Result()
    spec: dict[str, list[float]] = {}
    order = {name: i for i, name in enumerate(store.layers)}
    for layer in layer_names:
        if store.is_tokens(layer):
            if progress:
                progress(f"skip {layer}: token-level (geometry needs pooled layers)")
            continue
        x = store.get(layer, rows=rows_idx, dtype=torch.float32)
        # one float64 matrix on the device per layer: measures share it, and one SVD of it through an explicit cache
        x = as_matrix(x.reshape(x.shape[0], -1), device)
        svd_cache = SpectrumCache(x)
        for m in chosen:
            if (m.needs_labels and labels is None) or (m.needs_pairs and pairs is None):
                continue
            p = {**m.defaults, **params.get(m.name, {})}
            t0 = time.perf_counter()
            try:
                with svd_cache:
                    vals = compute(m, x, labels=labels, pairs=pairs, device=device, **p)
            except RepscopeError as err:
                if progress:
                    progress(f"skip {m.name} on {layer}: {err}")
                continue
            sec = time.perf_counter() - t0
            meta = {"measure": m.name, "n": int(x.shape[0]), "dim": int(x.shape[1]), "seed": seed,
                    "n_layers": len(store.layers), **p}
            if m.needs_labels:
                meta["label"] = label_col
            for metric, v in vals.items():
                result.add(ANALYSIS, metric, v, layer=layer, layer_index=order[layer], store=store.name,
                           model=store.model, params=meta, seconds=sec)
        if spectra:
            with svd_cache:
                lam = covariance_eigenvalues(x, device=device)
            tot = float(lam.sum())
            spec[layer] = [float(v) / tot if tot > 0 else 0.0 for v in lam[:MAX_SPECTRUM].cpu()]
        if progress:
            progress(f"{store.name}/{layer}: done")
    if spectra and spec:
        result.add_artifact(ANALYSIS, f"{SPECTRUM_ARTIFACT}:{store.name}",
                            {"store": store.name, "model": store.model, "n": int(len(rows_idx)), "layers": spec,
                             "order": [name for name in store.layers if name in spec]})
    return result
