"""Exact k-nearest-neighbour distances in row chunks, so memory stays O(chunk · n) instead of O(n²).

Candidates are ranked with the Gram expansion ‖a−b‖² = ‖a‖² − 2a·b + ‖b‖² in the working dtype (float32 is fast),
then the distances of the few best candidates are recomputed directly as ‖a−b‖ in float64 and re-sorted, so the
returned distances are exact even where the expansion loses digits for close points.
"""

from __future__ import annotations

import torch
from torch import Tensor

from repscope.device import resolve_device
from repscope.errors import ConfigError, DataError

_TARGET_BLOCK_ELEMS = 2**24  # ~64 MB of float32 per (chunk × n) distance block


def pick_chunk_rows(n: int, target: int = _TARGET_BLOCK_ELEMS) -> int:
    """Rows per chunk so a (chunk × n) block holds about `target` elements."""
    return max(1, min(n, target // max(n, 1)))


def _merge(best_v: Tensor, best_i: Tensor, v: Tensor, i: Tensor, kc: int) -> tuple[Tensor, Tensor]:
    cv = torch.cat([best_v, v], 1)
    ci = torch.cat([best_i, i], 1)
    mv, pos = torch.topk(cv, kc, dim=1, largest=False, sorted=False)
    return mv, torch.gather(ci, 1, pos)


def knn_distances(x, k: int, device: str | torch.device | None = "auto", dtype: torch.dtype = torch.float32,
                  block_rows: int = 2048, extra: int = 4, return_indices: bool = False):
    """Euclidean distances (n, k) from each row of `x` to its k nearest other rows, ascending, exact in float64.

    Brute force over (block × block) tiles of the upper triangle only: each tile's distances serve the top-k of its
    rows and of its columns, halving the matrix products. Memory is O(block² + n·k). Self-matches are excluded by
    index (duplicate points therefore give distance 0). `extra` additional candidates per row are re-ranked with
    directly computed float64 distances, which undoes rounding in the fast pass. With `return_indices`, also returns
    the (n, k) neighbour indices.
    """
    dev = resolve_device(device)
    x64 = torch.as_tensor(x).to(device=dev, dtype=torch.float64)
    if x64.ndim != 2:
        x64 = x64.reshape(x64.shape[0], -1)
    n, d = x64.shape
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if n <= k:
        raise DataError(f"need more than k={k} rows for k-nearest neighbours, got {n}; use more samples or smaller k")
    if not torch.isfinite(x64).all():
        from repscope.errors import NonFiniteError

        raise NonFiniteError("input holds NaN or Inf; clean the representations before measuring geometry")
    xw = (x64 - x64.mean(0, keepdim=True)).to(dtype)  # centring is distance-preserving and limits cancellation
    sq = (xw * xw).sum(1)
    kc = min(n - 1, k + max(0, extra))
    bs = max(1, block_rows)
    best_v = torch.full((n, 0), float("inf"), dtype=dtype, device=dev)
    best_v = [best_v[s : s + bs] for s in range(0, n, bs)]
    best_i = [torch.empty(v.shape, dtype=torch.long, device=dev) for v in best_v]
    for a, s in enumerate(range(0, n, bs)):
        e = min(n, s + bs)
        xa = xw[s:e]
        for b, s2 in enumerate(range(s, n, bs), start=a):
            e2 = min(n, s2 + bs)
            tile = torch.addmm(sq[None, s2:e2], xa, xw[s2:e2].T, beta=1.0, alpha=-2.0)
            tile.add_(sq[s:e, None])
            if b == a:
                tile.fill_diagonal_(float("inf"))  # self by index
            v, i = torch.topk(tile, min(kc, e2 - s2), dim=1, largest=False, sorted=False)
            best_v[a], best_i[a] = _merge(best_v[a], best_i[a], v, i + s2, min(kc, best_v[a].shape[1] + v.shape[1]))
            if b != a:
                v, i = torch.topk(tile.T, min(kc, e - s), dim=1, largest=False, sorted=False)
                best_v[b], best_i[b] = _merge(best_v[b], best_i[b], v, i + s,
                                              min(kc, best_v[b].shape[1] + v.shape[1]))
            del tile
    cand = torch.cat(best_i, 0)  # (n, kc)
    out_d = torch.empty(n, k, dtype=torch.float64, device=dev)
    out_i = torch.empty(n, k, dtype=torch.long, device=dev)
    step = max(1, 2**22 // max(1, kc * d))
    for s in range(0, n, step):
        e = min(n, s + step)
        c = cand[s:e]
        dist = torch.linalg.vector_norm(x64[s:e, None, :] - x64[c], dim=2)  # exact, float64
        dist, order = torch.sort(dist, dim=1)
        out_d[s:e] = dist[:, :k]
        out_i[s:e] = torch.gather(c, 1, order[:, :k])
    return (out_d, out_i) if return_indices else out_d


def pairwise_sq_distances(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances between rows of a and b, clamped at 0 (Gram expansion)."""
    d = torch.addmm((b * b).sum(1)[None, :], a, b.T, beta=1.0, alpha=-2.0)
    d.add_((a * a).sum(1)[:, None])
    return d.clamp_(min=0.0)
