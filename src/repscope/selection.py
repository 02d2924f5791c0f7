"""Selection helpers: the one seeded row-subset helper (`subset_rows`) and row-wise top-k on wide matrices
(`smallest_k`, faster than `torch.topk` when k is much smaller than the row)."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def subset_rows(rows: int | np.ndarray, max_rows: int | None, seed: int | np.random.Generator = 0, *,
                groups: np.ndarray | None = None) -> np.ndarray:
    """The rows an analysis uses: all of `rows` (an int n means 0..n−1) when `max_rows` is None, 0 or not smaller,
    else a uniform random subset of `max_rows` of them without replacement, drawn with numpy's default_rng(seed)
    (or the Generator given) and sorted. With `groups` (one id per row, e.g. a positive pair), whole groups are
    drawn instead: max(1, ⌊max_rows · n_groups / n⌋) of them, so pairs stay together; a row without a group id
    (NaN/None) is a group of its own.

    Every row subsample in repscope goes through here; record `len(result)` in the result's params.
    """
    idx = np.arange(rows) if isinstance(rows, (int, np.integer)) else np.asarray(rows)
    n = len(idx)
    if not max_rows or n <= max_rows:
        return idx
    if max_rows < 0:
        from repscope.errors import ConfigError

        raise ConfigError(f"max_rows must be positive (or 0/None for all rows), got {max_rows}")
    rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
    if groups is not None:
        import pandas as pd

        ids = pd.factorize(np.asarray(groups)[:n], sort=True)[0]  # codes in np.unique's order
        missing = ids < 0  # a row without a group id (e.g. an unpaired sample) is a group of its own
        ids[missing] = ids.max(initial=-1) + 1 + np.arange(int(missing.sum()))
        uniq = np.unique(ids)
        pick = rng.choice(uniq, size=max(1, min(len(uniq), max_rows * len(uniq) // n)), replace=False)
        return idx[np.isin(ids, pick)]
    return np.sort(rng.choice(idx, size=max_rows, replace=False))


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
