"""Row sources and a deterministic shuffled chunk stream, so training never needs a layer in RAM and can resume exactly.

The stream is a pure function of (seed, position): epoch e visits chunks in a seeded random order, loads them in
groups of `buffer_rows` rows, shuffles each group with its own seeded permutation, and concatenates the groups.
Batch t is rows [t·B, (t+1)·B) of that infinite stream, so a resumed run reads exactly what it would have read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor

from repscope.errors import DataError, NonFiniteError


class ArraySource:
    """In-memory rows (numpy or tensor), optionally paired with a target array of the same length."""

    def __init__(self, x: Any, y: Any = None, chunk_rows: int = 4096):
        self.x = _as_float32(x)
        self.y = _as_float32(y) if y is not None else None
        if self.y is not None and len(self.y) != len(self.x):
            raise DataError(f"input has {len(self.x)} rows but target has {len(self.y)}; pass paired rows")
        self.n_rows = len(self.x)
        self.chunk_rows = int(chunk_rows)
        self.d_in = self.x.shape[1]
        self.d_out = self.y.shape[1] if self.y is not None else None

    def read(self, start: int, stop: int) -> tuple[Tensor, Tensor | None]:
        """Rows [start, stop) as float32 tensors."""
        return self.x[start:stop], (self.y[start:stop] if self.y is not None else None)

    def describe(self) -> dict[str, Any]:
        """Where the rows come from (saved with SAE checkpoints)."""
        return {"kind": "array", "n_rows": self.n_rows}


MAX_TOKEN_ROWS = 200_000  # token-level layers: train on at most this many token rows (evenly spaced)


class StoreSource:
    """One layer of a RepStore (and optionally a second, target layer for transcoders), read chunk by chunk.

    Pooled layers give one row per sample. Token-level layers (pooling `none`) give one row per stored token: all
    tokens, or `max_token_rows` evenly spaced ones (`token_rows` holds their indices into the flat token array; map
    them to (sample, position) with the layer's offsets). A holdout then holds out token rows, not samples."""

    def __init__(self, store: Any, layer: str, target_layer: str | None = None, chunk_rows: int | None = None,
                 max_token_rows: int = MAX_TOKEN_ROWS):
        self.store, self.layer, self.target_layer = store, layer, target_layer
        for name in [layer] + ([target_layer] if target_layer else []):
            info = store.layer_info(name)
            if len(info["shape"]) != 1:
                raise DataError(f"layer '{name}' has per-sample shape {info['shape']}; SAEs need vectors (pool it)")
        self.tokens = store.is_tokens(layer)
        self.token_rows: np.ndarray | None = None
        if target_layer and store.is_tokens(target_layer) != self.tokens:
            raise DataError(f"layers '{layer}' and '{target_layer}' mix token-level and pooled rows; "
                            "pick two layers extracted with the same pooling")
        if self.tokens:
            off = store.offsets(layer)
            if target_layer and not np.array_equal(off, store.offsets(target_layer)):
                raise DataError(f"token layers '{layer}' and '{target_layer}' hold different token counts; "
                                "pick layers of the same model and input")
            n_tok = int(off[-1])
            if n_tok == 0:
                raise DataError(f"token layer '{layer}' holds no tokens; re-extract it")
            cap = max(1, int(max_token_rows))
            self.token_rows = (np.arange(n_tok, dtype=np.int64) if n_tok <= cap
                               else np.linspace(0, n_tok - 1, cap).round().astype(np.int64))
            self.n_rows = len(self.token_rows)
            self.chunk_rows = int(chunk_rows or 8192)
        else:
            self.n_rows = store.n_rows
            self.chunk_rows = int(chunk_rows or store.manifest.get("chunk_rows", 1024))
        self.d_in = int(store.layer_info(layer)["shape"][0])
        self.d_out = int(store.layer_info(target_layer)["shape"][0]) if target_layer else None

    def _read(self, layer: str, start: int, stop: int) -> Tensor:
        if self.token_rows is not None:
            return self.store.get_tokens(layer, self.token_rows[start:stop], dtype=torch.float32)
        _, block = next(self.store.iter_chunks(layer, rows=slice(start, stop), chunk_rows=stop - start,
                                               dtype=torch.float32))
        return block

    def read(self, start: int, stop: int) -> tuple[Tensor, Tensor | None]:
        """Rows [start, stop) of the layer (and target layer) as float32 tensors."""
        x = self._read(self.layer, start, stop)
        y = self._read(self.target_layer, start, stop) if self.target_layer else None
        return x, y

    def read_rows(self, rows: np.ndarray) -> Tensor:
        """Source rows `rows` (sorted indices) of the input layer as float32."""
        if self.token_rows is not None:
            return self.store.get_tokens(self.layer, self.token_rows[rows], dtype=torch.float32)
        return self.store.get(self.layer, rows, dtype=torch.float32)

    def describe(self) -> dict[str, Any]:
        """Where the rows come from (saved with SAE checkpoints)."""
        out = {"kind": "store", "store": str(self.store.root), "layer": self.layer,
               "target_layer": self.target_layer, "n_rows": self.n_rows}
        if self.tokens:
            out["tokens"] = True
        return out


def _as_float32(x: Any) -> Tensor:
    t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    t = t.detach().to("cpu", torch.float32)
    if t.ndim != 2:
        raise DataError(f"expected a 2-D array (n_samples, n_features), got shape {tuple(t.shape)}")
    if t.shape[0] == 0:
        raise DataError("got an empty array; pass at least one row")
    return t


def kept_rows(start: int, stop: int, holdout_every: int) -> np.ndarray:
    """Row indices in [start, stop) used for training: all, or all but every `holdout_every`-th (idx % h == h−1)."""
    idx = np.arange(start, stop)
    if holdout_every and holdout_every > 1:
        idx = idx[idx % holdout_every != holdout_every - 1]
    return idx


class ShuffledChunkStream:
    """Deterministic infinite stream of shuffled rows over a source, read through a buffer of whole chunks."""

    def __init__(self, source: Any, seed: int = 0, buffer_rows: int = 65536, holdout_every: int = 0):
        self.source, self.seed, self.holdout_every = source, int(seed), int(holdout_every)
        c = source.chunk_rows
        self.chunks = [(s, min(s + c, source.n_rows)) for s in range(0, source.n_rows, c)]
        self.chunk_kept = [len(kept_rows(a, b, self.holdout_every)) for a, b in self.chunks]
        self.n_kept = sum(self.chunk_kept)
        if self.n_kept == 0:
            raise DataError("no training rows left after the holdout; use more rows or a smaller --holdout")
        self.group_chunks = max(1, int(buffer_rows) // c)
        self._cache: tuple[tuple[int, int], tuple[Tensor, Tensor | None]] | None = None
        self._layout: dict[int, tuple[list[list[int]], np.ndarray]] = {}

    def _epoch_layout(self, epoch: int) -> tuple[list[list[int]], np.ndarray]:
        if epoch not in self._layout:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(len(self.chunks), generator=g).tolist()
            groups = [order[i : i + self.group_chunks] for i in range(0, len(order), self.group_chunks)]
            sizes = np.array([sum(self.chunk_kept[c] for c in grp) for grp in groups])
            self._layout = {epoch: (groups, np.concatenate([[0], np.cumsum(sizes)]))}
        return self._layout[epoch]

    def _group(self, epoch: int, gi: int) -> tuple[Tensor, Tensor | None]:
        if self._cache is not None and self._cache[0] == (epoch, gi):
            return self._cache[1]
        groups, _ = self._epoch_layout(epoch)
        xs, ys = [], []
        for c in groups[gi]:
            a, b = self.chunks[c]
            x, y = self.source.read(a, b)
            keep = torch.from_numpy(kept_rows(a, b, self.holdout_every) - a)
            if len(keep) != b - a:
                x = x[keep]
                y = y[keep] if y is not None else None
            xs.append(x)
            ys.append(y)
        x = torch.cat(xs)
        y = torch.cat(ys) if ys[0] is not None else None
        if not torch.isfinite(x).all() or (y is not None and not torch.isfinite(y).all()):
            raise NonFiniteError("NaN or Inf in the training activations; re-extract the layer or filter rows")
        g = torch.Generator().manual_seed((self.seed * 1_000_003 + epoch) * 7919 + gi + 1)
        perm = torch.randperm(len(x), generator=g)
        out = (x[perm], y[perm] if y is not None else None)
        self._cache = ((epoch, gi), out)
        return out

    def rows(self, position: int, count: int) -> tuple[Tensor, Tensor | None]:
        """`count` rows of the infinite stream starting at `position`."""
        xs, ys = [], []
        while count > 0:
            epoch, off = divmod(position, self.n_kept)
            _, bounds = self._epoch_layout(epoch)
            gi = int(np.searchsorted(bounds, off, side="right") - 1)
            x, y = self._group(epoch, gi)
            a = off - int(bounds[gi])
            take = min(count, len(x) - a)
            xs.append(x[a : a + take])
            ys.append(y[a : a + take] if y is not None else None)
            position += take
            count -= take
        return torch.cat(xs), (torch.cat(ys) if ys[0] is not None else None)

    def batch(self, step: int, batch_size: int) -> tuple[Tensor, Tensor | None]:
        """Batch number `step` (rows [step·B, (step+1)·B) of the stream)."""
        return self.rows(step * batch_size, batch_size)


def iter_source(source: Any, chunk_rows: int | None = None, rows: np.ndarray | None = None):
    """Yield (row_indices, x, y) over a source in order, chunk by chunk (for evaluation and inspection)."""
    c = chunk_rows or source.chunk_rows
    for a in range(0, source.n_rows, c):
        b = min(a + c, source.n_rows)
        idx = np.arange(a, b)
        if rows is not None:
            idx = idx[np.isin(idx, rows)]
            if len(idx) == 0:
                continue
        x, y = source.read(a, b)
        if len(idx) != b - a:
            sel = torch.from_numpy(idx - a)
            x = x[sel]
            y = y[sel] if y is not None else None
        yield idx, x, y
