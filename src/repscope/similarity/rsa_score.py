"""Representational similarity analysis (Kriegeskorte et al. 2008): compare RDMs by Spearman, Pearson or Kendall τa."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from repscope.errors import ConfigError, DataError
from repscope.similarity.neighbors import unit_rows
from repscope.similarity.prep import to_matrix

RDM_KINDS = ("euclidean", "correlation", "cosine")
COMPARES = ("spearman", "pearson", "kendall")
KENDALL_MAX_PAIRS = 50_000


def rdm(x, kind: str = "euclidean", device="auto") -> Tensor:
    """Condensed RDM (upper triangle, row-major like scipy's pdist): euclidean ‖xᵢ−xⱼ‖, 1 − corr or 1 − cos.

    A sample that is constant (correlation) or all zeros (cosine) is given correlation/cosine 0 with every other.
    """
    if kind not in RDM_KINDS:
        raise ConfigError(f"unknown RDM kind '{kind}'; use one of {', '.join(RDM_KINDS)}")
    x = to_matrix(x, device)
    n = x.shape[0]
    if kind == "euclidean":
        r = (x * x).sum(1)
        g = x @ x.T
        d = (r[:, None] + r[None, :] - 2.0 * g).clamp_min(0.0).sqrt()
    else:
        z = x - x.mean(1, keepdim=True) if kind == "correlation" else x
        z = unit_rows(z)  # a constant (correlation) or all-zero (cosine) sample gets dissimilarity 1 to all others
        d = 1.0 - z @ z.T
    iu = torch.triu_indices(n, n, offset=1, device=x.device)
    return d[iu[0], iu[1]]


def rank_average(v: Tensor) -> Tensor:
    """Ranks 1..m with ties given their average rank (as scipy.stats.rankdata)."""
    order = torch.argsort(v, stable=True)
    sv = v[order]
    _, inverse, counts = torch.unique_consecutive(sv, return_inverse=True, return_counts=True)
    ends = torch.cumsum(counts, 0).to(torch.float64)
    avg = ends - (counts.to(torch.float64) - 1.0) / 2.0
    ranks = torch.empty_like(v, dtype=torch.float64)
    ranks[order] = avg[inverse]
    return ranks


def _standardise(v: Tensor) -> Tensor:
    v = v - v.mean()
    nrm = torch.linalg.vector_norm(v)
    if float(nrm) == 0.0:
        raise DataError("the RDM is constant (all pairwise dissimilarities equal); its correlation is undefined")
    return v / nrm


@dataclass
class RSAStats:
    """A prepared RDM: standardised (ranked for Spearman) vector, or the raw vector for Kendall τa."""

    v: Tensor
    compare: str


def prepare_rsa(x, kind: str = "euclidean", compare: str = "spearman", device="auto") -> RSAStats:
    """Build the RDM once and transform it for the chosen comparison."""
    if compare not in COMPARES:
        raise ConfigError(f"unknown RDM comparison '{compare}'; use one of {', '.join(COMPARES)}")
    v = rdm(x, kind, device)
    if compare == "spearman":
        return RSAStats(_standardise(rank_average(v)), compare)
    if compare == "pearson":
        return RSAStats(_standardise(v), compare)
    if v.numel() > KENDALL_MAX_PAIRS:
        raise ConfigError(f"Kendall τa over {v.numel()} dissimilarities is O(m²); use ≤ 317 samples or spearman")
    return RSAStats(v, compare)


def kendall_tau_a(a: Tensor, b: Tensor, block: int = 2048) -> float:
    """Kendall τa = Σ_{i<j} sign(aᵢ−aⱼ)·sign(bᵢ−bⱼ) / (m(m−1)/2) (ties count 0, no tie correction)."""
    m = a.numel()
    total = 0.0
    for s in range(0, m, block):
        da = torch.sign(a[s : s + block, None] - a[None, :])
        db = torch.sign(b[s : s + block, None] - b[None, :])
        total += float((da * db).sum())
    return total / (m * (m - 1))  # the double sum counts each pair twice


def compare_rsa(a: RSAStats, b: RSAStats) -> float:
    """Correlation between two prepared RDMs."""
    if a.v.shape != b.v.shape:
        raise DataError("the two RDMs cover different numbers of samples; compare the same samples")
    if a.compare == "kendall":
        return kendall_tau_a(a.v, b.v)
    return float(a.v @ b.v)


def rsa(x, y, kind: str = "euclidean", compare: str = "spearman", device="auto") -> float:
    """RSA (Kriegeskorte et al. 2008): corr(RDM(X), RDM(Y)) over sample pairs i<j; Spearman, Pearson or Kendall τa."""
    return compare_rsa(prepare_rsa(x, kind, compare, device), prepare_rsa(y, kind, compare, device))
