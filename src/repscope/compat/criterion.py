"""Backward compatibility between model versions (Shen et al. 2020, BCT): cross-model label retrieval
M(query model, gallery model), the empirical compatibility criterion and the update gain.

M(φ_q, φ_g): every held-out sample, embedded by the query model φ_q, searches the *other* held-out samples embedded
by the gallery model φ_g; relevant = same label. The sample's own gallery entry is left out, as in the leave-one-out
`repscope.kernels.retrieval.retrieval_metrics`, so M(old,old), M(new,new) and M(new→old) rank the same candidates
and equal embeddings give equal scores. mAP needs every gallery item ranked, so the ranking is a full float64 sort
(ties by gallery index, the rule of the exact kNN engine `repscope.kernels.knn`), not a top-k search; the one
implementation is `repscope.kernels.retrieval.label_retrieval`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from repscope.kernels.retrieval import label_retrieval

SCORES = ("recall@1", "mAP")  # the scores the criterion and update gain are reported for (BCT: top-1 and mAP)


def cross_retrieval(queries: Any, gallery: Any, labels: Any, *, ks: Sequence[int] = (1, 5, 10),
                    metric: str = "cosine", chunk_rows: int = 256, device: str | torch.device = "auto"
                    ) -> dict[str, float]:
    """Cross-model label retrieval M(φ_q, φ_g) (Shen et al. 2020): query row i ranks gallery rows j ≠ i (row i of both
    is the same sample) by float64 distance; relevant = same label; recall@k, mAP and nDCG@10 as `retrieval_metrics`.

    Queries whose label occurs once are skipped. Equals `repscope.kernels.retrieval.retrieval_metrics(x, labels)`
    when queries = gallery = x (up to its float32 ranking of near-ties): both are
    `repscope.kernels.retrieval.label_retrieval`. Memory O(chunk_rows × n)."""
    return label_retrieval(queries, labels, gallery=gallery, ks=ks, metric=metric, dtype=torch.float64,
                           chunk_rows=chunk_rows, device=device)


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
