"""StoreWriter: streams rows into a RepStore chunk by chunk, commits progress atomically, and resumes.

A chunk is first written to every layer array, then `progress.rows_done` is advanced in the manifest by an atomic
rename. A crash between the two leaves the manifest at the previous chunk, so the rerun rewrites that chunk: no rows
are lost or duplicated.
"""

from __future__ import annotations

import hashlib
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import zarr
from zarr.codecs import Crc32cCodec

from repscope import __version__
from repscope.errors import StoreError
from repscope.store.manifest import MANIFEST, SAMPLES, SCHEMA_VERSION, array_name, read_manifest, write_json_atomic
from repscope.store.repstore import RepStore

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TOKEN_CHUNK = 8192
# provenance for re-loading the source later; informational, never part of the resume check (old stores lack them)
RELOAD_KEYS = ("model_spec", "dataset_spec", "max_length")


def samples_hash(df: pd.DataFrame) -> str:
    """Content hash of a samples table (sha256 over its CSV form)."""
    return hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()[:16]


def _encode(t: torch.Tensor, dtype: str) -> np.ndarray:
    t = t.detach().to("cpu", DTYPES[dtype]).contiguous()
    if dtype == "bfloat16":
        return t.view(torch.uint16).numpy()
    return t.numpy()


class StoreWriter:
    """Create or resume a store; call `set_layers` once shapes are known, then `append` rows in order."""

    def __init__(self, root: Path, manifest: dict[str, Any], created: bool):
        self.root = root
        self.manifest = manifest
        self.created = created  # True when this writer made the directory (so bad input may remove it)
        self._arrays: dict[str, zarr.Array] = {}
        self._buf: dict[str, list[torch.Tensor]] = {}
        self._buf_rows = 0

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    @classmethod
    def create_or_resume(cls, path: str | Path, samples: pd.DataFrame, provenance: dict[str, Any],
                         chunk_rows: int = 256, dtype: str = "float32", overwrite: bool = False,
                         resume_command: str | None = None) -> StoreWriter:
        """Open an incomplete store with matching provenance for resuming, or start a new one."""
        root = Path(path)
        if dtype not in DTYPES:
            raise StoreError(f"unknown storage dtype '{dtype}'; use one of {', '.join(DTYPES)}")
        shash = provenance.get("dataset_hash") or samples_hash(samples)  # extract passes the data's own hash
        if (root / MANIFEST).is_file() and not overwrite:
            man = read_manifest(root)
            if man.get("progress", {}).get("complete"):
                raise StoreError(f"store '{root}' already exists and is complete; pass --overwrite to replace it")
            same = (man.get("schema_version") == SCHEMA_VERSION
                    and man["provenance"].get("dataset_hash") == shash
                    and man["provenance"].get("dtype") == dtype
                    and all(man["provenance"].get(k) == provenance.get(k) for k in ("model", "model_hash", "pooling"))
                    and man.get("chunk_rows") == chunk_rows)
            if not same:
                raise StoreError(f"store '{root}' holds an interrupted extraction with different settings; "
                                 "rerun with the original settings to resume, or pass --overwrite")
            for k in RELOAD_KEYS:  # stores from before these keys: fill them in (the data hash matched)
                if man["provenance"].get(k) is None and provenance.get(k) is not None:
                    man["provenance"][k] = provenance[k]
            w = cls(root, man, created=False)
            w._truncate_tokens()
            return w
        if root.exists():
            if not overwrite and any(root.iterdir()):
                raise StoreError(f"'{root}' exists and is not a repscope store; choose an empty or new path")
            shutil.rmtree(root)
        root.mkdir(parents=True)
        (root / "arrays").mkdir()
        tmp = root / (".tmp-" + SAMPLES)
        samples.to_parquet(tmp, index=False)
        tmp.replace(root / SAMPLES)
        prov = dict(provenance)
        prov.update(dataset_hash=shash, dtype=dtype, repscope_version=__version__,
                    created=datetime.now(UTC).isoformat(timespec="seconds"))
        man = {
            "schema_version": SCHEMA_VERSION,
            "provenance": prov,
            "n_samples": int(len(samples)),
            "chunk_rows": int(chunk_rows),
            "layers": {},
            "progress": {"rows_done": 0, "complete": False},
            "resume_command": resume_command,
        }
        w = cls(root, man, created=True)
        w._save()
        return w

    def _save(self) -> None:
        write_json_atomic(self.root / MANIFEST, self.manifest)

    @property
    def rows_done(self) -> int:
        """Rows committed to disk."""
        return int(self.manifest["progress"]["rows_done"])

    @property
    def dtype(self) -> str:
        """Storage dtype name."""
        return self.manifest["provenance"]["dtype"]

    def set_layers(self, shapes: dict[str, tuple[tuple[int, ...], bool]]) -> None:
        """Declare layers as {name: (per-sample shape, token_level)}; creates arrays (no-op when resuming)."""
        if self.manifest["layers"]:
            old = {k: (tuple(v["shape"]), v["tokens"]) for k, v in self.manifest["layers"].items()}
            new = {k: (tuple(s), bool(t)) for k, (s, t) in shapes.items()}
            if old != new:
                raise StoreError(f"store '{self.root}' was started with other layers or shapes; pass --overwrite")
            return
        n, cr = self.manifest["n_samples"], self.manifest["chunk_rows"]
        np_dtype = "uint16" if self.dtype == "bfloat16" else self.dtype
        for name, (shape, tokens) in shapes.items():
            key = array_name(name)
            if tokens:
                zarr.create_array(self.root / "arrays" / key, shape=(0, *shape), chunks=(TOKEN_CHUNK, *shape),
                                  dtype=np_dtype, compressors=[Crc32cCodec()], fill_value=0)
                off = zarr.create_array(self.root / "arrays" / (key + ".offsets"), shape=(n + 1,),
                                        chunks=(max(cr, 1),), dtype="int64", compressors=[Crc32cCodec()],
                                        fill_value=0)
                off[0:1] = np.zeros(1, dtype=np.int64)
            else:
                zarr.create_array(self.root / "arrays" / key, shape=(n, *shape), chunks=(cr, *shape),
                                  dtype=np_dtype, compressors=[Crc32cCodec()], fill_value=0)
            self.manifest["layers"][name] = {"shape": list(shape), "dtype": self.dtype, "tokens": bool(tokens),
                                             "array": key}
        self._save()

    def _arr(self, key: str) -> zarr.Array:
        if key not in self._arrays:
            self._arrays[key] = zarr.open_array(self.root / "arrays" / key, mode="r+")
        return self._arrays[key]

    def _truncate_tokens(self) -> None:
        """On resume, cut token arrays back to the committed rows (a killed run may have written past them)."""
        done = self.rows_done
        for _name, info in self.manifest["layers"].items():
            if info["tokens"]:
                end = int(self._arr(info["array"] + ".offsets")[done])
                arr = self._arr(info["array"])
                if arr.shape[0] != end:
                    arr.resize((end, *arr.shape[1:]))

    # ---- writing -----------------------------------------------------------------------------------------------
    def append(self, batch: dict[str, torch.Tensor | list[torch.Tensor]]) -> None:
        """Buffer one batch: pooled layers as (b, *shape) tensors, token layers as lists of (t_i, d) tensors."""
        sizes = {len(v) for v in batch.values()}
        if len(sizes) != 1:
            raise StoreError("all layers in a batch must have the same number of rows")
        for k, v in batch.items():
            self._buf.setdefault(k, []).extend(v if isinstance(v, list) else [v])
        self._buf_rows += sizes.pop()
        if self._buf_rows >= self.manifest["chunk_rows"]:
            self.flush()

    def flush(self) -> None:
        """Write buffered rows to every layer, then advance progress atomically."""
        if not self._buf_rows:
            return
        start, n = self.rows_done, self._buf_rows
        if start + n > self.manifest["n_samples"]:
            raise StoreError(f"more rows written than the {self.manifest['n_samples']} samples declared")
        for name, parts in self._buf.items():
            info = self.manifest["layers"][name]
            if info["tokens"]:
                off_arr = self._arr(info["array"] + ".offsets")
                arr = self._arr(info["array"])
                base = int(off_arr[start])
                lens = np.array([p.shape[0] for p in parts], dtype=np.int64)
                data = _encode(torch.cat(parts), self.dtype) if parts else None
                end = base + int(lens.sum())
                arr.resize((end, *arr.shape[1:]))
                if data is not None and len(data):
                    arr[base:end] = data
                off_arr[start + 1 : start + n + 1] = base + np.cumsum(lens)
            else:
                self._arr(info["array"])[start : start + n] = _encode(torch.cat(parts), self.dtype)
        self._buf, self._buf_rows = {}, 0
        self.manifest["progress"]["rows_done"] = start + n
        self._save()

    def close(self) -> RepStore:
        """Flush, mark the store complete, and return it opened for reading."""
        self.flush()
        if self.rows_done != self.manifest["n_samples"]:
            raise StoreError(f"store '{self.root}' got {self.rows_done} of {self.manifest['n_samples']} rows")
        self.manifest["progress"]["complete"] = True
        self._save()
        return RepStore.open(self.root)

    def abort(self) -> None:
        """Remove the store if this writer created it (bad input must not leave a half-written store)."""
        if self.created and self.root.exists():
            shutil.rmtree(self.root, ignore_errors=True)


def write_store(path: str | Path, layers: dict[str, Any], samples: pd.DataFrame | None = None,
                provenance: dict[str, Any] | None = None, dtype: str = "float32", chunk_rows: int = 1024,
                overwrite: bool = True) -> RepStore:
    """Write in-memory arrays {layer: (n, ...) array/tensor} to a new store; handy for tests and Python users."""
    arrays = {k: torch.as_tensor(np.asarray(v) if not isinstance(v, torch.Tensor) else v) for k, v in layers.items()}
    ns = {a.shape[0] for a in arrays.values()}
    if len(ns) != 1:
        raise StoreError(f"all layers need the same number of rows, got {sorted(ns)}")
    n = ns.pop()
    if samples is None:
        samples = pd.DataFrame({"id": np.arange(n)})
    if len(samples) != n:
        raise StoreError(f"samples has {len(samples)} rows but the arrays have {n}")
    prov = {"model": "arrays", "pooling": "none", "dataset": "arrays", **(provenance or {})}
    w = StoreWriter.create_or_resume(path, samples, prov, chunk_rows=chunk_rows, dtype=dtype, overwrite=overwrite)
    w.set_layers({k: (tuple(a.shape[1:]), False) for k, a in arrays.items()})
    for s in range(0, n, chunk_rows):
        w.append({k: a[s : s + chunk_rows] for k, a in arrays.items()})
    return w.close()
