"""Geometry profile: run the chosen measures on every layer of a store; returns a `Result` (rows + spectra)."""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.errors import ConfigError, DataError, RepscopeError
from repscope.geometry.measures import check_params, compute, get_measures
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


GEOMETRY_COPIES = 6.0  # float32 rows + the shared float64 matrix + SVD / centred / unit-row float64 work


def geometry_profile(store: RepStore, measures: str | list[str] | None = None, layers: str | list[str] | None = None,
                     target: str | None = "auto", max_rows: int | None = 3000, seed: int = 0,
                     device: str = "auto", params: dict[str, dict[str, Any]] | None = None, spectra: bool = True,
                     progress: Callable[[str], None] | None = None, max_memory: int | str | None = None) -> Result:
    """Compute `measures` for each pooled layer of `store` on a seeded subset of at most `max_rows` rows.

    Label-based measures use the sample column `target` ("auto" = 'label' if present, None = skip them; recorded
    as params["label"]). Positive pairs for `alignment` come from sample columns `pair`/`side`. Returns a
    `Result`: rows of analysis 'geometry' (params measure, n, dim, n_layers, the measure's parameters;
    `layer_index` = position in `store.layers`) and the covariance spectrum of each layer as artifact
    'spectrum:<store>'.

    A layer is loaded only when `GEOMETRY_COPIES` copies of its selected rows fit `max_memory` (bytes or e.g.
    "2GB"; None: 25% of the available RAM, see `repscope.budget`). Otherwise the spectrum and the measures that
    can be computed from streamed moments (`GeometryMeasure.from_stats`: pca, participation ratio, anisotropy,
    rogue) stream over the same rows (params streaming=true), and every other measure runs on a seeded subset of
    the rows that fit (params rows_used, rows_total, subsampled=true).
    """
    from repscope import budget as mb

    chosen = get_measures(measures)
    params = params or {}
    unknown = set(params) - {m.name for m in chosen}
    if unknown:
        raise ConfigError(f"parameters given for measures not run: {', '.join(sorted(unknown))}")
    for m in chosen:
        check_params(m, params.get(m.name, {}))
    layer_names = store.resolve_layers(layers)
    if target == "auto":
        target = default_label_column(store)
    rows_idx = select_rows(store, max_rows, seed)
    if len(rows_idx) < 3:
        raise DataError(f"store '{store.name}' has {len(rows_idx)} rows; geometry needs at least 3")
    labels = store.labels(target)[rows_idx] if target else None
    pairs = positive_pairs(store.samples, rows_idx)
    budget = mb.resolve_budget(max_memory)
    chunk = int(store.manifest.get("chunk_rows", 1024))
    run = _LayerRun(store, chosen, params, target, seed, device, progress)
    spec: dict[str, list[float]] = {}
    for layer in layer_names:
        if store.is_tokens(layer):
            if progress:
                progress(f"skip {layer}: token-level (geometry needs pooled layers)")
            continue
        width = mb.layer_width(store, layer)
        if mb.fits(len(rows_idx), width, budget, GEOMETRY_COPIES):
            lam = run.loaded(layer, partial(store.get, layer, rows=rows_idx, dtype=torch.float32), chosen, labels,
                             pairs, spectra)
        else:
            lam = _over_budget(run, layer, rows_idx, labels, width, budget, chunk, spectra)
        if lam is not None:
            tot = float(lam.sum())
            spec[layer] = [float(v) / tot if tot > 0 else 0.0 for v in lam[:MAX_SPECTRUM].cpu()]
        if progress:
            progress(f"{store.name}/{layer}: done")
    if spectra and spec:
        payload = {"store": store.name, "model": store.model, "n": int(len(rows_idx)), "layers": spec,
                   "order": [name for name in store.layers if name in spec]}
        if run.spectrum_rows:
            payload["rows_used"] = dict(run.spectrum_rows)
        run.result.add_artifact(ANALYSIS, f"{SPECTRUM_ARTIFACT}:{store.name}", payload)
    return run.result


class _LayerRun:
    """Shared state of one profile: the measures, their params, and the `Result` the layers add rows to."""

    def __init__(self, store: RepStore, chosen, params, target, seed, device, progress):
        self.store, self.chosen, self.params, self.target = store, chosen, params, target
        self.seed, self.device, self.progress = seed, device, progress
        self.order = {name: i for i, name in enumerate(store.layers)}
        self.result = Result()
        self.spectrum_rows: dict[str, int] = {}

    def add(self, m, layer: str, vals: dict[str, float], p: dict[str, Any], n: int, dim: int, sec: float,
            extra: dict[str, Any]) -> None:
        meta = {"measure": m.name, "n": n, "dim": dim, "seed": self.seed, "n_layers": len(self.store.layers), **p}
        if m.needs_labels:
            meta["label"] = self.target  # the recorded key stays `label`
        meta.update(extra)
        for metric, v in vals.items():
            self.result.add(ANALYSIS, metric, v, layer=layer, layer_index=self.order[layer], store=self.store.name,
                            model=self.store.model, params=meta, seconds=sec)

    def loaded(self, layer: str, load: Callable[[], torch.Tensor], measures, labels, pairs, spectrum: bool,
               extra: dict[str, Any] | None = None):
        """Run `measures` on the rows `load()` reads; returns the covariance eigenvalues when `spectrum`."""
        # one float64 matrix on the device per layer: measures share it, and one SVD of it through an explicit cache
        x = load()
        x = as_matrix(x.reshape(x.shape[0], -1), self.device)  # the float32 rows are freed here
        svd_cache = SpectrumCache(x)
        for m in measures:
            if (m.needs_labels and labels is None) or (m.needs_pairs and pairs is None):
                continue
            p = {**m.defaults, **self.params.get(m.name, {})}
            t0 = time.perf_counter()
            try:
                with svd_cache:
                    vals = compute(m, x, labels=labels, pairs=pairs, device=self.device, **p)
            except RepscopeError as err:
                if self.progress:
                    self.progress(f"skip {m.name} on {layer}: {err}")
                continue
            self.add(m, layer, vals, p, int(x.shape[0]), int(x.shape[1]), time.perf_counter() - t0, extra or {})
        if not spectrum:
            return None
        with svd_cache:
            return covariance_eigenvalues(x, device=self.device)


def _over_budget(run: _LayerRun, layer: str, rows_idx: np.ndarray, labels, width: int, budget: int, chunk: int,
                 spectrum: bool):
    """A layer over the memory budget: stream what streams over `rows_idx`, subsample the rest to the rows that fit;
    returns the covariance eigenvalues when `spectrum` (streamed, else from the subsample)."""
    from repscope import budget as mb
    from repscope.geometry.measures import compute_from_stats
    from repscope.kernels.streaming import layer_stats

    store = run.store
    can_stream = mb.stream_fits(width, budget, chunk)
    streamed = [m for m in run.chosen if can_stream and m.from_stats is not None]
    rest = [m for m in run.chosen if m not in streamed
            and not (m.needs_labels and labels is None) and not (m.needs_pairs and "pair" not in store.samples.columns)]
    keep = None
    if rest or (spectrum and not can_stream):
        groups = store.samples["pair"].to_numpy()[rows_idx] if "pair" in store.samples.columns else None
        keep = mb.fitting_rows(len(rows_idx), width, budget, GEOMETRY_COPIES, run.seed, groups=groups)
        if len(keep) < 3:
            raise DataError(f"geometry: the memory budget of {mb.format_size(budget)} leaves {len(keep)} row(s) of "
                            f"layer '{layer}'; at least 3 are needed, raise --max-memory")
    need = mb.format_size(mb.layer_bytes(len(rows_idx), width, GEOMETRY_COPIES))
    what = [f"streaming {', '.join(m.name for m in streamed) or 'the spectrum'}"] if streamed or (
        can_stream and spectrum) else []
    what += [f"subsampling {len(keep)} of {len(rows_idx)} rows for "
             f"{', '.join(m.name for m in rest) or 'the spectrum'}"] if keep is not None else []
    mb.warn(f"geometry: layer '{layer}' of '{store.name}' needs ~{need}, over the memory budget of "
            f"{mb.format_size(budget)}; {'; '.join(what)} (raise --max-memory to load it whole)")
    lam = None
    if can_stream and (streamed or spectrum):
        t0 = time.perf_counter()
        st = layer_stats(store, layer, rows_idx)
        pass_sec = (time.perf_counter() - t0) / max(1, len(streamed))  # the one pass, shared out
        for m in streamed:
            p = {**m.defaults, **run.params.get(m.name, {})}
            t1 = time.perf_counter()
            try:
                vals = compute_from_stats(m, st, **p)
            except RepscopeError as err:
                if run.progress:
                    run.progress(f"skip {m.name} on {layer}: {err}")
                continue
            run.add(m, layer, vals, p, int(st.n), width, time.perf_counter() - t1 + pass_sec, {"streaming": True})
        lam = st.eigenvalues() if spectrum else None
    if keep is not None:
        sub_labels = labels[keep] if labels is not None else None
        sub_pairs = positive_pairs(store.samples, rows_idx[keep])
        extra = {"rows_used": int(len(keep)), "rows_total": int(len(rows_idx)), "subsampled": True}
        sub_lam = run.loaded(layer, partial(store.get, layer, rows=rows_idx[keep], dtype=torch.float32), rest,
                             sub_labels, sub_pairs, spectrum and lam is None, extra)
        if lam is None and sub_lam is not None:
            lam = sub_lam
            run.spectrum_rows[layer] = int(len(keep))
    return lam
