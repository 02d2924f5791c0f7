"""Label retrieval, the one implementation: every item (or every query of one model against another model's gallery)
ranks the other samples by distance; relevant = same label; scores recall@k, mAP and nDCG@10.

recall@k = share of queries with ≥ 1 relevant item in the top k (metric-learning Recall@K);
mAP = mean over queries of AP = (1/R)Σ_{r: relevant} precision@r; nDCG@10 = Σᵢ relᵢ/log₂(i+1) / IDCG@10.
Queries whose label occurs once are skipped. A query's own sample is never a candidate.

Used by the probe retrieval sweep and compression scores (`retrieval_metrics`, leave-one-out in float32), the
backward-compatibility criterion (`label_retrieval` with a gallery of another model, float64) and the compressed
search of quantized embeddings (`neighbour_label_recall`, over neighbour lists found elsewhere).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repscope.device import as_matrix, resolve_device
from repscope.errors import ConfigError, DataError
from repscope.kernels.knn import METRICS

NDCG_AT = 10


def _label_codes(labels: Any, n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Integer label codes (np.unique order) and per-code counts, on `device`; one label per row is required."""
    lab = np.asarray(labels)
    if len(lab) != n:
        raise DataError(f"{n} rows but {len(lab)} labels; pass one label per row")
    _, codes_np = np.unique(lab, return_inverse=True)
    codes = torch.as_tensor(codes_np.reshape(-1), device=device)
    return codes, torch.bincount(codes)


def _check_ks(ks: Sequence[int]) -> list[int]:
    out = sorted({int(k) for k in ks})
    if not out or out[0] < 1:
        raise ConfigError("retrieval k must be >= 1")
    return out


def add_scores(rel: Tensor, n_rel: Tensor, ks: Sequence[int], sums: dict[str, float], *,
               complete: bool = True) -> None:
    """Add the retrieval scores of ranked 0/1 relevance rows (queries × ranked candidates, float64) to `sums`:
    recall@k for each k, and with `complete` (every candidate ranked) AP and nDCG@10. `n_rel` (float64) holds each
    query's number of relevant candidates. The one scoring rule of every label retrieval in repscope."""
    dev = rel.device
    for k in ks:
        sums[f"recall@{k}"] += float((rel[:, :k].sum(1) > 0).sum())
    if not complete:
        return
    prec = rel.cumsum(1) / torch.arange(1, rel.shape[1] + 1, device=dev, dtype=torch.float64)
    sums["mAP"] += float(((prec * rel).sum(1) / n_rel).sum())
    m = min(NDCG_AT, rel.shape[1])
    disc = 1.0 / torch.log2(torch.arange(2, m + 2, device=dev, dtype=torch.float64))
    ideal_of = torch.stack([disc[:j].sum() for j in range(1, m + 1)])  # IDCG for 1..m relevant items
    ideal = ideal_of[(n_rel.clamp(max=m) - 1).long()]
    sums["nDCG@10"] += float(((rel[:, :m] * disc).sum(1) / ideal).sum())


def label_retrieval(queries: Any, labels: Any, *, gallery: Any = None, ks: Sequence[int] = (1, 5, 10),
                    metric: str = "cosine", dtype: torch.dtype = torch.float64, chunk_rows: int = 256,
                    device: str | torch.device = "auto") -> dict[str, float]:
    """Label retrieval of `queries` (n, d) against `gallery` (n, d; default: the queries themselves, i.e.
    leave-one-out): query row i ranks gallery rows j ≠ i (row i of both is the same sample); relevant = same label.
    Returns {recall@k for each k, mAP, nDCG@10} (definitions in the module docstring).

    Ranking key in `dtype`: −q̂·ĝ for cosine (rows scaled to unit length; a zero row stays zero), the Gram expansion
    ‖g‖² − 2q·g + ‖q‖² for euclidean; equal keys go to the lower gallery index (stable sort). Memory
    O(chunk_rows × n)."""
    if metric not in METRICS:
        raise ConfigError(f"metric '{metric}' unknown; use cosine or euclidean")
    dev = resolve_device(device)
    cross = gallery is not None
    q = as_matrix(queries, dev, dtype, name="queries" if cross else "features", min_rows=2, purpose="retrieval")
    g = as_matrix(gallery, dev, dtype, name="gallery", min_rows=2, purpose="retrieval") if cross else q
    if q.shape != g.shape:
        raise DataError(f"queries {tuple(q.shape)} and gallery {tuple(g.shape)} must have the same rows and width; "
                        "map one space into the other first")
    n = q.shape[0]
    codes, counts = _label_codes(labels, n, dev)
    ks = _check_ks(ks)
    g_sq = q_sq = None
    if metric == "cosine":  # F.normalize's clamp (float32: 1e-12); a zero row has cosine 0 to everything
        eps = 1e-12 if dtype == torch.float32 else 1e-300
        q = torch.nn.functional.normalize(q, dim=1, eps=eps)
        g = torch.nn.functional.normalize(g, dim=1, eps=eps) if cross else q
    else:
        g_sq = (g * g).sum(1)
        q_sq = (q * q).sum(1) if cross else g_sq
    sums = {f"recall@{k}": 0.0 for k in ks} | {"mAP": 0.0, "nDCG@10": 0.0}
    n_q = 0
    for s in range(0, n, chunk_rows):
        e = min(n, s + chunk_rows)
        qc = codes[s:e]
        n_rel = counts[qc] - 1
        keep = n_rel > 0
        if not bool(keep.any()):
            continue
        if g_sq is None:
            key = -(q[s:e] @ g.T)
        else:
            key = g_sq[None, :] - 2 * q[s:e] @ g.T + q_sq[s:e, None]
        own = torch.arange(s, e, device=dev)[keep, None]
        order = torch.argsort(key[keep], dim=1, stable=True)  # the full ranking, ties by gallery index
        order = order[order != own].view(own.shape[0], n - 1)  # the query's own sample is no candidate
        rel = (codes[order] == qc[keep, None]).to(torch.float64)
        add_scores(rel, n_rel[keep].to(torch.float64), ks, sums)
        n_q += int(keep.sum())
    if n_q == 0:
        raise DataError("no label occurs twice, so no query has a relevant item; check the target column")
    return {k: v / n_q for k, v in sums.items()}


def retrieval_metrics(x: Any, labels: Any, ks: Sequence[int] = (1, 5, 10), metric: str = "cosine",
                      chunk_size: int = 1024, device: str | torch.device = "auto") -> dict[str, float]:
    """Leave-one-out label retrieval: every item queries all others; relevant = same label; ranked in float32.

    recall@k = share of queries with ≥ 1 relevant item in the top k (metric-learning Recall@K);
    mAP = mean over queries of AP = (1/R)Σ_{r: relevant} precision@r; nDCG@10 = Σᵢ relᵢ/log₂(i+1) / IDCG@10.
    Queries whose label occurs once are skipped. Memory O(chunk_size × n). `label_retrieval` with no gallery.
    """
    dev = resolve_device(device)
    t = as_matrix(x, dev, torch.float32, allow_1d=False, purpose="probing")
    return label_retrieval(t, labels, ks=ks, metric=metric, dtype=torch.float32, chunk_rows=chunk_size, device=dev)


def neighbour_label_recall(idx: Tensor, labels: Any) -> float:
    """recall@k of given neighbour lists `idx` (n, k; row i: the neighbours of sample i among the others, found by
    any search, e.g. over compressed codes): the share of queries with ≥ 1 same-label item among them, queries
    whose label occurs once skipped (NaN when no label occurs twice). The recall@k of `label_retrieval` when `idx`
    is its top k."""
    idx = torch.as_tensor(idx).cpu()
    codes, counts = _label_codes(labels, idx.shape[0], idx.device)
    n_rel = counts[codes] - 1
    keep = n_rel > 0
    n_q = int(keep.sum())
    if n_q == 0:
        return float("nan")
    k = idx.shape[1]
    sums = {f"recall@{k}": 0.0}
    rel = (codes[idx[keep]] == codes[keep, None]).to(torch.float64)
    add_scores(rel, n_rel[keep].to(torch.float64), [k], sums, complete=False)
    return sums[f"recall@{k}"] / n_q
