"""Backward compatibility between model versions (Shen et al. 2020, BCT): cross-model label retrieval
M(query model, gallery model), the empirical compatibility criterion and the update gain.

M(φ_q, φ_g): every held-out sample, embedded by the query model φ_q, searches the *other* held-out samples embedded
by the gallery model φ_g; relevant = same label. The sample's own gallery entry is left out, as in the leave-one-out
`repscope.probe.metrics.retrieval_metrics`, so M(old,old), M(new,new) and M(new→old) rank the same candidates and
equal embeddings give equal scores. mAP needs every gallery item ranked, so the ranking is a full float64 sort (ties
by gallery index, the rule of the exact kNN engine `repscope.geometry.knn`), not a top-k search.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from repscope.device import as_matrix, resolve_device
from repscope.errors import ConfigError, DataError

SCORES = ("recall@1", "mAP")  # the scores the criterion and update gain are reported for (BCT: top-1 and mAP)


def _metrics_from_relevance(rel: torch.Tensor, n_rel: torch.Tensor, ks: Sequence[int],
                            sums: dict[str, float]) -> None:
    """Add recall@k, AP and nDCG@10 of ranked 0/1 relevance rows (queries × ranked gallery) to `sums`, with the
    definitions of `retrieval_metrics`: recall@k = 1[≥1 relevant in top k]; AP = (1/R)Σ_{r relevant} precision@r;
    nDCG@10 = Σᵢ relᵢ/log₂(i+1) / IDCG@10."""
    dev = rel.device
    for k in ks:
        sums[f"recall@{k}"] += float((rel[:, :k].sum(1) > 0).sum())
    prec = rel.cumsum(1) / torch.arange(1, rel.shape[1] + 1, device=dev, dtype=torch.float64)
    sums["mAP"] += float(((prec * rel).sum(1) / n_rel).sum())
    m = min(10, rel.shape[1])
    disc = 1.0 / torch.log2(torch.arange(2, m + 2, device=dev, dtype=torch.float64))
    ideal = torch.cumsum(disc, 0)[(n_rel.clamp(max=m) - 1).long()]
    sums["nDCG@10"] += float(((rel[:, :m] * disc).sum(1) / ideal).sum())


def cross_retrieval(queries: Any, gallery: Any, labels: Any, *, ks: Sequence[int] = (1, 5, 10),
                    metric: str = "cosine", chunk_rows: int = 256, device: str | torch.device = "auto"
                    ) -> dict[str, float]:
    """Cross-model label retrieval M(φ_q, φ_g) (Shen et al. 2020): query row i ranks gallery rows j ≠ i (row i of both
    is the same sample) by float64 distance; relevant = same label; recall@k, mAP and nDCG@10 as `retrieval_metrics`.

    Queries whose label occurs once are skipped. Equals `repscope.probe.metrics.retrieval_metrics(x, labels)` when
    queries = gallery = x (up to its float32 ranking of near-ties). Memory O(chunk_rows × n)."""
    from repscope.geometry.knn import pairwise_sq_distances

    dev = resolve_device(device)
    q = as_matrix(queries, dev, torch.float64, name="queries", min_rows=2, purpose="retrieval")
    g = as_matrix(gallery, dev, torch.float64, name="gallery", min_rows=2, purpose="retrieval")
    if q.shape != g.shape:
        raise DataError(f"queries {tuple(q.shape)} and gallery {tuple(g.shape)} must have the same rows and width; "
                        "map one space into the other first")
    lab = np.asarray(labels)
    n = q.shape[0]
    if len(lab) != n:
        raise DataError(f"{n} rows but {len(lab)} labels; pass one label per row")
    if metric not in ("cosine", "euclidean"):
        raise ConfigError(f"metric '{metric}' unknown; use cosine or euclidean")
    ks = sorted({int(k) for k in ks})
    if not ks or ks[0] < 1:
        raise ConfigError("retrieval k must be >= 1")
    _, codes_np = np.unique(lab, return_inverse=True)
    codes = torch.as_tensor(codes_np, device=dev)
    counts = torch.bincount(codes)
    if metric == "cosine":  # a zero row has cosine 0 to everything, as in the kNN engine
        q = q / torch.linalg.vector_norm(q, dim=1, keepdim=True).clamp_min(1e-300)
        g = g / torch.linalg.vector_norm(g, dim=1, keepdim=True).clamp_min(1e-300)
    sums = {f"recall@{k}": 0.0 for k in ks} | {"mAP": 0.0, "nDCG@10": 0.0}
    n_q = 0
    for s in range(0, n, chunk_rows):
        e = min(n, s + chunk_rows)
        qc = codes[s:e]
        n_rel = counts[qc] - 1
        keep = n_rel > 0
        if not bool(keep.any()):
            continue
        dist = -(q[s:e] @ g.T) if metric == "cosine" else pairwise_sq_distances(q[s:e], g)
        idx = torch.argsort(dist, dim=1, stable=True)  # the full ranking, ties by gallery index
        own = torch.arange(s, e, device=dev)[:, None]
        idx = idx[idx != own].view(e - s, n - 1)  # drop the query's own sample from its gallery
        rel = (codes[idx] == qc[:, None]).to(torch.float64)[keep]
        _metrics_from_relevance(rel, n_rel[keep].to(torch.float64), ks, sums)
        n_q += int(keep.sum())
    if n_q == 0:
        raise DataError("no label occurs twice, so no query has a relevant item; check the target column")
    return {k: v / n_q for k, v in sums.items()}


def chance_recall(labels: Any, k: int = 1) -> float:
    """Expected recall@k of a random ranking: mean over queries of 1 − C(N−1−R, k)/C(N−1, k) (hypergeometric),
    R = other samples with the query's label, N − 1 candidates; queries with R = 0 skipped."""
    _, codes, counts = np.unique(np.asarray(labels), return_inverse=True, return_counts=True)
    n = len(codes)
    r = counts[codes] - 1
    r = r[r > 0]
    if not len(r) or n < 2:
        return float("nan")
    miss = [math.comb(n - 1 - int(ri), k) / math.comb(n - 1, k) for ri in r]
    return float(1.0 - np.mean(miss))


def is_compatible(m_new_old: float, m_old_old: float) -> bool:
    """Empirical compatibility criterion (Shen et al. 2020, Def. 2): M(φ_new, φ_old) > M(φ_old, φ_old)."""
    return bool(m_new_old > m_old_old)


def update_gain(m_new_old: float, m_old_old: float, m_new_new: float) -> float:
    """Update gain (Shen et al. 2020): (M(new→old) − M(old,old)) / |M(new,new) − M(old,old)|.

    The paper's ratio whenever the new model improves on the old (denominator > 0); the absolute value keeps the
    sign meaningful when it does not (gain > 0 ⇔ cross-model search beats old-vs-old). NaN when M(new,new) =
    M(old,old)."""
    den = abs(m_new_new - m_old_old)
    return float("nan") if den < 1e-12 else float((m_new_old - m_old_old) / den)


def compatibility(m_old_old: dict[str, float], m_new_new: dict[str, float], m_new_old: dict[str, float],
                  scores: Sequence[str] = SCORES) -> dict[str, float]:
    """{'compatible:<score>': 1.0/0.0, 'update_gain:<score>': gain} for each retrieval score in `scores`."""
    out: dict[str, float] = {}
    for s in scores:
        out[f"compatible:{s}"] = float(is_compatible(m_new_old[s], m_old_old[s]))
        out[f"update_gain:{s}"] = update_gain(m_new_old[s], m_old_old[s], m_new_new[s])
    return out
