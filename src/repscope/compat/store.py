"""`compat_arrays` / `compat_stores`: backward compatibility of a new model with an old one (Shen et al. 2020, BCT)
as a compatibility table (query model × gallery model × transform) and a `Result`.

Protocol: the shared samples are split (stratified, seeded) into a fit split, on which each transform is learned,
and held-out samples, on which every retrieval score is measured: M(old,old), M(new,new), and for each transform the
cross-model search M(new→old) (new-model queries against the old index, mapped as the transform says), with the
empirical compatibility criterion M(new→old) > M(old,old) and the update gain (see `repscope.compat.criterion`).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.compat.criterion import SCORES, chance_recall, compatibility, cross_retrieval
from repscope.compat.transforms import NEW_TO_OLD, make_maps, resolve_transforms
from repscope.errors import ConfigError, DataError, format_choices
from repscope.results import Result
from repscope.selection import subset_rows
from repscope.store.pairing import check_paired

ANALYSIS = "compat"
REFERENCE = "-"  # the transform column of the M(old,old), M(new,new) and chance rows


def fit_eval_split(labels: np.ndarray, fit_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(fit rows, held-out rows): a seeded split, stratified by label when every label occurs twice."""
    from sklearn.model_selection import train_test_split

    if not 0 < fit_fraction < 1:
        raise ConfigError(f"fit_fraction must be in (0, 1), got {fit_fraction}")
    idx = np.arange(len(labels))
    _, counts = np.unique(labels, return_counts=True)
    strat = labels if counts.min() >= 2 else None
    try:
        fit, held = train_test_split(idx, train_size=fit_fraction, random_state=seed, stratify=strat)
    except ValueError as err:
        raise DataError(f"cannot split {len(labels)} samples with fit_fraction={fit_fraction}: "
                        f"{str(err).splitlines()[0]}") from None
    return np.sort(fit), np.sort(held)


def compat_arrays(old: Any, new: Any, labels: Any, *, transforms: Sequence[str] | str | None = None,
                  fit_fraction: float = 0.5, seed: int = 0, metric: str = "cosine", ks: Sequence[int] = (1, 5, 10),
                  alpha: float = 1e-2, bct_lambda: float = 1.0, bct_epochs: int = 300, bct_lr: float = 1e-2,
                  progress: bool = False, device: str = "auto") -> tuple[pd.DataFrame, dict[str, Any]]:
    """The compatibility table of old (n, d_o) vs new (n, d_n) features of the same n samples: one row per
    (query, gallery, transform, direction) with every retrieval score, and `compatible:<s>` / `update_gain:<s>`
    on the cross-model rows; plus info (n_fit, n_eval, seconds per transform, skipped transforms)."""
    from repscope.device import as_matrix

    o = as_matrix(old, "cpu", torch.float64, name="old features", min_rows=4, purpose="a compatibility test")
    n = as_matrix(new, "cpu", torch.float64, name="new features", min_rows=4, purpose="a compatibility test")
    y = np.asarray(labels)
    if not (o.shape[0] == n.shape[0] == len(y)):
        raise DataError(f"old has {o.shape[0]} rows, new {n.shape[0]}, labels {len(y)}; pass the same samples")
    names = resolve_transforms(transforms)
    fit, held = fit_eval_split(y, fit_fraction, seed)
    fit_t, held_t = torch.as_tensor(fit), torch.as_tensor(held)
    o_fit, n_fit, y_fit = o[fit_t], n[fit_t], y[fit]
    o_ev, n_ev, y_ev = o[held_t], n[held_t], y[held]

    def score(q: torch.Tensor, g: torch.Tensor) -> dict[str, float]:
        return cross_retrieval(q, g, y_ev, ks=ks, metric=metric, device=device)

    m_oo, m_nn = score(o_ev, o_ev), score(n_ev, n_ev)
    rows: list[dict[str, Any]] = [
        {"query": "old", "gallery": "old", "transform": REFERENCE, "direction": REFERENCE, **m_oo},
        {"query": "new", "gallery": "new", "transform": REFERENCE, "direction": REFERENCE, **m_nn},
        {"query": "random", "gallery": "old", "transform": REFERENCE, "direction": REFERENCE,
         **{f"recall@{k}": chance_recall(y_ev, k) for k in ks}},
    ]
    info: dict[str, Any] = {"n_fit": len(fit), "n_eval": len(held), "d_old": int(o.shape[1]),
                            "d_new": int(n.shape[1]), "seconds": {}, "skipped": {}}
    options = {"alpha": alpha, "lam": bct_lambda, "epochs": bct_epochs, "lr": bct_lr, "metric": metric, "seed": seed,
               "progress": progress, "device": device}
    for name in names:
        if name == "none" and o.shape[1] != n.shape[1]:
            info["skipped"][name] = f"widths differ (old {o.shape[1]}, new {n.shape[1]})"
            continue
        t0 = time.perf_counter()
        for m in make_maps(name, **options):
            m.fit(o_fit, n_fit, y_fit)
            q, g = m.queries(n_ev), m.gallery(o_ev)
            cross = score(q, g)
            qn = "new" if m.direction != NEW_TO_OLD or name == "none" else f"{name}(new)"
            gn = "old" if m.direction == NEW_TO_OLD else f"{name}(old)"
            rows.append({"query": qn, "gallery": gn, "transform": name, "direction": m.direction, **cross,
                         **compatibility(m_oo, m_nn, cross)})
            if qn != "new":  # the mapped model searching its own mapped index (what a compatible model costs)
                rows.append({"query": qn, "gallery": qn, "transform": name, "direction": m.direction,
                             **score(q, q)})
        info["seconds"][name] = time.perf_counter() - t0
    return pd.DataFrame(rows), info


def _pick_layer(store: Any, layer: str | None) -> str:
    """The named layer (glob allowed, must match one), else the store's last pooled layer."""
    if layer is None:
        pooled = [la for la in store.layers if not store.is_tokens(la)]
        if not pooled:
            raise DataError(f"store '{store.name}' has no pooled layers; re-extract with a pooling such as mean")
        return pooled[-1]
    chosen = store.resolve_layers(layer)
    if len(chosen) != 1:
        raise ConfigError(f"layer '{layer}' matches {len(chosen)} layers of store '{store.name}' "
                          f"({format_choices(chosen)}); name exactly one")
    if store.is_tokens(chosen[0]):
        raise DataError(f"layer '{chosen[0]}' of store '{store.name}' is token-level; compatibility needs pooled "
                        "layers (re-extract with a pooling such as mean)")
    return chosen[0]


def compat_stores(old: Any, new: Any, *, target: str = "label", layer_old: str | None = None,
                  layer_new: str | None = None, transforms: Sequence[str] | str | None = None,
                  fit_fraction: float = 0.5, seed: int = 0, max_rows: int | None = 10000, **options: Any) -> Result:
    """Backward compatibility of store `new` with store `old` (same samples) on one layer each (default: each
    store's last pooled layer), label retrieval on column `target`: rows of analysis 'compat' (metric = retrieval
    score, `compatible:<s>` or `update_gain:<s>`; params say query, gallery, transform, direction) with
    `layer`/`layer_index` = the old layer, `layer_b`/`layer_b_index` = the new layer, plus the table as an artifact.

    At most `max_rows` samples are used (a seeded subsample, recorded in params); `options` go to `compat_arrays`
    (metric, ks, alpha, bct_lambda, bct_epochs, bct_lr, progress, device)."""
    from repscope.store.repstore import target_values

    names = resolve_transforms(transforms)  # fail on a bad name before reading anything
    pairing = check_paired(old, new)  # row i of both stores is the same sample (or an explicit opt-in)
    lo, ln = _pick_layer(old, layer_old), _pick_layer(new, layer_new)
    rows, y = target_values(old, target)
    if max_rows is not None and len(rows) > max_rows:
        keep = subset_rows(len(rows), int(max_rows), seed)
        rows, y = rows[keep], y[keep]
    t0 = time.perf_counter()
    xo, xn = old.get(lo, rows), new.get(ln, rows)
    table, info = compat_arrays(xo, xn, y, transforms=names, fit_fraction=fit_fraction, seed=seed, **options)
    secs = time.perf_counter() - t0
    store = f"{old.name} → {new.name}"
    base = {"target": target, "fit_fraction": fit_fraction, "seed": seed, "n_fit": info["n_fit"],
            "n_eval": info["n_eval"], "old_store": old.name, "new_store": new.name,
            "retrieval": options.get("metric", "cosine"), **pairing}
    fields = {"layer": lo, "layer_b": ln, "layer_index": list(old.layers).index(lo),
              "layer_b_index": list(new.layers).index(ln), "store": store, "model": new.model}
    result = Result()
    keys = ["query", "gallery", "transform", "direction"]
    for rec in table.to_dict(orient="records"):
        params = {**base, **{k: rec[k] for k in keys}}
        sec = info["seconds"].get(rec["transform"], secs)
        for metric, value in rec.items():
            if metric in keys or value is None or value != value:
                continue
            result.add(ANALYSIS, metric, float(value), params=params, seconds=sec, **fields)
    result.add_artifact(ANALYSIS, f"table:{store}", {
        "store": store, "layer_old": lo, "layer_new": ln, "target": target, **info,
        "scores": list(SCORES), "table": table.astype(object).where(table.notna(), None).to_dict(orient="records")})
    return result
