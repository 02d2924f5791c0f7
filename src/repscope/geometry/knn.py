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


def smallest_k(tile: Tensor, kc: int, group: int = 32) -> tuple[Tensor, Tensor]:
    """The kc smallest entries of each row of `tile` (values, column indices), unsorted; exact.

    Columns are cut into groups of `group`; the kc smallest entries lie in the kc groups with the smallest minima
    (each of them lifts its group's minimum to at most the kc-th value), so top-k runs on the group minima and then
    on kc·group gathered entries instead of on whole rows — several times faster than `torch.topk` on wide rows.
    """
    b, m = tile.shape
    m0 = (m // group) * group
    if m0 // group <= 2 * kc:
        return torch.topk(tile, min(kc, m), dim=1, largest=False, sorted=False)
    mins = tile[:, :m0].reshape(b, m0 // group, group).amin(2)
    _, grp = torch.topk(mins, kc, dim=1, largest=False, sorted=False)
    offs = torch.arange(group, device=tile.device)
    cols = (grp[:, :, None] * group + offs[None, None, :]).reshape(b, kc * group)
    if m0 < m:
        cols = torch.cat([cols, torch.arange(m0, m, device=tile.device).expand(b, m - m0)], 1)
    v, pos = torch.topk(torch.gather(tile, 1, cols), kc, dim=1, largest=False, sorted=False)
    return v, torch.gather(cols, 1, pos)


def _merge(best_v: Tensor, best_i: Tensor, v: Tensor, i: Tensor, kc: int) -> tuple[Tensor, Tensor]:
    cv = torch.cat([best_v, v], 1)
    ci = torch.cat([best_i, i], 1)
    mv, pos = torch.topk(cv, kc, dim=1, largest=False, sorted=False)
    return mv, torch.gather(ci, 1, pos)


def _brute_candidates(xw: Tensor, kc: int, block_rows: int) -> tuple[Tensor, Tensor]:
    """Approximate (working-dtype) kc smallest squared distances and their indices per row, self excluded.

    Tiles of the upper triangle only: each tile's distances serve the top-k of its rows and of its columns.
    """
    n, dev = xw.shape[0], xw.device
    sq = (xw * xw).sum(1)
    bs = max(1, block_rows)
    empty = torch.full((n, 0), float("inf"), dtype=xw.dtype, device=dev)
    best_v = [empty[s : s + bs] for s in range(0, n, bs)]
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
            v, i = smallest_k(tile, min(kc, e2 - s2))
            best_v[a], best_i[a] = _merge(best_v[a], best_i[a], v, i + s2, min(kc, best_v[a].shape[1] + v.shape[1]))
            if b != a:
                v, i = smallest_k(tile.T.contiguous(), min(kc, e - s))  # rows of a contiguous copy are fast
                best_v[b], best_i[b] = _merge(best_v[b], best_i[b], v, i + s,
                                              min(kc, best_v[b].shape[1] + v.shape[1]))
            del tile
    return torch.cat(best_v, 0), torch.cat(best_i, 0)


def _exact(x64: Tensor, rows: Tensor | None, cand: Tensor) -> Tensor:
    """Float64 distances ‖x_r − x_c‖ computed directly for candidate indices cand (len(rows), m)."""
    n, d = cand.shape[0], x64.shape[1]
    out = torch.empty(cand.shape, dtype=torch.float64, device=x64.device)
    step = max(1, 2**22 // max(1, cand.shape[1] * d))
    for s in range(0, n, step):
        e = min(n, s + step)
        xr = x64[s:e] if rows is None else x64[rows[s:e]]
        out[s:e] = torch.linalg.vector_norm(xr[:, None, :] - x64[cand[s:e]], dim=2)
    return out


def knn_distances(x, k: int, device: str | torch.device | None = "auto", dtype: torch.dtype = torch.float32,
                  block_rows: int = 2048, extra: int = 4, return_indices: bool = False):
    """Euclidean distances (n, k) from each row of `x` to its k nearest other rows, ascending, exact in float64.

    Brute force over (block × block) tiles of the upper triangle only: each tile's distances serve the top-k of its
    rows and of its columns, halving the matrix products; memory O(block² + n·k). Candidates are ranked in `dtype`
    (float32 is fast) and `extra` additional candidates per row are re-ranked with directly computed float64
    distances, which undoes rounding in the fast pass. Self-matches are excluded by index (duplicates give distance
    0). With `return_indices`, also returns the (n, k) neighbour indices.
    """
    dev = resolve_device(device)
    x64 = torch.as_tensor(x).to(device=dev, dtype=torch.float64)
    if x64.ndim != 2:
        x64 = x64.reshape(x64.shape[0], -1)
    n = x64.shape[0]
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if n <= k:
        raise DataError(f"need more than k={k} rows for k-nearest neighbours, got {n}; use more samples or smaller k")
    if not torch.isfinite(x64).all():
        from repscope.errors import NonFiniteError

        raise NonFiniteError("input holds NaN or Inf; clean the representations before measuring geometry")
    x64 = x64 - x64.mean(0, keepdim=True)  # centring is distance-preserving and limits cancellation
    kc = min(n - 1, k + max(0, extra))
    cand = _brute_candidates(x64.to(dtype), kc, block_rows)[1]
    dist = _exact(x64, None, cand)
    dist, order = torch.sort(dist, dim=1)
    out_d = dist[:, :k].contiguous()
    out_i = torch.gather(cand, 1, order[:, :k])
    return (out_d, out_i) if return_indices else out_d


def pairwise_sq_distances(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances between rows of a and b, clamped at 0 (Gram expansion)."""
    d = torch.addmm((b * b).sum(1)[None, :], a, b.T, beta=1.0, alpha=-2.0)
    d.add_((a * a).sum(1)[:, None])
    return d.clamp_(min=0.0)
