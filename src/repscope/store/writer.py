"""StoreWriter: streams rows into a RepStore chunk by chunk, commits progress atomically, and resumes.

Creation is manifest-first: the manifest (0 rows) is written before samples.parquet and the layer arrays, and a
rerun of the same command completes whatever step a kill interrupted. A chunk is first written to every layer
array, then its content hash and `progress.rows_done` are committed in the manifest by an atomic rename. A crash
between the two leaves the manifest at the previous chunk, so the rerun rewrites that chunk: no rows are lost or
duplicated. One writer at a time holds the store's advisory lock (`StoreLock`).

Test-only fault injection: `REPSCOPE_FAULT=after-samples` (samples.parquet in place, not yet in the manifest) or
`REPSCOPE_FAULT=in-set-layers` (first layer array created, manifest not yet updated) SIGKILLs the process there.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import warnings
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import zarr
from zarr.codecs import Crc32cCodec

from repscope import __version__
from repscope.atomic import atomic_write
from repscope.errors import StoreError
from repscope.store.lock import StoreLock
from repscope.store.manifest import (
    CRC_FIELD,
    SAMPLES,
    SCHEMA_VERSION,
    array_name,
    chunk_digests,
    file_sha256,
    read_manifest,
    write_json_atomic,
    write_manifest,
)
from repscope.store.ownership import check_store_output, clean_store_temp, remove_entry, remove_store_files
from repscope.store.repstore import GROUP_META, RepStore, chunk_file, dimension_names

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
TOKEN_CHUNK = 8192
# provenance for re-loading the source later; informational, never part of the resume check (old stores lack them)
RELOAD_KEYS = ("model_spec", "dataset_spec", "max_length")
_WRITE_CONFIG = {"write_empty_chunks": True}  # every committed chunk exists on disk, so a missing file is damage


def samples_hash(df: pd.DataFrame) -> str:
    """Content hash of a samples table (sha256 over its CSV form)."""
    return hashlib.sha256(df.to_csv(index=False).encode()).hexdigest()[:16]


def open_layer_array(root: Path, key: str) -> zarr.Array:
    """A layer array of the store at `root` opened for writing whole chunks (empty chunks are written too)."""
    return zarr.open_array(Path(root) / "arrays" / key, mode="r+").with_config(_WRITE_CONFIG)


def encode_rows(t: torch.Tensor, dtype: str) -> np.ndarray:
    """A (rows, …) tensor as the numpy block stored for `dtype` (bfloat16 as raw uint16 bits)."""
    t = t.detach().to("cpu", DTYPES[dtype]).contiguous()
    if dtype == "bfloat16":
        return t.view(torch.uint16).numpy()
    return t.numpy()


def _fault(point: str) -> None:
    """Test-only crash injection: SIGKILL this process at `point` when REPSCOPE_FAULT names it."""
    if os.environ.get("REPSCOPE_FAULT") == point:
        os.kill(os.getpid(), signal.SIGKILL)


def _set_hash(hashes: list[str | None], i: int, h: str | None) -> None:
    """Record `h` as the hash of chunk `i`, padding the list with None up to it."""
    hashes.extend([None] * (i + 1 - len(hashes)))
    hashes[i] = h


def _write_group(path: Path, what: str) -> None:
    """Zarr v3 group metadata, so `zarr.open_group` and `xarray.open_zarr` see the store."""
    write_json_atomic(path / GROUP_META, {"zarr_format": 3, "node_type": "group",
                                          "attributes": {"repscope": what}})


class StoreWriter:
    """Create or resume a store; call `set_layers` once shapes are known, then `append` rows in order."""

    def __init__(self, root: Path, manifest: dict[str, Any], created: bool, lock: StoreLock | None = None,
                 made_dir: bool = False):
        self.root = root
        self.manifest = manifest
        self.created = created  # True when this writer started the store (so bad input may remove it)
        self.made_dir = made_dir  # True when this writer also made the directory itself
        self._lock = lock
        self._arrays: dict[str, zarr.Array] = {}
        self._buf: dict[str, list[torch.Tensor]] = {}
        self._buf_rows = 0

    # ---- lifecycle ---------------------------------------------------------------------------------------------
    @classmethod
    def create_or_resume(cls, path: str | Path, samples: pd.DataFrame, provenance: dict[str, Any],
                         chunk_rows: int = 256, dtype: str = "float32", overwrite: bool = False,
                         resume_command: str | None = None, inputs: tuple[str | Path, ...] = ()) -> StoreWriter:
        """Open an incomplete store with matching provenance for resuming, or start a new one (under its lock).

        The path must pass `ownership.check_store_output` (new, empty, or a repscope store; a complete one only with
        `overwrite`; never the current folder or an input in `inputs`): a replaced store loses only the entries the
        store format owns, never other files in its folder."""
        root = Path(path)
        if dtype not in DTYPES:
            raise StoreError(f"unknown storage dtype '{dtype}'; use one of {', '.join(DTYPES)}")
        shash = provenance.get("dataset_hash") or samples_hash(samples)  # extract passes the data's own hash
        check_store_output(root, overwrite=overwrite, inputs=inputs)
        made_dir = not root.exists()
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise StoreError(f"cannot create store folder '{root}' ({err.strerror}); choose a writable path") from None
        lock = StoreLock.acquire(root)
        w: StoreWriter | None = None
        try:
            state = check_store_output(root, overwrite=overwrite, inputs=inputs)  # again, now under the lock
            clean_store_temp(root)
            if state == "resume":
                man = read_manifest(root)
                same = (man.get("schema_version") == SCHEMA_VERSION
                        and man["provenance"].get("dataset_hash") == shash
                        and man["provenance"].get("dtype") == dtype
                        and all(man["provenance"].get(k) == provenance.get(k)
                                for k in ("model", "model_hash", "pooling"))
                        and man.get("chunk_rows") == chunk_rows)
                if not same:
                    raise StoreError(f"store '{root}' holds an interrupted extraction with different settings; "
                                     "rerun with the original settings to resume, or pass --overwrite")
                for k in RELOAD_KEYS:  # stores from before these keys: fill them in (the data hash matched)
                    if man["provenance"].get(k) is None and provenance.get(k) is not None:
                        man["provenance"][k] = provenance[k]
                w = cls(root, man, created=False, lock=lock)
                w._finish_creation(samples)
                w._truncate_tokens()
                return w
            remove_store_files(root)  # only what the store format owns: other files in the folder stay
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
                "samples": None,  # filled in once samples.parquet is in place
            }
            w = cls(root, man, created=True, lock=lock, made_dir=made_dir)
            w._save()  # manifest first: from here on a rerun resumes instead of refusing the folder
            w._finish_creation(samples)
            return w
        except BaseException:
            if w is not None:
                w.abort(force=True)  # a creation step failed (not a kill): leave no 0-row store behind
            lock.release()
            raise

    def _finish_creation(self, samples: pd.DataFrame) -> None:
        """Complete the creation steps a kill may have cut short: group metadata, samples.parquet and its hash."""
        if not (self.root / GROUP_META).is_file():
            _write_group(self.root, "layer arrays are in the 'arrays' group; samples and provenance beside it")
        arrays = self.root / "arrays"
        arrays.mkdir(exist_ok=True)
        if not (arrays / GROUP_META).is_file():
            _write_group(arrays, "one array per layer (L_<layer>), rows along the first axis")
        rec = self.manifest.get("samples", "absent")
        if rec == "absent":  # a store from before samples were hashed: record the file it has
            if (self.root / SAMPLES).is_file():
                self.manifest["samples"] = {"sha256": file_sha256(self.root / SAMPLES), "rows": len(samples)}
                return
        elif rec is not None:
            return
        # the temp name starts with '.tmp-', so a killed writer's leftover is the store's own (ownership.is_store_temp)
        try:
            with atomic_write(self.root / SAMPLES, prefix=f".tmp-{SAMPLES}.") as tmp:
                samples.to_parquet(tmp, index=False)
        except (ValueError, TypeError, ImportError) as err:  # pyarrow's errors subclass these
            first = (str(err).splitlines() or [""])[0][:200]
            raise StoreError(f"cannot write {self.root / SAMPLES} ({type(err).__name__}: {first}); "
                             "check the dataset's label columns") from None
        _fault("after-samples")
        self.manifest["samples"] = {"sha256": file_sha256(self.root / SAMPLES), "rows": int(len(samples))}
        self._save()

    def _save(self) -> None:
        write_manifest(self.root, self.manifest)

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
        arrays = self.root / "arrays"
        for p in arrays.iterdir():  # arrays from a creation killed before the manifest listed them (0 rows)
            if p.name != GROUP_META:
                remove_entry(p)
        self._arrays = {}
        layers: dict[str, Any] = {}
        for name, (shape, tokens) in shapes.items():
            key = array_name(name)
            rows = (0, *shape) if tokens else (n, *shape)
            zarr.create_array(arrays / key, shape=rows, chunks=(TOKEN_CHUNK if tokens else cr, *shape),
                              dtype=np_dtype, compressors=[Crc32cCodec()], fill_value=0,
                              dimension_names=dimension_names(key, len(shape), tokens), config=_WRITE_CONFIG)
            info = {"shape": list(shape), "dtype": self.dtype, "tokens": bool(tokens), "array": key,
                    "chunk_hashes": [], "chunk_crc32c": []}
            if tokens:
                zarr.create_array(arrays / (key + ".offsets"), shape=(n + 1,), chunks=(max(cr, 1),), dtype="int64",
                                  compressors=[Crc32cCodec()], fill_value=0,
                                  dimension_names=["row_edge"], config=_WRITE_CONFIG)
                self._arr(key + ".offsets")[0:1] = np.zeros(1, dtype=np.int64)
                info["offset_hashes"], info["offset_crc32c"] = [], []
                self._rehash(info, "offset_hashes", key + ".offsets", 0, 0)
            layers[name] = info
            _fault("in-set-layers")
        self.manifest["layers"] = layers
        self._save()

    def _arr(self, key: str) -> zarr.Array:
        if key not in self._arrays:
            self._arrays[key] = open_layer_array(self.root, key)
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

    def _rehash(self, info: dict[str, Any], field: str, key: str, lo: int, hi: int) -> None:
        """Record the content hash of chunks [lo, hi] (row-axis indices) of array `key` in `info[field]`, and
        their payload CRC32C (checked on every read) in the matching CRC list when the layer has one."""
        hashes, crcs = info.get(field), info.get(CRC_FIELD[field])
        if hashes is None:  # a layer begun by a repscope without content hashes: verify falls back to CRC32C
            return
        arr = self._arr(key)
        for i in range(lo, hi + 1):
            blake, crc = chunk_digests(chunk_file(self.root / "arrays" / key, i, arr.ndim))
            _set_hash(hashes, i, blake)
            if crcs is not None:  # absent in layers begun before reads were verified: reads then use `hashes`
                _set_hash(crcs, i, crc)

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
        """Write buffered rows to every layer, hash the chunks they touched, then advance progress atomically."""
        if not self._buf_rows:
            return
        start, n = self.rows_done, self._buf_rows
        if start + n > self.manifest["n_samples"]:
            raise StoreError(f"more rows written than the {self.manifest['n_samples']} samples declared")
        for name, parts in self._buf.items():
            info = self.manifest["layers"][name]
            key = info["array"]
            if info["tokens"]:
                off_arr = self._arr(key + ".offsets")
                arr = self._arr(key)
                base = int(off_arr[start])
                lens = np.array([p.shape[0] for p in parts], dtype=np.int64)
                data = encode_rows(torch.cat(parts), self.dtype) if parts else None
                end = base + int(lens.sum())
                arr.resize((end, *arr.shape[1:]))
                if data is not None and len(data):
                    arr[base:end] = data
                    self._rehash(info, "chunk_hashes", key, base // arr.chunks[0], (end - 1) // arr.chunks[0])
                off_arr[start + 1 : start + n + 1] = base + np.cumsum(lens)
                c = off_arr.chunks[0]
                self._rehash(info, "offset_hashes", key + ".offsets", (start + 1) // c, (start + n) // c)
            else:
                arr = self._arr(key)
                arr[start : start + n] = encode_rows(torch.cat(parts), self.dtype)
                self._rehash(info, "chunk_hashes", key, start // arr.chunks[0], (start + n - 1) // arr.chunks[0])
        self._buf, self._buf_rows = {}, 0
        self.manifest["progress"]["rows_done"] = start + n
        self._save()

    def commit_chunk(self, end: int, hashes: dict[str, tuple[str | None, str | None]]) -> None:
        """Commit rows up to `end` after another process wrote the chunk ending there (pooled layers only).

        `hashes` is {layer: `chunk_digests` of that chunk file}; the chunk must be the next one in order, so the
        manifest advances chunk by chunk exactly as `flush` does (used by the Ray driver, the only committer).
        """
        start, cr = self.rows_done, self.manifest["chunk_rows"]
        if start % cr or end != min(start + cr, self.manifest["n_samples"]):
            raise StoreError(f"chunk commit out of order: rows {start}..{end} of store '{self.root}'")
        for name, info in self.manifest["layers"].items():
            if info["tokens"]:
                raise StoreError(f"layer '{name}' is token-level; its chunks cannot be committed by row range")
            recorded, crcs = info.get("chunk_hashes"), info.get(CRC_FIELD["chunk_hashes"])
            if recorded is not None:
                blake, crc = hashes[name]
                _set_hash(recorded, start // cr, blake)
                if crcs is not None:
                    _set_hash(crcs, start // cr, crc)
        self.manifest["progress"]["rows_done"] = end
        self._save()

    def close(self) -> RepStore:
        """Flush, mark the store complete, release the lock, and return the store opened for reading."""
        self.flush()
        if self.rows_done != self.manifest["n_samples"]:
            raise StoreError(f"store '{self.root}' got {self.rows_done} of {self.manifest['n_samples']} rows")
        with warnings.catch_warnings():  # "consolidated metadata is not part of the v3 spec": readers accept it
            warnings.simplefilter("ignore")
            zarr.consolidate_metadata(str(self.root))  # shapes are final: xarray/zarr open without listing files
        self.manifest["progress"]["complete"] = True
        self._save()
        self.release()
        return RepStore.open(self.root)

    def release(self) -> None:
        """Drop the writer lock (the kernel also drops it when the process dies)."""
        if self._lock is not None:
            self._lock.release()
            self._lock = None

    def abort(self, force: bool = False, keep_committed: bool = False) -> None:
        """Remove the store if this writer started it, or if `force` and no row is committed (nothing to resume);
        with `keep_committed`, a store holding committed rows is kept for a resume instead.

        Bad input must not leave a half-written store behind. Only the entries the store format owns are removed
        (`ownership.remove_store_files`); the folder itself only when this writer made it and nothing else is in it.
        """
        try:
            if keep_committed and self.rows_done:
                return
            if not (self.created or (force and self.rows_done == 0)) or not self.root.exists():
                return
            remove_store_files(self.root, lock=True)
            if self.made_dir:
                with contextlib.suppress(OSError):  # not empty: someone put a file there meanwhile; keep it
                    self.root.rmdir()
        finally:
            self.release()


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
    try:
        w.set_layers({k: (tuple(a.shape[1:]), False) for k, a in arrays.items()})
        for s in range(0, n, chunk_rows):
            w.append({k: a[s : s + chunk_rows] for k, a in arrays.items()})
        return w.close()
    finally:
        w.release()
