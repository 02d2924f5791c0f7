"""Paired inputs must pair: every analysis over two stores (or more) needs row i of each to be the same input.

`check_paired(a, b)` is the rule, called by compare, match, stitching, compat and concatenation. Two stores pair when
they record the same dataset content hash (`provenance.dataset_hash`, which covers the samples table and, for array
data, the raw inputs), or, where a hash covers no more than the samples table (text data, stores written by
`write_store`) or is missing (older stores), when their samples tables are identical row by row. Anything else is a
one-line `UnpairedStoresError` (a StoreError and a DataError) naming both stores and the opt-ins.

`pair_stores(stores, pair_by=COLUMN)` / `pair_stores(stores, unpaired=True)` are the explicit opt-ins for rows that
are meant not to match: aligned views (`AlignedStore`) on the samples shared by value of a sample-id column (in the
first store's order), or the rows as they are. The analyses accept views aligned together and record the choice
(`pairing_params`) in their rows' params.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.errors import ConfigError, StoreError, UnpairedStoresError, format_choices

OPT_IN = ("opt in with --pair-by COLUMN (align on a shared sample-id column) or --unpaired (take the rows in order "
          "as they are)")


class AlignedStore:
    """A read-only view of a store through a row index: row i of the view is row `index[i]` of `base`. Made by
    `pair_stores`; views made by one call pair with each other, and carry `pairing` (recorded in result params)."""

    _DELEGATED = ("name", "root", "manifest", "provenance", "model", "layers", "layer_info", "is_tokens",
                  "resolve_layers")

    def __init__(self, base: Any, index: np.ndarray | None, pairing: dict[str, Any]):
        self.base = base
        self.index = index  # None: every row, in order (--unpaired)
        self.pairing = pairing  # shared (the same dict object) by every view of one `pair_stores` call
        self._samples: pd.DataFrame | None = None

    def __getattr__(self, name: str) -> Any:
        if name in AlignedStore._DELEGATED:
            return getattr(self.base, name)
        raise AttributeError(f"{type(self).__name__} (an aligned view of store '{self.base.name}') has no '{name}'")

    @property
    def n_rows(self) -> int:
        """Rows of the view."""
        return self.base.n_rows if self.index is None else len(self.index)

    n_samples = n_rows

    @property
    def samples(self) -> pd.DataFrame:
        """The base store's samples table, rows in view order."""
        if self._samples is None:
            s = self.base.samples
            self._samples = s if self.index is None else s.iloc[self.index].reset_index(drop=True)
        return self._samples

    def labels(self, column: str = "label") -> np.ndarray:
        """One samples column in view order."""
        y = self.base.labels(column)
        return y if self.index is None else y[self.index]

    def base_rows(self, rows: Any = None) -> Any:
        """Rows of the base store for view rows `rows` (None: all of the view; slice or indices)."""
        if self.index is None:
            return rows
        if rows is None:
            return self.index
        if isinstance(rows, slice):
            return self.index[rows]
        return self.index[np.asarray(rows.cpu() if isinstance(rows, torch.Tensor) else rows, dtype=np.int64)]

    def get(self, layer: str, rows: Any = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """`base.get` on the view's rows."""
        return self.base.get(layer, self.base_rows(rows), dtype=dtype)

    def iter_chunks(self, layer: str, rows: slice | None = None, chunk_rows: int | None = None,
                    dtype: torch.dtype | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield (start_row, block) over the view's rows, `chunk_rows` (default: the store's chunk) at a time."""
        start, stop, _ = (rows or slice(None)).indices(self.n_rows)
        step = chunk_rows or int(self.base.manifest.get("chunk_rows", 1024))
        for s in range(start, stop, step):
            yield s, self.get(layer, slice(s, min(s + step, stop)), dtype=dtype)

    def __repr__(self) -> str:
        return f"AlignedStore({self.base!r}, rows={self.n_rows}, {self.pairing})"


def base_rows(store: Any, rows: Any = None) -> Any:
    """Rows of the underlying on-disk store for `rows` of `store` (unchanged for a plain store)."""
    return store.base_rows(rows) if isinstance(store, AlignedStore) else rows


def base_store(store: Any) -> Any:
    """The on-disk store behind `store` (itself for a plain store)."""
    return store.base if isinstance(store, AlignedStore) else store


def _table_hash(store: Any) -> str:
    from repscope.store.writer import samples_hash

    return samples_hash(store.samples)


def _describe(store: Any, other: Any) -> str:
    prov = store.provenance
    data = prov.get("dataset_spec") or prov.get("dataset") or "?"
    other_data = other.provenance.get("dataset_spec") or other.provenance.get("dataset") or "?"
    h = prov.get("dataset_hash")
    same_name = data == other_data and h
    return f"{data}{f' #{str(h)[:8]}' if same_name else ''}, {store.n_rows} rows"


def same_samples(a: Any, b: Any) -> bool:
    """True when plain stores `a` and `b` hold the same inputs in the same order (see the module docstring)."""
    if a.n_rows != b.n_rows:
        return False
    ha, hb = a.provenance.get("dataset_hash"), b.provenance.get("dataset_hash")
    if ha and ha == hb:
        return True
    ta, tb = _table_hash(a), _table_hash(b)
    if ta != tb:
        return False
    # identical tables: enough unless both hashes also cover raw inputs (array data) and those differ
    return not ha or not hb or ha == ta or hb == tb


def check_paired(a: Any, b: Any | None) -> dict[str, Any]:
    """Refuse (one-line UnpairedStoresError, a StoreError, naming both stores and the fix) unless row i of `a` and
    row i of `b` are the same input: the same store, views aligned together by `pair_stores`, or stores for which
    `same_samples` holds. Returns the params to record with the analysis' rows ({} unless the pairing was an
    explicit opt-in)."""
    if b is None or b is a:
        return {}
    pa, pb = getattr(a, "pairing", None), getattr(b, "pairing", None)
    if pa is not None and pa is pb:
        return dict(pa)
    if pa is not None or pb is not None:
        raise UnpairedStoresError(f"stores '{a.name}' and '{b.name}' were not aligned together; pass both to one "
                                  "pair_stores call")
    if same_samples(a, b):
        return {}
    raise UnpairedStoresError(f"stores '{a.name}' ({_describe(a, b)}) and '{b.name}' ({_describe(b, a)}) do not "
                              "hold the same samples in the same order, so their rows do not pair; use stores "
                              f"extracted from the same dataset, or {OPT_IN}")


def check_all_paired(stores: Sequence[Any]) -> dict[str, Any]:
    """`check_paired` of the first store against each of the others; returns the params to record."""
    params: dict[str, Any] = {}
    for s in stores[1:]:
        params = check_paired(stores[0], s)
    return params


def pairing_params(*stores: Any) -> dict[str, Any]:
    """The opt-in recorded by views aligned together ({} for plain stores)."""
    p = getattr(stores[0], "pairing", None) if stores else None
    return dict(p) if p is not None else {}


def pair_stores(stores: Sequence[Any], *, pair_by: str | None = None, unpaired: bool = False) -> list[Any]:
    """The stores ready for a pairing analysis. Without an opt-in: unchanged, after `check_paired`. With `pair_by`:
    views holding only the samples whose value of column `pair_by` occurs in every store, in the first store's order
    (the column must identify samples: no repeats, no missing values). With `unpaired`: views taking the rows in order
    as they are (same row count needed). The choice is recorded as params pair_by/rows_paired or unpaired=true."""
    stores = list(stores)
    if pair_by is not None and unpaired:
        raise ConfigError("--pair-by and --unpaired exclude each other; give one")
    if len(stores) < 2:
        if pair_by is not None or unpaired:
            raise ConfigError("--pair-by/--unpaired align two stores; give a second store or leave the option out")
        return stores
    if pair_by is None and not unpaired:
        check_all_paired(stores)
        return stores
    if unpaired:
        counts = {s.n_rows for s in stores}
        if len(counts) != 1:
            raise StoreError(f"--unpaired takes the rows in order, but the stores have {sorted(counts)} rows; use "
                             "--pair-by COLUMN to align them on a shared sample-id column")
        pairing: dict[str, Any] = {"unpaired": True}
        return [AlignedStore(s, None, pairing) for s in stores]
    keys = []
    for s in stores:
        if pair_by not in s.samples.columns:
            raise StoreError(f"--pair-by '{pair_by}': store '{s.name}' has no such samples column; available: "
                             f"{format_choices(list(s.samples.columns))}")
        col = s.samples[pair_by]
        if col.isna().any() or col.duplicated().any():
            what = "missing values" if col.isna().any() else f"repeated values (e.g. {col[col.duplicated()].iloc[0]!r})"
            raise StoreError(f"--pair-by '{pair_by}': column has {what} in store '{s.name}', so it does not identify "
                             "samples; pair by an id column")
        keys.append(pd.Index(col.to_numpy()))
    shared = keys[0]
    for k in keys[1:]:
        shared = shared[shared.isin(k)]
    if not len(shared):
        raise StoreError(f"--pair-by '{pair_by}': stores {', '.join(repr(s.name) for s in stores)} share no value "
                         "of that column; pair by a column the stores have in common")
    pairing = {"pair_by": pair_by, "rows_paired": len(shared)}
    return [AlignedStore(s, k.get_indexer(shared).astype(np.int64), pairing) for s, k in zip(stores, keys, strict=True)]


__all__ = ["AlignedStore", "base_rows", "base_store", "check_all_paired", "check_paired", "pair_stores",
           "pairing_params", "same_samples"]
