"""Truncation analysis (MRL: Kusupati et al. 2022; 2DMSE: Li et al. 2024): scores of the first m coordinates of each
layer, in the raw basis or a PCA basis fit on the fit rows only, over a layer × dim grid."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.compress.evaluate import EvalPlan, as_matrix, eval_plan, load_rows, resolve_target, variant_scores
from repscope.compress.quantized_eval import overlap
from repscope.errors import ConfigError, DataError, check_choice
from repscope.params import split_list
from repscope.results import Result

ANALYSIS = "truncate"
SUMMARY = "truncate_summary"
BASES = ("raw", "pca")
FRACTIONS = (0.99, 0.95)


def prefix_dims(d: int, dims: Sequence[int] | None = None) -> list[int]:
    """Prefix sizes m: `dims` (each ≤ d) or 8, 16, 32, … below d; d itself is always included."""
    if dims is None:
        out, m = [], 8
        while m < d:
            out.append(m)
            m *= 2
    else:
        out = sorted({int(m) for m in dims})
        if out and out[0] < 1:
            raise ConfigError(f"prefix dim {out[0]} must be >= 1")
        if out and out[-1] > d:
            raise DataError(f"prefix dim {out[-1]} is larger than the layer width d={d}; use dims <= {d}")
    return sorted(set(out) | {d})


def check_dims(dims: Any, what: str = "dims") -> list[int] | None:
    """Prefix dims from comma-separated text or a list (None: the default 8, 16, … and d); an empty entry, a
    non-integer or a dim < 1 is a one-line ConfigError naming `what`."""
    names = split_list(dims, what, "8,16,32")
    if names is None:
        return None
    try:
        out = [int(m) for m in names]
    except ValueError:
        raise ConfigError(f"{what} takes comma-separated integers, got {dims!r}") from None
    if min(out) < 1:
        raise ConfigError(f"{what}: prefix dim {min(out)} must be >= 1")
    return out


def check_bases(bases: Sequence[str] | str | None) -> list[str]:
    """Validated basis names (raw, pca)."""
    names = split_list(bases, "bases", "raw,pca") or list(BASES)
    for b in names:
        check_choice(b, BASES, "basis")
    return names


class PCABasis:
    """Principal directions of the fit rows (eigenvectors of the float64 covariance, by decreasing variance):
    transform(x) = (x − μ) V, so the first m columns are the top-m principal components."""

    def fit(self, x: Any) -> PCABasis:
        """Learn μ (d,) and V (d, d) from x (n, d)."""
        t = as_matrix(x).double()
        self.mean_ = t.mean(0)
        c = t - self.mean_
        evals, evecs = torch.linalg.eigh(c.T @ c / max(1, t.shape[0] - 1))
        order = torch.argsort(evals, descending=True)
        self.explained_variance_ = evals[order].clamp_min(0)
        self.components_ = evecs[:, order]
        signs = torch.sign(self.components_[self.components_.abs().argmax(0), torch.arange(t.shape[1])])
        self.components_ = self.components_ * torch.where(signs == 0, 1.0, signs)  # deterministic signs
        return self

    def transform(self, x: Any) -> torch.Tensor:
        """Coordinates in the principal basis, float32."""
        return ((as_matrix(x).double() - self.mean_) @ self.components_).float()


def basis_transform(basis: str, x_fit: torch.Tensor) -> Callable[[torch.Tensor], torch.Tensor]:
    """The map into `basis` (raw: identity; pca: fit on `x_fit`)."""
    if basis == "raw":
        return lambda x: x
    pca = PCABasis().fit(x_fit)
    return pca.transform


def truncation_grid(x: Any, plan: EvalPlan, *, dims: Sequence[int] | None = None,
                    bases: Sequence[str] | str | None = None,
                    transforms: dict[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
                    ks: Sequence[int] = (10,), device: str = "auto") -> pd.DataFrame:
    """Scores of prefix m of each basis: columns basis, dim, bytes_per_vector (float32), metric, value.

    `transforms` adds named, already fitted maps (e.g. a Matryoshka adapter) scored like the bases. A plan with
    neither labels nor STS pairs is scored by `recall@k_vs_full`: the mean share of each eval row's top-k cosine
    neighbours among the eval rows in the full-width input that the prefix's top-k keeps (no labels needed)."""
    t = as_matrix(x)
    ms = prefix_dims(t.shape[1], dims)
    x_fit, x_eval = t[torch.as_tensor(plan.fit)], t[torch.as_tensor(plan.eval)]
    maps = {b: basis_transform(b, x_fit) for b in check_bases(bases)} | dict(transforms or {})
    full = None
    if plan.y_eval is None and plan.gold is None:  # nothing to score against but the input's own neighbourhoods
        full = {k: _cosine_neighbours(x_eval, k) for k in ks}
    rows = []
    for name, fn in maps.items():
        z_fit, z_eval = fn(x_fit), fn(x_eval)
        for m in ms:
            if m > z_fit.shape[1]:
                continue
            scores = variant_scores(z_fit[:, :m].contiguous(), z_eval[:, :m].contiguous(), plan, ks=ks,
                                    device=device)
            for k, ref in (full or {}).items():
                scores[f"recall@{k}_vs_full"] = overlap(_cosine_neighbours(z_eval[:, :m].contiguous(), k), ref)
            rows += [{"basis": name, "dim": m, "bytes_per_vector": 4 * m, "metric": k, "value": v}
                     for k, v in scores.items()]
    return pd.DataFrame(rows, columns=["basis", "dim", "bytes_per_vector", "metric", "value"])


def _cosine_neighbours(z: torch.Tensor, k: int) -> torch.Tensor:
    """Indices (n, k) of each row's k nearest other rows by cosine (`knn_search`'s tie rule)."""
    from repscope.kernels.knn import knn_search

    if not 1 <= k < len(z):
        raise ConfigError(f"k must be between 1 and {len(z) - 1} (eval rows − 1), got {k}")
    return knn_search(z, z, k, metric="cosine", exclude_self=True)[1].to(torch.int64)


def truncation_summary(frame: pd.DataFrame, fractions: Sequence[float] = FRACTIONS) -> pd.DataFrame:
    """Per (store, basis, metric) and fraction f: the smallest (layer, dim) whose score ≥ f × the best full-size
    score over layers (ties: higher score, then earlier layer), with its bytes per vector."""
    out = []
    df = frame.copy()
    df["full"] = df["dim"] == df.groupby(["store", "layer"])["dim"].transform("max")
    for (store, basis, metric), g in df.groupby(["store", "basis", "metric"], sort=True):
        best = g[g["full"]].sort_values("value", ascending=False, kind="stable").iloc[0]
        for f in fractions:
            ok = g[g["value"] >= f * best["value"]] if best["value"] >= 0 else g[g["value"] >= best["value"] / f]
            pick = ok.sort_values(["dim", "value", "layer_index"], ascending=[True, False, True],
                                  kind="stable").iloc[0]
            out.append({"store": store, "basis": basis, "metric": metric, "fraction": f, "layer": pick["layer"],
                        "layer_index": pick["layer_index"], "dim": int(pick["dim"]),
                        "bytes_per_vector": int(pick["bytes_per_vector"]), "value": float(pick["value"]),
                        "best_full": float(best["value"]), "best_full_layer": best["layer"]})
    return pd.DataFrame(out)


def truncate_store(store: Any, *, target: str | None = "label", layers: Sequence[str] | str | None = None,
                   bases: Sequence[str] | str | None = None, dims: Sequence[int] | None = None,
                   ks: Sequence[int] = (10,), seed: int = 0, max_rows: int | None = 20000,
                   device: str = "auto") -> Result:
    """Truncation grid of each pooled layer of `store` (analysis `truncate`: one row per layer × basis × dim ×
    metric, params basis/dim/bytes_per_vector) plus the ≥99%/≥95% summary (analysis `truncate_summary`, value = dim).
    Fit and eval rows are each capped at `max_rows` (seeded; the counts are in params n_fit, n_eval). The default
    target `label` is optional (`resolve_target`): a store with neither labels nor STS pairs is scored by
    `recall@k_vs_full` (see `truncation_grid`)."""
    samples = store.samples
    target = resolve_target(store, target)
    plan = eval_plan(samples, int(store.n_rows), target=target, seed=seed, max_rows=max_rows)
    bases = check_bases(bases)
    chosen = truncation_layers(store, layers, dims)
    order = list(store.layers)
    res = Result()
    frames = []
    for layer in chosen:
        t0 = time.perf_counter()
        x, sub = load_rows(store, layer, plan)
        grid = truncation_grid(x, sub, dims=dims, bases=bases, ks=ks, device=device)
        sec = time.perf_counter() - t0
        idx = order.index(layer)
        for r in grid.itertuples(index=False):
            res.add(ANALYSIS, r.metric, float(r.value), layer=layer, layer_index=idx, store=store.name,
                    model=store.model, seconds=sec / max(1, len(grid)),
                    params={"basis": r.basis, "dim": int(r.dim), "bytes_per_vector": int(r.bytes_per_vector),
                            "target": target, "split": plan.mode, "n_fit": len(plan.fit), "n_eval": len(plan.eval)})
        frames.append(grid.assign(layer=layer, layer_index=idx, store=store.name))
    add_truncation_summary(res, store, pd.concat(frames, ignore_index=True), target)
    return res


def truncation_layers(store, layers: Any, dims: Sequence[int] | None) -> list[str]:
    """The pooled layers a truncation grid runs on (`pooled_layers`), after checking `dims` against each width, so
    a bad dim fails before any work (local or Ray)."""
    from repscope.store import pooled_layers

    chosen = pooled_layers(store, layers, "truncation")
    for la in chosen:
        prefix_dims(int(np.prod(store.layer_info(la)["shape"])), dims)
    return chosen


def add_truncation_summary(res: Result, store, grid: pd.DataFrame, target: str | None) -> None:
    """Add the per-layer "smallest prefix keeping ≥ 99% / 95% of the best full score" rows and the summary
    artifact of `truncation_summary(grid)` to `res` (one code path for the local and the Ray sweep)."""
    summary = truncation_summary(grid)
    for r in summary.itertuples(index=False):
        res.add(SUMMARY, f"{r.metric}@{int(round(r.fraction * 100))}%", float(r.dim), layer=r.layer,
                layer_index=int(r.layer_index), store=store.name, model=store.model,
                params={"basis": r.basis, "score_metric": r.metric, "fraction": r.fraction,
                        "bytes_per_vector": r.bytes_per_vector, "score": r.value, "best_full": r.best_full,
                        "best_full_layer": r.best_full_layer, "target": target})
    res.add_artifact(ANALYSIS, f"summary:{store.name}", summary.to_dict(orient="records"))
