"""Scores used by the probe protocols: confidence intervals, label retrieval (recall@k, mAP, nDCG@10), STS."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from repscope.errors import ConfigError, DataError
from repscope.probe.ridge import spearman


def mean_ci(values: Sequence[float], level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): Student-t interval x̄ ± t_{(1+level)/2, n−1}·s/√n; one value gives a zero-width interval."""
    from scipy.stats import t as student_t

    v = np.asarray(values, dtype=np.float64)
    m = float(v.mean())
    if len(v) < 2:
        return m, m, m
    half = float(student_t.ppf((1 + level) / 2, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))
    return m, m - half, m + half


def wilson_ci(p: float, n: int, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval (Wilson 1927) for a proportion p over n trials:
    (p̂ + z²/2n ± z√(p̂(1−p̂)/n + z²/4n²)) / (1 + z²/n)."""
    from scipy.stats import norm

    if n <= 0:
        return float("nan"), float("nan")
    z = float(norm.ppf((1 + level) / 2))
    den = 1 + z * z / n
    c = (p + z * z / (2 * n)) / den
    h = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return max(0.0, c - h), min(1.0, c + h)


def retrieval_metrics(x: Any, labels: Any, ks: Sequence[int] = (1, 5, 10), metric: str = "cosine",
                      chunk_size: int = 1024, device: str | torch.device = "auto") -> dict[str, float]:
    """Leave-one-out label retrieval: every item queries all others; relevant = same label.

    recall@k = share of queries with ≥ 1 relevant item in the top k (metric-learning Recall@K);
    mAP = mean over queries of AP = (1/R)Σ_{r: relevant} precision@r; nDCG@10 = Σᵢ relᵢ/log₂(i+1) / IDCG@10.
    Queries whose label occurs once are skipped. Memory O(chunk_size × n).
    """
    from repscope.device import resolve_device
    from repscope.probe.base import to_2d

    dev = resolve_device(device)
    t = to_2d(x, dev, torch.float32)
    lab = np.asarray(labels)
    if len(lab) != t.shape[0]:
        raise DataError(f"{t.shape[0]} rows but {len(lab)} labels; pass one label per row")
    _, codes_np = np.unique(lab, return_inverse=True)
    codes = torch.as_tensor(codes_np, device=dev)
    n = t.shape[0]
    if metric == "cosine":
        t = torch.nn.functional.normalize(t, dim=1)
        sq = None
    elif metric == "euclidean":
        sq = (t * t).sum(1)
    else:
        raise ConfigError(f"metric '{metric}' unknown; use cosine or euclidean")
    counts = torch.bincount(codes)
    ks = sorted({int(k) for k in ks})
    if ks[0] < 1:
        raise ConfigError("retrieval k must be >= 1")
    sums = {f"recall@{k}": 0.0 for k in ks} | {"mAP": 0.0, "nDCG@10": 0.0}
    n_q = 0
    disc = 1.0 / torch.log2(torch.arange(2, 12, device=dev, dtype=torch.float64))
    for s in range(0, n, chunk_size):
        q = t[s : s + chunk_size]
        sim = q @ t.T if sq is None else -(sq[None, :] - 2 * q @ t.T + (q * q).sum(1, keepdim=True))
        rows = torch.arange(q.shape[0], device=dev)
        sim[rows, rows + s] = -float("inf")
        qc = codes[s : s + chunk_size]
        n_rel = counts[qc] - 1
        keep = n_rel > 0
        if not bool(keep.any()):
            continue
        sim, qc, n_rel = sim[keep], qc[keep], n_rel[keep].to(torch.float64)
        order = torch.argsort(sim, dim=1, descending=True, stable=True)[:, : n - 1]  # self sorts last
        rel = (codes[order] == qc[:, None]).to(torch.float64)
        for k in ks:
            sums[f"recall@{k}"] += float((rel[:, :k].sum(1) > 0).sum())
        hits = rel.cumsum(1)
        prec = hits / torch.arange(1, rel.shape[1] + 1, device=dev, dtype=torch.float64)
        sums["mAP"] += float(((prec * rel).sum(1) / n_rel).sum())
        m = min(10, rel.shape[1])
        dcg = (rel[:, :m] * disc[:m]).sum(1)
        ideal = torch.stack([disc[: int(min(r, m))].sum() for r in n_rel.tolist()])
        sums["nDCG@10"] += float((dcg / ideal).sum())
        n_q += int(keep.sum())
    if n_q == 0:
        raise DataError("no label occurs twice, so no query has a relevant item; check the target column")
    return {k: v / n_q for k, v in sums.items()}


def pair_cosine(a: Any, b: Any) -> np.ndarray:
    """Row-wise cosine similarity between two aligned (n, d) arrays."""
    ta = torch.as_tensor(np.array(a, dtype=np.float64))
    tb = torch.as_tensor(np.array(b, dtype=np.float64))
    return torch.nn.functional.cosine_similarity(ta, tb, dim=1).numpy()


def sts_spearman(a: Any, b: Any, gold: Any) -> float:
    """STS score: Spearman ρ between cos(aᵢ, bᵢ) and the gold similarity (Reimers & Gurevych 2019 protocol)."""
    return spearman(pair_cosine(a, b), gold)
