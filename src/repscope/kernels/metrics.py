"""Scores shared by the analyses: confidence intervals (Student t, Wilson), Spearman's ρ and the STS score.
Label retrieval lives in `repscope.kernels.retrieval`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


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


def spearman(a: Any, b: Any) -> float:
    """Spearman's ρ: Pearson correlation of the (average-tie) ranks of a and b."""
    from scipy.stats import rankdata

    ra, rb = rankdata(np.asarray(a, dtype=np.float64)), rankdata(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


def pair_cosine(a: Any, b: Any) -> np.ndarray:
    """Row-wise cosine similarity between two aligned (n, d) arrays."""
    ta = torch.as_tensor(np.array(a, dtype=np.float64))
    tb = torch.as_tensor(np.array(b, dtype=np.float64))
    return torch.nn.functional.cosine_similarity(ta, tb, dim=1).numpy()


def sts_spearman(a: Any, b: Any, gold: Any) -> float:
    """STS score: Spearman ρ between cos(aᵢ, bᵢ) and the gold similarity (Reimers & Gurevych 2019 protocol)."""
    return spearman(pair_cosine(a, b), gold)
