"""Row-wise top-k selection on wide matrices, faster than `torch.topk` when k is much smaller than the row."""

from __future__ import annotations

import torch
from torch import Tensor


def smallest_k(tile: Tensor, kc: int, group: int = 32, largest: bool = False) -> tuple[Tensor, Tensor]:
    """The kc smallest (or largest) entries of each row of `tile` (values, column indices), unsorted; exact.

    Columns are cut into groups of `group`; the kc smallest entries lie in the kc groups with the smallest minima
    (each of them lifts its group's minimum to at most the kc-th value), so top-k runs on the group minima and then
    on kc·group gathered entries instead of on whole rows — several times faster than `torch.topk` on wide rows.
    Written by hand because torch's top-k has no such two-level path for wide, short-k rows on CPU.
    """
    b, m = tile.shape
    m0 = (m // group) * group
    if m0 // group <= 2 * kc:
        return torch.topk(tile, min(kc, m), dim=1, largest=largest, sorted=False)
    grouped = tile[:, :m0].reshape(b, m0 // group, group)
    extremes = grouped.amax(2) if largest else grouped.amin(2)
    _, grp = torch.topk(extremes, kc, dim=1, largest=largest, sorted=False)
    offs = torch.arange(group, device=tile.device)
    cols = (grp[:, :, None] * group + offs[None, None, :]).reshape(b, kc * group)
    if m0 < m:
        cols = torch.cat([cols, torch.arange(m0, m, device=tile.device).expand(b, m - m0)], 1)
    v, pos = torch.topk(torch.gather(tile, 1, cols), kc, dim=1, largest=largest, sorted=False)
    return v, torch.gather(cols, 1, pos)
