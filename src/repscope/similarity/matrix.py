"""Layer × layer similarity matrices, within one set of layers or across two, each layer prepared once per measure."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.errors import ConfigError, StoreError
from repscope.results import Result, Row
from repscope.similarity.registry import MEASURES, SimilarityMeasure, measures
from repscope.store.pairing import check_paired, pairing_params
from repscope.store.repstore import layer_position

LayerDict = Mapping[str, Any]


def similarity_matrices(layers_a: LayerDict, layers_b: LayerDict | None = None,
                        measure_names: str | Sequence[str | SimilarityMeasure] | None = "linear_cka",
                        device: str | torch.device = "auto") -> dict[str, pd.DataFrame]:
    """{measure: DataFrame(index=layers of A, columns=layers of B)}; B defaults to A (then symmetric measures
    fill only the upper triangle). Each layer's statistics (centred data, Gram, basis, RDM, kNN mask) are built
    once per measure and reused for every pair."""
    ms = (measures(measure_names) if isinstance(measure_names, str) or measure_names is None
          else [m if isinstance(m, SimilarityMeasure) else measures(m)[0] for m in measure_names])
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
    """Row subset shared by both stores (which must pair: `repscope.store.pairing.check_paired`); None means all
    rows."""
    check_paired(store_a, store_b)
    n = store_a.n_rows
    if max_rows is None or max_rows >= n:
        return None
    from repscope.selection import subset_rows

    return subset_rows(n, max_rows, seed)


COMPARE_COPIES = 5.0  # float32 layers + their centred float64 copies + a float64 temporary while preparing


def compare_setup(store_a: Any, store_b: Any, measure_names: str | Sequence[str] | None, layers_a: Any, layers_b: Any,
                  max_rows: int | None, seed: int) -> tuple[list[str], Any, list[str] | None, np.ndarray | None, int,
                                                            list[Any]]:
    """What a comparison works on: (layers of A, the other store, layers of B or None within one store, the seeded
    row subset or None, its size, the measure objects)."""
    la = store_a.resolve_layers(layers_a)
    other = store_b if store_b is not None else store_a
    lb = other.resolve_layers(layers_b) if (store_b is not None or layers_b is not None) else None
    rows = pick_rows(store_a, store_b, max_rows, seed)
    n = store_a.n_rows if rows is None else len(rows)
    ms = measures(measure_names) if isinstance(measure_names, str) or measure_names is None \
        else [measures(m)[0] for m in measure_names]
    return la, other, lb, rows, n, ms


def compare_stores(store_a, store_b=None, measure_names: str | Sequence[str] | None = "linear_cka",
                   layers_a=None, layers_b=None, max_rows: int | None = 5000, seed: int = 0,
                   device: str | torch.device = "auto", max_memory: int | str | None = None) -> Result:
    """Layer × layer similarity between two stores (or within one) as a `Result` of analysis 'similarity': one row
    per (measure, layer of A, layer of B) with `layer_index`/`layer_b_index` = the layers' positions in their stores.
    `result_matrices` turns the rows back into one DataFrame per measure.

    The layers are loaded only when `COMPARE_COPIES` copies of all of them (on the seeded `max_rows` subset) fit
    `max_memory` (bytes or e.g. "2GB"; None: 25% of the available RAM, see `repscope.budget`). Otherwise linear and
    debiased CKA stream over the same rows (`streaming_cka_matrix`; params streaming=true) and every other measure
    runs on a further seeded subset of the rows that fit (params rows_used, rows_total, subsampled=true)."""
    from repscope import budget as mb

    la, other, lb, rows, n, ms = compare_setup(store_a, store_b, measure_names, layers_a, layers_b, max_rows, seed)
    loaded = [(store_a, k) for k in la] + [(other, k) for k in (lb or []) if other is not store_a or k not in la]
    widths = [mb.layer_width(st, k) for st, k in loaded]
    budget = mb.resolve_budget(max_memory)
    if mb.fits(n, sum(widths), budget, COMPARE_COPIES):
        return _compare_loaded(store_a, store_b, ms, la, lb, rows, device)
    from repscope.similarity.streaming import streaming_cka_bytes

    can_stream = streaming_cka_bytes(widths) <= budget
    streamed = [m for m in ms if can_stream and MEASURES.metadata(m.name).get("streamable")]  # declared flag
    rest = [m for m in ms if m not in streamed]
    keep = None
    if rest:
        keep = mb.fitting_rows(store_a.n_rows if rows is None else rows, sum(widths), budget, COMPARE_COPIES, seed)
    need = mb.format_size(mb.layer_bytes(n, sum(widths), COMPARE_COPIES))
    what = [f"streaming {', '.join(m.name for m in streamed)}"] if streamed else []
    what += [f"subsampling {len(keep)} of {n} rows for {', '.join(m.name for m in rest)}"] if rest else []
    mb.warn(f"compare: the layers need ~{need}, over the memory budget of {mb.format_size(budget)}; "
            f"{'; '.join(what)} (raise --max-memory to load them whole)")
    result = Result()
    label = store_a.name if store_b is None or other is store_a else f"{store_a.name} vs {other.name}"
    for m in ms:
        if m not in streamed:
            part = _compare_loaded(store_a, store_b, [m], la, lb, keep, device)
            for row in part.rows:
                row.params.update(rows_used=len(keep), rows_total=n, subsampled=True)
            result.extend(part)
            continue
        from repscope.similarity.streaming import streaming_cka_matrix

        t0 = time.perf_counter()
        mat = streaming_cka_matrix(store_a, store_b, la, lb, debiased=m.name == "debiased_cka", device=device,
                                   rows=rows)
        secs = (time.perf_counter() - t0) / max(1, mat.size)
        params = {"measure": m.name, "kind": m.kind, "n": n, "store_b": other.name, **m.params, "streaming": True,
                  **pairing_params(store_a)}
        result.extend(matrix_rows(mat, m.name, label, store_a.model, params, secs, store_a=store_a, store_b=other))
    return result


def _compare_loaded(store_a, store_b, ms: list[SimilarityMeasure], la: list[str], lb: list[str] | None,
                    rows: np.ndarray | None, device: str | torch.device) -> Result:
    """`compare_stores` on layers loaded whole (for `rows`, None = all)."""
    other = store_b if store_b is not None else store_a
    xa = load_layers(store_a, la, rows)
    xb = None
    if lb is not None:
        xb = {k: xa[k] for k in lb if k in xa} if other is store_a else {}
        xb.update(load_layers(other, [k for k in lb if k not in xb], rows))
        xb = {k: xb[k] for k in lb}
    n = store_a.n_rows if rows is None else len(rows)
    result = Result()
    label = store_a.name if store_b is None or other is store_a else f"{store_a.name} vs {other.name}"
    for m in ms:
        t0 = time.perf_counter()
        mat = similarity_matrices(xa, xb, [m], device)[m.name]
        secs = (time.perf_counter() - t0) / max(1, mat.size)
        params = {"measure": m.name, "kind": m.kind, "n": n, "store_b": other.name, **m.params,
                  **pairing_params(store_a)}
        result.extend(matrix_rows(mat, m.name, label, store_a.model, params, secs, store_a=store_a, store_b=other))
    return result


def compare_stores_streaming(store_a, store_b=None, measure_names: str | Sequence[str] = "linear_cka",
                             layers_a=None, layers_b=None, device: str | torch.device = "auto") -> Result:
    """Exact linear (or debiased) CKA over every row, read chunk by chunk (`streaming_cka_matrix`), as a `Result`
    shaped like `compare_stores`' (params gain streaming=true); only linear_cka and debiased_cka stream."""
    from repscope.similarity.streaming import streaming_cka_matrix

    ms = measures(measure_names) if isinstance(measure_names, str) else [measures(m)[0] for m in measure_names]
    bad = [m.name for m in ms if m.name not in ("linear_cka", "debiased_cka")]
    if bad:
        raise ConfigError(f"--streaming computes only cka and debiased_cka, not {', '.join(bad)}; drop them "
                          "or leave out --streaming")
    pairing = check_paired(store_a, store_b)
    result = Result()
    other = store_b if store_b is not None else store_a
    label = store_a.name if store_b is None else f"{store_a.name} vs {store_b.name}"
    for m in ms:
        t0 = time.perf_counter()
        mat = streaming_cka_matrix(store_a, store_b, layers_a, layers_b, debiased=m.name == "debiased_cka",
                                   device=device)
        secs = (time.perf_counter() - t0) / max(1, mat.size)
        params = {"measure": m.name, "kind": m.kind, "n": store_a.n_rows, "store_b": other.name, "streaming": True,
                  **pairing}
        result.extend(matrix_rows(mat, m.name, label, store_a.model, params, secs, store_a=store_a, store_b=other))
    return result


def matrix_rows(mat: pd.DataFrame, metric: str, store: str, model: str | None, params: dict, seconds: float | None,
                analysis: str = "similarity", store_a=None, store_b=None) -> list[Row]:
    """Tidy rows of one layer × layer matrix; `layer_index`/`layer_b_index` are the layers' positions in
    `store_a`/`store_b` (model order; the matrix's own order when no store is given)."""
    out = []
    for i, a in enumerate(mat.index):
        ia = layer_position(store_a, str(a)) if store_a is not None else i
        for j, b in enumerate(mat.columns):
            jb = layer_position(store_b, str(b)) if store_b is not None else j
            out.append(Row(analysis, metric, float(mat.iloc[i, j]), layer=str(a), layer_b=str(b), store=store,
                           model=model, params=dict(params), seconds=seconds, layer_index=ia, layer_b_index=jb))
    return out


def result_matrices(result: Result | pd.DataFrame, analysis: str = "similarity") -> dict[str, pd.DataFrame]:
    """{metric: layer × layer DataFrame} from `compare_stores` rows, layers in model order (`layer_index`)."""
    df = result.frame() if isinstance(result, Result) else result
    df = df[df["analysis"] == analysis]
    out: dict[str, pd.DataFrame] = {}
    for metric, d in df.groupby("metric", sort=False):
        rows = d.drop_duplicates("layer").sort_values("layer_index", kind="stable")["layer"].tolist()
        cols = d.drop_duplicates("layer_b").sort_values("layer_b_index", kind="stable")["layer_b"].tolist()
        piv = d.pivot_table(index="layer", columns="layer_b", values="value", aggfunc="mean", dropna=False)
        out[str(metric)] = piv.reindex(index=rows, columns=cols)
    return out
