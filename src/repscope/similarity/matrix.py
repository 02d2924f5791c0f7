"""Layer × layer similarity matrices, within one set of layers or across two, each layer prepared once per measure."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.errors import DataError, StoreError
from repscope.results import Row
from repscope.similarity.registry import Measure, measures

LayerDict = Mapping[str, Any]


def similarity_matrices(layers_a: LayerDict, layers_b: LayerDict | None = None,
                        measure_names: str | Sequence[str | Measure] | None = "linear_cka",
                        device: str | torch.device = "auto") -> dict[str, pd.DataFrame]:
    """{measure: DataFrame(index=layers of A, columns=layers of B)}; B defaults to A (then symmetric measures
    fill only the upper triangle). Each layer's statistics (centred data, Gram, basis, RDM, kNN mask) are built
    once per measure and reused for every pair."""
    ms = (measures(measure_names) if isinstance(measure_names, str) or measure_names is None
          else [m if isinstance(m, Measure) else measures(m)[0] for m in measure_names])
    within = layers_b is None
    lb = layers_a if within else layers_b
    out: dict[str, pd.DataFrame] = {}
    for m in ms:
        sa = {k: m.prepare(v, device, "a") for k, v in layers_a.items()}
        if within and m.prepare_b_fn is None:
            sb = sa
        else:
            sb = {k: m.prepare(v, device, "b") for k, v in lb.items()}
        names_a, names_b = list(layers_a), list(lb)
        mat = np.full((len(names_a), len(names_b)), np.nan)
        for i, a in enumerate(names_a):
            for j, b in enumerate(names_b):
                if within and m.symmetric and j < i:
                    continue
                mat[i, j] = m.compare(sa[a], sb[b])
        if within and m.symmetric:
            low = np.tril_indices(len(names_a), -1)
            mat[low] = mat.T[low]
        out[m.name] = pd.DataFrame(mat, index=names_a, columns=names_b)
        del sa, sb
    return out


def load_layers(store, layers: Sequence[str], rows: np.ndarray | None = None) -> dict[str, torch.Tensor]:
    """Pooled layers of a RepStore as (n, features) float32 tensors (conv maps flattened)."""
    out = {}
    for layer in layers:
        if store.is_tokens(layer):
            raise StoreError(f"layer '{layer}' of store '{store.name}' is token-level; extract it with pooling "
                             "(e.g. --pooling mean) to compare layers")
        t = store.get(layer, rows, dtype=torch.float32)
        out[layer] = t.reshape(t.shape[0], -1)
    return out


def pick_rows(store_a, store_b=None, max_rows: int | None = None, seed: int = 0) -> np.ndarray | None:
    """Row subset shared by both stores (checks they describe the same samples); None means all rows."""
    n = store_a.n_rows
    if store_b is not None and store_b is not store_a:
        if store_b.n_rows != n:
            raise DataError(f"stores '{store_a.name}' ({n} rows) and '{store_b.name}' ({store_b.n_rows} rows) hold "
                            "different samples; compare stores extracted on the same dataset")
        ia, ib = store_a.samples.get("id"), store_b.samples.get("id")
        if ia is not None and ib is not None and not np.array_equal(ia.to_numpy()[:n], ib.to_numpy()[:n]):
            raise DataError(f"stores '{store_a.name}' and '{store_b.name}' list different sample ids; compare stores "
                            "extracted on the same samples in the same order")
    if max_rows is None or max_rows >= n:
        return None
    rng = np.random.default_rng(seed)
    return np.sort(rng.choice(n, size=max_rows, replace=False))


def compare_stores(store_a, store_b=None, measure_names: str | Sequence[str] | None = "linear_cka",
                   layers_a=None, layers_b=None, max_rows: int | None = 5000, seed: int = 0,
                   device: str | torch.device = "auto") -> tuple[dict[str, pd.DataFrame], list[Row]]:
    """Layer × layer matrices between stores (or within one) and the tidy rows to record (analysis 'similarity')."""
    la = store_a.resolve_layers(layers_a)
    other = store_b if store_b is not None else store_a
    lb = other.resolve_layers(layers_b) if (store_b is not None or layers_b is not None) else None
    rows = pick_rows(store_a, store_b, max_rows, seed)
    xa = load_layers(store_a, la, rows)
    xb = None
    if lb is not None:
        xb = {k: xa[k] for k in lb if k in xa} if other is store_a else {}
        xb.update(load_layers(other, [k for k in lb if k not in xb], rows))
        xb = {k: xb[k] for k in lb}
    n = store_a.n_rows if rows is None else len(rows)
    ms = measures(measure_names) if isinstance(measure_names, str) or measure_names is None \
        else [measures(m)[0] for m in measure_names]
    mats: dict[str, pd.DataFrame] = {}
    out_rows: list[Row] = []
    label = store_a.name if store_b is None or other is store_a else f"{store_a.name} vs {other.name}"
    for m in ms:
        t0 = time.perf_counter()
        mat = similarity_matrices(xa, xb, [m], device)[m.name]
        secs = (time.perf_counter() - t0) / max(1, mat.size)
        mats[m.name] = mat
        params = {"measure": m.name, "kind": m.kind, "n": n, "store_b": other.name, **m.params}
        out_rows += matrix_rows(mat, m.name, label, store_a.model, params, secs)
    return mats, out_rows


def matrix_rows(mat: pd.DataFrame, metric: str, store: str, model: str | None, params: dict, seconds: float | None,
                analysis: str = "similarity") -> list[Row]:
    """Tidy rows of one layer × layer matrix; params gain the layers' model-order positions (i, j) for the report."""
    out = []
    for i, a in enumerate(mat.index):
        for j, b in enumerate(mat.columns):
            out.append(Row(analysis, metric, float(mat.iloc[i, j]), layer=str(a), layer_b=str(b), store=store,
                           model=model, params={**params, "i": i, "j": j}, seconds=seconds))
    return out
