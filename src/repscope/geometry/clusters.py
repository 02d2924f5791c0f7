"""Cluster separation with respect to given labels: silhouette, Davies–Bouldin, Calinski–Harabasz, Dunn, Xie–Beni.

Pairwise distances are formed in row chunks (memory O(chunk · n)) in float64, on centred data to limit cancellation.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from repscope.errors import DataError
from repscope.geometry.spectrum import as_matrix
from repscope.kernels.knn import pairwise_sq_distances, pick_chunk_rows


def _prepare(x, labels, device: str) -> tuple[Tensor, Tensor, Tensor]:
    t = as_matrix(x, device)
    y = np.asarray(labels)
    if y.ndim != 1 or y.shape[0] != t.shape[0]:
        raise DataError(f"labels must be 1-D with {t.shape[0]} entries (one per row), got shape {y.shape}")
    _, codes = np.unique(y, return_inverse=True)
    k = int(codes.max()) + 1 if codes.size else 0
    if not 2 <= k <= t.shape[0] - 1:
        raise DataError(f"cluster scores need 2 <= number of labels <= n - 1, got {k} labels for {t.shape[0]} rows; "
                        "pick a label column with several classes")
    c = torch.as_tensor(codes.reshape(-1), device=t.device, dtype=torch.long)
    counts = torch.bincount(c, minlength=k).to(torch.float64)
    return t - t.mean(0, keepdim=True), c, counts


def _centroids(t: Tensor, c: Tensor, counts: Tensor) -> Tensor:
    sums = torch.zeros(counts.numel(), t.shape[1], dtype=t.dtype, device=t.device).index_add_(0, c, t)
    return sums / counts[:, None]


def _chunks(n: int, chunk_rows: int | None):
    step = chunk_rows or pick_chunk_rows(n)
    for s in range(0, n, step):
        yield s, min(n, s + step)


def _pairwise_pass(t: Tensor, c: Tensor, counts: Tensor, chunk_rows: int | None) -> tuple[float, float, float]:
    """One chunked pass over all pairwise distances: (silhouette mean, min inter-cluster, max intra-cluster)."""
    n, k = t.shape[0], counts.numel()
    onehot = torch.zeros(n, k, dtype=t.dtype, device=t.device)
    onehot[torch.arange(n, device=t.device), c] = 1.0
    total = torch.zeros((), dtype=torch.float64, device=t.device)
    inter = torch.tensor(float("inf"), dtype=torch.float64, device=t.device)
    diam = torch.zeros((), dtype=torch.float64, device=t.device)
    for s, e in _chunks(n, chunk_rows):
        d = pairwise_sq_distances(t[s:e], t).sqrt_()
        r = torch.arange(e - s, device=t.device)
        d[r, r + s] = 0.0
        own = c[s:e]
        same = own[:, None] == c[None, :]
        inter = torch.minimum(inter, torch.where(same, torch.full_like(d, float("inf")), d).min())
        diam = torch.maximum(diam, torch.where(same, d, torch.zeros_like(d)).max())
        sums = d @ onehot  # (b, k) summed distances to each cluster
        n_own = counts[own]
        a = sums[r, own] / (n_own - 1).clamp(min=1)
        means = sums / counts[None, :]
        means[r, own] = float("inf")
        b = means.min(1).values
        sil = torch.nan_to_num((b - a) / torch.maximum(a, b), nan=0.0)
        total += torch.where(n_own > 1, sil, torch.zeros_like(sil)).sum()
    return float(total / n), float(inter), float(diam)


def silhouette_score(x, labels, device: str = "auto", chunk_rows: int | None = None) -> float:
    """Silhouette (Rousseeuw 1987): mean of (b − a)/max(a, b); a = mean distance to own cluster, b = to nearest other.

    Samples in singleton clusters score 0, as in scikit-learn.
    """
    return _pairwise_pass(*_prepare(x, labels, device), chunk_rows)[0]


def davies_bouldin_score(x, labels, device: str = "auto") -> float:
    """Davies–Bouldin (1979): mean over clusters i of maxⱼ≠ᵢ (sᵢ + sⱼ)/‖cᵢ − cⱼ‖, sᵢ = mean distance to centroid cᵢ."""
    t, c, counts = _prepare(x, labels, device)
    cen = _centroids(t, c, counts)
    dist = torch.linalg.vector_norm(t - cen[c], dim=1)
    s = torch.zeros_like(counts).index_add_(0, c, dist) / counts
    cd = torch.cdist(cen, cen)
    if torch.allclose(s, torch.zeros_like(s)) or torch.allclose(cd, torch.zeros_like(cd)):
        return 0.0
    cd = torch.where(cd > 0, cd, torch.full_like(cd, float("inf")))  # coincident centroids (and i = j) add nothing
    ratio = (s[:, None] + s[None, :]) / cd
    return float(ratio.max(1).values.mean())


def calinski_harabasz_score(x, labels, device: str = "auto") -> float:
    """Calinski–Harabasz (1974): [tr(B)/(k−1)] / [tr(W)/(n−k)], between- and within-cluster dispersion."""
    t, c, counts = _prepare(x, labels, device)
    n, k = t.shape[0], counts.numel()
    cen = _centroids(t, c, counts)
    within = ((t - cen[c]) ** 2).sum()
    between = (counts * ((cen - t.mean(0)) ** 2).sum(1)).sum()
    if within == 0:
        return 1.0
    return float(between * (n - k) / (within * (k - 1)))


def dunn_index(x, labels, device: str = "auto", chunk_rows: int | None = None) -> float:
    """Dunn index (Dunn 1974): min distance between points of different clusters / max within-cluster diameter."""
    _, inter, diam = _pairwise_pass(*_prepare(x, labels, device), chunk_rows)
    return inter / diam if diam > 0 else float("inf")


def xie_beni_index(x, labels, device: str = "auto") -> float:
    """Xie–Beni (1991), crisp partition: Σᵢ ‖xᵢ − c_{yᵢ}‖² / (n · minⱼ≠ₖ ‖cⱼ − cₖ‖²); lower is better."""
    t, c, counts = _prepare(x, labels, device)
    cen = _centroids(t, c, counts)
    compact = ((t - cen[c]) ** 2).sum()
    cd = pairwise_sq_distances(cen, cen)
    cd.fill_diagonal_(float("inf"))
    sep = cd.min()
    return float(compact / (t.shape[0] * sep)) if sep > 0 else float("inf")


def cluster_scores(x, labels, device: str = "auto") -> dict[str, float]:
    """All five separation scores for one labelled representation."""
    sil, inter, diam = _pairwise_pass(*_prepare(x, labels, device), None)  # one O(n²) pass for both
    return {
        "silhouette": sil,
        "davies_bouldin": davies_bouldin_score(x, labels, device),
        "calinski_harabasz": calinski_harabasz_score(x, labels, device),
        "dunn": inter / diam if diam > 0 else float("inf"),
        "xie_beni": xie_beni_index(x, labels, device),
    }
