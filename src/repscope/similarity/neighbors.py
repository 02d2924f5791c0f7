"""Neighbourhood measures: mutual-kNN alignment and CKNNA (Huh et al. 2024), kNN Jaccard."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from repscope.errors import ConfigError, DataError
from repscope.similarity.prep import centre, check_variance, to_matrix

METRICS = ("cosine", "euclidean")


def unit_rows(x: Tensor) -> Tensor:
    """Rows scaled to unit norm; all-zero rows (e.g. a sample with every ReLU off) stay zero, so their cosine
    with any sample is defined as 0."""
    nrm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    ok = nrm > 1e-12 * nrm.max().clamp_min(1e-300)
    return torch.where(ok, x / torch.where(ok, nrm, torch.ones_like(nrm)), torch.zeros_like(x))


@dataclass
class KnnStats:
    """k-nearest-neighbour mask (n, n; self excluded) and the kernel the neighbours came from."""

    mask: Tensor
    kernel: Tensor
    k: int


def _kernel(x: Tensor, metric: str) -> Tensor:
    """Similarity whose top-k are the nearest neighbours: cosine, or −squared euclidean distance."""
    if metric == "cosine":
        z = unit_rows(x)
        return z @ z.T
    if metric == "euclidean":
        r = (x * x).sum(1)
        return -(r[:, None] + r[None, :] - 2.0 * (x @ x.T))
    raise ConfigError(f"unknown neighbour metric '{metric}'; use one of {', '.join(METRICS)}")


def prepare_knn(x, k: int = 10, metric: str = "cosine", device="auto") -> KnnStats:
    """Each sample's k nearest other samples, as a boolean n × n mask."""
    x = to_matrix(x, device)
    check_variance(centre(x), x)
    n = x.shape[0]
    if not 1 <= k < n:
        raise ConfigError(f"k must be in [1, n−1] = [1, {n - 1}], got {k}; lower k or add samples")
    kern = _kernel(x, metric)
    masked = kern.clone()
    masked.fill_diagonal_(float("-inf"))
    idx = torch.topk(masked, k, dim=1).indices
    mask = torch.zeros((n, n), dtype=torch.bool, device=x.device)
    mask.scatter_(1, idx, True)
    return KnnStats(mask=mask, kernel=kern, k=k)


def _overlap(a: KnnStats, b: KnnStats) -> Tensor:
    if a.mask.shape != b.mask.shape:
        raise DataError(f"X has {a.mask.shape[0]} rows but Y has {b.mask.shape[0]}; compare the same samples")
    if a.k != b.k:
        raise ConfigError(f"both sides need the same k (got {a.k} and {b.k})")
    return (a.mask & b.mask).sum(1).to(torch.float64)


def compare_mknn(a: KnnStats, b: KnnStats) -> float:
    """Mutual-kNN alignment of two prepared neighbour masks."""
    return float(_overlap(a, b).mean() / a.k)


def compare_jaccard(a: KnnStats, b: KnnStats) -> float:
    """Mean kNN Jaccard index of two prepared neighbour masks."""
    inter = _overlap(a, b)
    return float((inter / (2 * a.k - inter)).mean())


def mutual_knn(x, y, k: int = 10, metric: str = "cosine", device="auto") -> float:
    """Mutual-kNN alignment (Huh et al. 2024): (1/n) Σᵢ |N_X(i) ∩ N_Y(i)| / k, N the k nearest other samples."""
    return compare_mknn(prepare_knn(x, k, metric, device), prepare_knn(y, k, metric, device))


def knn_jaccard(x, y, k: int = 10, metric: str = "cosine", device="auto") -> float:
    """kNN Jaccard similarity: (1/n) Σᵢ |N_X(i) ∩ N_Y(i)| / |N_X(i) ∪ N_Y(i)|."""
    return compare_jaccard(prepare_knn(x, k, metric, device), prepare_knn(y, k, metric, device))


@dataclass
class CknnaStats:
    """Neighbour mask, row-centred kernel K̄ᵢⱼ = Kᵢⱼ − meanₗ Kᵢₗ, and the self-alignment Σ mask·K̄²."""

    knn: KnnStats
    kbar: Tensor
    self_align: float


def prepare_cknna(x, k: int = 10, metric: str = "cosine", device="auto") -> CknnaStats:
    """Kernel, row-centred kernel and kNN mask for CKNNA."""
    knn = prepare_knn(x, k, metric, device)
    kbar = knn.kernel - knn.kernel.mean(1, keepdim=True)
    s = float((knn.mask * kbar * kbar).sum())
    if s <= 0.0:
        raise DataError("the kernel is constant on every neighbourhood (constant representation); CKNNA is undefined")
    return CknnaStats(knn=knn, kbar=kbar, self_align=s)


def compare_cknna(a: CknnaStats, b: CknnaStats) -> float:
    """CKNNA of two prepared representations."""
    _overlap(a.knn, b.knn)
    mask = a.knn.mask & b.knn.mask
    return float((mask * a.kbar * b.kbar).sum()) / (a.self_align * b.self_align) ** 0.5


def cknna(x, y, k: int = 10, metric: str = "cosine", device="auto") -> float:
    """CKNNA (Huh et al. 2024): Σᵢⱼ αᵢⱼ K̄ᵢⱼL̄ᵢⱼ / √(Σ αᴷᵢⱼ K̄²ᵢⱼ · Σ αᴸᵢⱼ L̄²ᵢⱼ), α=1[j∈kNN_K(i)∩kNN_L(i)]."""
    return compare_cknna(prepare_cknna(x, k, metric, device), prepare_cknna(y, k, metric, device))
