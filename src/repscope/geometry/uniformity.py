"""Alignment and uniformity of normalized embeddings (Wang & Isola 2020)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from repscope.errors import DataError
from repscope.geometry.spectrum import as_matrix
from repscope.kernels.knn import pairwise_sq_distances, pick_chunk_rows


def _normalize(t: Tensor) -> Tensor:
    nrm = torch.linalg.vector_norm(t, dim=1, keepdim=True)
    return t / torch.where(nrm > 0, nrm, torch.ones_like(nrm))


def alignment(x, y, alpha: float = 2.0, normalize: bool = True, device: str = "auto") -> float:
    """Alignment (Wang & Isola 2020): mean over paired rows of x, y of ‖f(x) − f(y)‖₂^α; lower is better."""
    a, b = as_matrix(x, device), as_matrix(y, device)
    if a.shape != b.shape:
        raise DataError(f"positive pairs need equal shapes, got {tuple(a.shape)} and {tuple(b.shape)}")
    if normalize:
        a, b = _normalize(a), _normalize(b)
    return float(torch.linalg.vector_norm(a - b, dim=1).pow(alpha).mean())


def uniformity(x, t: float = 2.0, normalize: bool = True, device: str = "auto", chunk_rows: int | None = None) -> float:
    """Uniformity (Wang & Isola 2020): log E over distinct pairs of exp(−t‖f(u) − f(v)‖²); lower is more uniform."""
    z = as_matrix(x, device)
    if z.shape[0] < 2:
        raise DataError("uniformity needs at least 2 rows; use more samples")
    if normalize:
        z = _normalize(z)
    n = z.shape[0]
    step = chunk_rows or pick_chunk_rows(n)
    parts = []
    for s in range(0, n, step):
        e = min(n, s + step)
        d = pairwise_sq_distances(z[s:e], z)
        r = torch.arange(e - s, device=z.device)
        d[r, r + s] = float("inf")  # exclude i = j
        parts.append(torch.logsumexp((-t * d).flatten(), 0))
    return float(torch.logsumexp(torch.stack(parts), 0) - math.log(n * (n - 1)))
