"""Selection helpers: the one seeded row-subset helper (`subset_rows`), row-wise top-k on wide matrices
(`smallest_k`, faster than `torch.topk` when k is much smaller than the row) and layer selection by exact name or
glob (`match_layers`, shared by model adapters and stores)."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor

from repscope.errors import LayerNotFoundError, format_choices


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


def split_patterns(patterns: Sequence[str] | str | None) -> list[str] | None:
    """Turn 'a,b*' or ['a', 'b*'] into a list of patterns; None/''/'all' means everything."""
    if patterns is None:
        return None
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",")]
    pats = [p.strip() for p in patterns if p and p.strip()]
    return None if not pats or pats == ["all"] else pats


def match_layers(available: Sequence[str], patterns: Sequence[str] | str | None, where: str = "model") -> list[str]:
    """Expand names/globs against `available`, keeping model order; unknown names raise with the list of choices."""
    pats = split_patterns(patterns)
    if pats is None:
        return list(available)
    chosen: set[str] = set()
    for p in pats:
        hits = [a for a in available if a == p or fnmatch.fnmatchcase(a, p)]
        if not hits:
            raise LayerNotFoundError(f"layer '{p}' not found in {where}; available: {format_choices(list(available))}")
        chosen.update(hits)
    return [a for a in available if a in chosen]
