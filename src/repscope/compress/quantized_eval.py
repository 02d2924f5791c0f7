"""What int8 and binary embeddings cost: bytes per vector, recall@k against exact float32 search, label retrieval,
STS Spearman and probe accuracy per scheme, with and without rescoring of the top k·r candidates.

Ranking (`ranking`): `"cosine"` (default) ranks int8 and float16 rows by the cosine of their decoded vectors (int8:
bucket centres) and rescores candidates by ⟨float32 query, decoded document renormalised to unit length⟩, i.e. the
cosine the float32 reference search uses. `"sentence-transformers"` is the recipe of sentence-transformers'
`semantic_search_usearch`: int8 candidates by the inner product of the int8 codes (query coded with the same ranges),
rescored by ⟨float32 query, decoded document⟩ without renormalisation. Binary rows are ranked by Hamming distance and
rescored by ⟨query, ±1 bits⟩ under both (the same order as sentence-transformers' ⟨query, 0/1 bits⟩)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.compress.evaluate import EvalPlan, as_matrix, variant_scores
from repscope.compress.quantize_embeddings import SCHEMES, Quantized, check_schemes, quantize
from repscope.compress.search import rescore
from repscope.errors import ConfigError, check_choice
from repscope.kernels.retrieval import neighbour_label_recall

RANKINGS = ("cosine", "sentence-transformers")


def first_stage(q: Quantized, kk: int, *, device: str = "auto", ranking: str = "cosine") -> torch.Tensor:
    """Leave-one-out top-kk of every coded row among the others, by the scheme's registered `search`: Hamming for
    binary; int8 under `ranking="sentence-transformers"`: the inner product of the codes; otherwise (no search, or
    it returns None) the cosine of the decoded vectors (int8 × int8, float16); all ordered by (distance, index)."""
    from repscope.kernels.knn import knn_search

    check_choice(ranking, RANKINGS, "ranking")
    search = SCHEMES.get(q.scheme).search
    idx = search(q, kk, device=device, ranking=ranking) if search is not None else None
    if idx is not None:
        return idx
    dec = q.decode()
    _, idx = knn_search(dec, dec, kk, metric="cosine", exclude_self=True)
    return idx.to(torch.int64)


def label_recall(idx: torch.Tensor, labels: np.ndarray) -> float:
    """Share of queries with ≥ 1 same-label item among their neighbours `idx` (labels occurring once skipped): the
    recall@k of the one label retrieval, `repscope.kernels.retrieval.neighbour_label_recall`."""
    return neighbour_label_recall(idx, labels)


def overlap(idx: torch.Tensor, exact: torch.Tensor) -> float:
    """Mean |top-k ∩ exact top-k| / k: recall@k against exact float32 search."""
    k = exact.shape[1]
    return float((idx[:, :, None] == exact[:, None, :]).any(2).sum(1).double().mean() / k)


def quantization_scores(x: Any, plan: EvalPlan, *, schemes: Sequence[str] | str | None = None, rescore_r: int = 0,
                        k: int = 10, probe: bool = True, device: str = "auto", ranking: str = "cosine") -> pd.DataFrame:
    """Per scheme (float32 first, as the reference) and rescoring factor (0 = none): columns scheme, rescore,
    bytes_per_vector, metric, value. Rows are L2-normalised (cosine); int8 ranges come from the fit rows; `ranking`:
    "cosine" (default) or "sentence-transformers" (see the module docstring)."""
    check_choice(ranking, RANKINGS, "ranking")
    names = ["float32", *[s for s in check_schemes(schemes) if s != "float32"]]
    if rescore_r < 0:
        raise ConfigError(f"rescore factor must be >= 0, got {rescore_r}")
    t = torch.nn.functional.normalize(as_matrix(x), dim=1)
    fit, ev = t[torch.as_tensor(plan.fit)], t[torch.as_tensor(plan.eval)]
    n = ev.shape[0]
    if not 1 <= k < n:
        raise ConfigError(f"k must be between 1 and {n - 1} (eval rows − 1), got {k}")
    exact = first_stage(quantize(ev, "float32"), k, device=device)
    rows: list[dict[str, Any]] = []
    for scheme in names:
        spec = SCHEMES.get(scheme)
        state = spec.calibrate(fit) if spec.calibrate is not None else None  # calibrated on the fit rows
        q_ev, q_fit = quantize(ev, scheme, ranges=state), quantize(fit, scheme, ranges=state)
        base = {"scheme": scheme, "bytes_per_vector": q_ev.bytes_per_vector}
        dec_fit, dec_ev = q_fit.decode(), q_ev.decode()
        scores = variant_scores(dec_fit, dec_ev, plan, ks=(k,), probe=probe, retrieval=False, device=device)
        for r in ([0, rescore_r] if rescore_r and SCHEMES.metadata(scheme).get("rescore") else [0]):
            if scheme == "float32":  # r is 0: the reference search itself
                idx = exact
            else:
                idx = first_stage(q_ev, min(n - 1, k * r) if r else k, device=device, ranking=ranking)
            if r:  # cosine: decoded documents on the unit sphere (binary ±1 rows all have norm √d anyway);
                # sentence-transformers: the decoded documents as they are
                docs = torch.nn.functional.normalize(dec_ev, dim=1) if ranking == "cosine" else dec_ev
                idx = rescore(ev, idx, docs, k)
            out = {f"recall@{k}_vs_float32": overlap(idx, exact)}
            if plan.y_eval is not None:
                out[f"label_recall@{k}"] = label_recall(idx, plan.y_eval)
            if r == 0:
                out.update(scores)
            rows += [{**base, "rescore": r, "metric": m, "value": v} for m, v in out.items()]
    return pd.DataFrame(rows, columns=["scheme", "rescore", "bytes_per_vector", "metric", "value"])
