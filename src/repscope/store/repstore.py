"""RepStore: a directory of layer-wise representations.

Layout::

    manifest.json      schema version, provenance, layers (shape, dtype, token-level?), progress
    samples.parquet    id, label/factor columns, text or image index, split
    arrays/L_<layer>   one Zarr v3 array per layer, chunked by rows, CRC32C checksum on every chunk
    arrays/L_<layer>.offsets   token-level layers only: int64 row offsets (n+1) into the flat token array

Reading is lazy, by layer and by row range. bfloat16 is stored as its raw uint16 bits (numpy has no bfloat16).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import zarr

from repscope.errors import (
    CorruptChunkError,
    IncompleteStoreError,
    LayerNotFoundError,
    SchemaVersionError,
    StoreError,
    format_choices,
)
from repscope.store.manifest import MANIFEST, SAMPLES, SCHEMA_VERSION, array_name, read_manifest

Rows = slice | Sequence[int] | np.ndarray | torch.Tensor | None


def decode(arr: np.ndarray, dtype: str) -> torch.Tensor:
    """Turn a stored numpy block back into a tensor of the manifest dtype."""
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if dtype == "bfloat16":
        t = t.view(torch.bfloat16)
    return t


class RepStore:
    """Read access to a store written by `repscope.extract` (or `StoreWriter`)."""

    def __init__(self, root: Path, manifest: dict[str, Any]):
        self.root = root
        self.manifest = manifest
        self._samples: pd.DataFrame | None = None
        self._arrays: dict[str, zarr.Array] = {}

    # ---- opening -----------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, allow_incomplete: bool = False) -> RepStore:
        """Open a store directory; refuses incomplete stores and other schema versions with a one-line error."""
        root = Path(path)
        if not (root / MANIFEST).is_file():
            raise StoreError(f"'{root}' is not a repscope store (no {MANIFEST}); create one with `repscope extract`")
        man = read_manifest(root)
        ver = man.get("schema_version")
        if ver != SCHEMA_VERSION:
            raise SchemaVersionError(
                f"store '{root}' has schema version {ver}, this repscope reads version {SCHEMA_VERSION}; "
                "re-extract it with this version"
            )
        prog = man.get("progress", {})
        if not prog.get("complete") and not allow_incomplete:
            cmd = man.get("resume_command") or "the same `repscope extract` command"
            raise IncompleteStoreError(
                f"store '{root}' is incomplete ({prog.get('rows_done', 0)}/{man.get('n_samples')} rows): "
                f"an extraction was interrupted; rerun {cmd} to resume"
            )
        return cls(root, man)

    # ---- metadata ----------------------------------------------------------------------------------------------
    @property
    def name(self) -> str:
        """Short store name (the directory name)."""
        return self.root.name

    @property
    def layers(self) -> list[str]:
        """Layer names in model order."""
        return list(self.manifest["layers"].keys())

    @property
    def n_samples(self) -> int:
        """Number of samples (rows) the store holds once complete."""
        return int(self.manifest["n_samples"])

    @property
    def n_rows(self) -> int:
        """Rows committed so far (equals n_samples for a complete store)."""
        return int(self.manifest["progress"]["rows_done"])

    @property
    def provenance(self) -> dict[str, Any]:
        """Model, dataset, pooling, dtype, seed and version the store was made with."""
        return dict(self.manifest.get("provenance", {}))

    @property
    def model(self) -> str:
        """Model name from provenance."""
        return str(self.provenance.get("model", "?"))

    def layer_info(self, layer: str) -> dict[str, Any]:
        """Shape (per sample, without the row axis), dtype and token flag of a layer."""
        try:
            return self.manifest["layers"][layer]
        except KeyError:
            raise LayerNotFoundError(
                f"layer '{layer}' not found in store '{self.name}'; available: {format_choices(self.layers)}"
            ) from None

    def is_tokens(self, layer: str) -> bool:
        """True for token-level layers (stored flat with offsets)."""
        return bool(self.layer_info(layer).get("tokens", False))

    def resolve_layers(self, patterns: Sequence[str] | str | None) -> list[str]:
        """Expand layer names/globs (comma-separated allowed) against this store; None means all layers."""
        from repscope.sources.layers import match_layers

        return match_layers(self.layers, patterns, where=f"store '{self.name}'")

    @property
    def samples(self) -> pd.DataFrame:
        """Per-sample table: id, labels/factors, text or image index, split."""
        if self._samples is None:
            self._samples = pd.read_parquet(self.root / SAMPLES)
        return self._samples

    def labels(self, column: str = "label") -> np.ndarray:
        """One label/factor column as a numpy array; lists available columns if missing."""
        if column not in self.samples.columns:
            raise LayerNotFoundError(
                f"column '{column}' not in samples of store '{self.name}'; available: "
                f"{format_choices(list(self.samples.columns))}"
            )
        return self.samples[column].to_numpy()

    # ---- arrays ------------------------------------------------------------------------------------------------
    def _array(self, layer: str, suffix: str = "") -> zarr.Array:
        self.layer_info(layer)
        key = array_name(layer) + suffix
        if key not in self._arrays:
            self._arrays[key] = zarr.open_array(self.root / "arrays" / key, mode="r")
        return self._arrays[key]

    def _rows(self, rows: Rows) -> np.ndarray | slice:
        n = self.n_rows
        if rows is None:
            return slice(0, n)
        if isinstance(rows, slice):
            start, stop, step = rows.indices(n)
            return slice(start, stop, step)
        idx = np.asarray(rows.cpu() if isinstance(rows, torch.Tensor) else rows, dtype=np.int64)
        if idx.size and (idx.min() < -n or idx.max() >= n):
            raise StoreError(f"row index out of range for store '{self.name}' with {n} rows")
        return np.where(idx < 0, idx + n, idx)

    def offsets(self, layer: str) -> np.ndarray:
        """Row offsets (n_rows + 1,) into a token-level layer's flat array."""
        if not self.is_tokens(layer):
            raise StoreError(f"layer '{layer}' is pooled, not token-level; use .get()")
        return np.asarray(self._array(layer, ".offsets")[: self.n_rows + 1])

    def get(self, layer: str, rows: Rows = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Load a layer for the given rows as a tensor (n, *shape); token layers give the rows' tokens, flat."""
        info = self.layer_info(layer)
        arr = self._array(layer)
        sel = self._rows(rows)
        if info.get("tokens"):
            off = self.offsets(layer)
            if isinstance(sel, slice):
                ranges = [(off[i], off[i + 1]) for i in range(*sel.indices(self.n_rows))]
            else:
                ranges = [(off[i], off[i + 1]) for i in sel]
            if ranges and isinstance(sel, slice) and sel.step == 1:
                data = arr[ranges[0][0] : ranges[-1][1]]
            else:
                data = np.concatenate([arr[a:b] for a, b in ranges]) if ranges else arr[0:0]
        elif isinstance(sel, slice):
            data = arr[sel]
        else:
            order = np.argsort(sel, kind="stable")
            data = np.empty((len(sel),) + tuple(arr.shape[1:]), dtype=arr.dtype)
            data[order] = arr.get_orthogonal_selection((sel[order],) + (slice(None),) * (arr.ndim - 1))
        t = decode(data, info["dtype"])
        return t.to(dtype) if dtype is not None else t

    def n_tokens(self, layer: str) -> int:
        """Total stored tokens of a token-level layer (rows of its flat array)."""
        return int(self.offsets(layer)[-1])

    def get_tokens(self, layer: str, token_rows: slice | Sequence[int] | np.ndarray,
                   dtype: torch.dtype | None = None) -> torch.Tensor:
        """Rows of a token-level layer's flat token array (indices as in `offsets()`), as a tensor (n, *shape)."""
        info = self.layer_info(layer)
        n = self.n_tokens(layer)
        arr = self._array(layer)
        if isinstance(token_rows, slice):
            data = arr[slice(*token_rows.indices(n))]
        else:
            idx = np.asarray(token_rows, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise StoreError(f"token row out of range for layer '{layer}' with {n} tokens")
            if idx.size and np.all(np.diff(idx) == 1):
                data = arr[int(idx[0]) : int(idx[-1]) + 1]
            else:
                order = np.argsort(idx, kind="stable")
                data = np.empty((len(idx),) + tuple(arr.shape[1:]), dtype=arr.dtype)
                if idx.size:
                    data[order] = arr.get_orthogonal_selection((idx[order],) + (slice(None),) * (arr.ndim - 1))
        t = decode(data, info["dtype"])
        return t.to(dtype) if dtype is not None else t

    def iter_chunks(self, layer: str, rows: slice | None = None, chunk_rows: int | None = None,
                    dtype: torch.dtype | None = None) -> Iterator[tuple[int, torch.Tensor]]:
        """Yield (start_row, block) over a pooled layer, one storage chunk (or `chunk_rows`) at a time."""
        if self.is_tokens(layer):
            raise StoreError(f"layer '{layer}' is token-level; iterate rows with .get(layer, rows) and .offsets()")
        sel = self._rows(rows if rows is not None else slice(None))
        assert isinstance(sel, slice)
        step = chunk_rows or int(self.manifest.get("chunk_rows", 1024))
        for s in range(sel.start, sel.stop, step):
            yield s, self.get(layer, slice(s, min(s + step, sel.stop)), dtype=dtype)

    # ---- integrity ---------------------------------------------------------------------------------------------
    def verify(self) -> dict[str, int]:
        """Read every chunk of every layer and check its CRC32C; returns {layer: chunks checked}.

        Raises CorruptChunkError naming the layer and chunk on the first failure.
        """
        checked: dict[str, int] = {}
        for layer in self.layers:
            for suffix in ([""] + ([".offsets"] if self.is_tokens(layer) else [])):
                arr = self._array(layer, suffix)
                cshape = arr.chunks
                grid = [range(-(-s // c)) for s, c in zip(arr.shape, cshape, strict=True)]
                count = 0
                for idx in np.ndindex(*[len(g) for g in grid]):
                    region = tuple(slice(i * c, min((i + 1) * c, s)) for i, c, s in zip(idx, cshape, arr.shape,
                                                                                        strict=True))
                    try:
                        arr[region]
                    except Exception as err:  # zarr raises a plain ValueError/RuntimeError on checksum mismatch
                        chunk = ".".join(map(str, idx))
                        raise CorruptChunkError(
                            f"layer '{layer}'{suffix} chunk {chunk} failed its checksum ({type(err).__name__}); "
                            "re-extract this store"
                        ) from err
                    count += 1
                checked[layer + suffix] = checked.get(layer + suffix, 0) + count
        return checked

    def __repr__(self) -> str:
        return f"RepStore('{self.root}', model={self.model!r}, n={self.n_rows}, layers={len(self.layers)})"
