"""RepStore: a directory of layer-wise representations.

Layout::

    manifest.json      schema version, provenance, layers (shape, dtype, token-level?), progress
    samples.parquet    id, label/factor columns, text or image index, split
    arrays/L_<layer>   one Zarr v3 array per layer, chunked by rows, CRC32C checksum on every chunk
    arrays/L_<layer>.offsets   token-level layers only: int64 row offsets (n+1) into the flat token array
    zarr.json, arrays/zarr.json   Zarr v3 group metadata: `xarray.open_zarr(path, group="arrays")` reads the arrays
    .writer.lock       advisory lock held by the process writing the store (PID and host inside)

Reading is lazy, by layer and by row range. bfloat16 is stored as its raw uint16 bits (numpy has no bfloat16).
Reads are verified: `RepStore.open` checks the manifest self-checksum and the samples.parquet sha256, and every chunk
read is checked against the content hash recorded when it was committed (the CRC32C that zarr verifies anyway, so
a chunk swapped, copied or brought from another store is refused at no extra cost). A read that touches a missing,
damaged or misplaced chunk raises `CorruptChunkError` naming the layer and chunk; `verify()` checks everything
(also the blake2b hash of every chunk file). `to_xarray()` reads the files through xarray, unverified.
"""

from __future__ import annotations

import hashlib
import io
import warnings
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
import zarr
from zarr.codecs import Crc32cCodec
from zarr.storage import LocalStore, WrapperStore

from repscope.errors import (
    CorruptChunkError,
    DataError,
    IncompleteStoreError,
    LayerNotFoundError,
    SchemaVersionError,
    StoreError,
    format_choices,
)
from repscope.store.manifest import (
    CRC_FIELD,
    MANIFEST,
    SAMPLES,
    SCHEMA_VERSION,
    array_name,
    bytes_hash,
    check_manifest_checksum,
    chunk_digests,
    crc_hex,
    read_manifest,
)

Rows = slice | Sequence[int] | np.ndarray | torch.Tensor | None
GROUP_META = "zarr.json"


def chunk_file(array_dir: Path, i: int, ndim: int) -> Path:
    """Path of chunk `i` along the row axis of an array chunked only by rows (zarr v3 default key `c/i/0/…`)."""
    return array_dir.joinpath("c", str(i), *(["0"] * (ndim - 1)))


def dimension_names(key: str, ndim: int, tokens: bool) -> list[str]:
    """Zarr v3 dimension names of a layer array: 'row' (or '<key>_token' when flat tokens), then '<key>_dim_i'."""
    return ["_".join((key, "token")) if tokens else "row", *[f"{key}_dim_{i}" for i in range(ndim)]]


@dataclass
class VerifyReport:
    """What `RepStore.check` verified: chunks per array, and notes (e.g. an older store without content hashes)."""

    checked: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


class _CheckedChunks(WrapperStore[LocalStore]):
    """One layer array's folder as a zarr store that hands each whole chunk it reads (keys 'c/<row chunk>/0/…') to
    `check(row chunk index, buffer or None)` before zarr decodes it."""

    def __init__(self, store: LocalStore, check: Callable[[int, Any], None]):
        super().__init__(store)
        self._check = check

    def _with_store(self, store: LocalStore) -> _CheckedChunks:
        return type(self)(store, self._check)

    async def get(self, key: str, prototype: Any = None, byte_range: Any = None) -> Any:
        buf = await self._store.get(key, prototype, byte_range)
        if byte_range is None and key.startswith("c/"):
            self._check(int(key.split("/")[1]), buf)
        return buf


def decode(arr: np.ndarray, dtype: str) -> torch.Tensor:
    """Turn a stored numpy block back into a tensor of the manifest dtype."""
    t = torch.from_numpy(np.ascontiguousarray(arr))
    if dtype == "bfloat16":
        t = t.view(torch.bfloat16)
    return t


def layer_position(store: Any, layer: str) -> int | None:
    """Position of `layer` in `store.layers` (model order), recorded as a result row's `layer_index`; None when the
    store is None or lacks the layer."""
    names = list(getattr(store, "layers", None) or [])
    return names.index(layer) if layer in names else None


def pooled_layers(store: Any, layers: Any = None, purpose: str = "this analysis") -> list[str]:
    """The pooled layers among `layers` (names/globs; all by default). Token-level layers are skipped when not named
    and refused with a one-line DataError when named; none left is a DataError too."""
    chosen = store.resolve_layers(layers)
    tokens = [la for la in chosen if store.is_tokens(la)]
    if tokens and layers is not None:
        raise DataError(f"layer '{tokens[0]}' of store '{store.name}' is token-level; {purpose} needs pooled layers "
                        "(re-extract with a pooling such as mean)")
    pooled = [la for la in chosen if la not in tokens]
    if not pooled:
        raise DataError(f"store '{store.name}' has no pooled layers; re-extract with a pooling such as mean")
    return pooled


def target_values(store: Any, target: str) -> tuple[np.ndarray, np.ndarray]:
    """(row indices with a value in column `target`, the values); rows with a missing target are dropped."""
    y = store.labels(target)
    ok = ~pd.isna(pd.Series(y)).to_numpy()
    if ok.sum() == 0:
        raise DataError(f"column '{target}' of store '{store.name}' has no values; pick another --target")
    return np.nonzero(ok)[0], y[ok]


class RepStore:
    """Read access to a store written by `repscope.extract` (or `StoreWriter`)."""

    def __init__(self, root: Path, manifest: dict[str, Any], verify: bool = True):
        self.root = root
        self.manifest = manifest
        self._verify = verify  # check samples.parquet and every chunk read against the manifest's hashes
        self._samples: pd.DataFrame | None = None
        self._samples_data: bytes | None = None  # samples.parquet as checked by `open`, until parsed
        self._arrays: dict[str, zarr.Array] = {}
        self._missing: dict[str, set[int]] = {}  # committed chunks without a file, per array key
        self._n_chunks: dict[str, int] = {}  # committed chunks, per array key
        self._verified: dict[str, set[int]] = {}  # chunks whose blake2b was checked (stores without CRC32C lists)
        self._offsets: dict[str, np.ndarray] = {}

    # ---- opening -----------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | Path, allow_incomplete: bool = False, verify: bool = True) -> RepStore:
        """Open a store directory; refuses incomplete stores and other schema versions with a one-line error.

        Checks the manifest self-checksum and samples.parquet's sha256 now, and each chunk when it is read (see the
        module docstring). `verify=False` skips these checks; it is internal (benchmark baselines, and `check`, which
        does them all itself), not a user setting."""
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
        store = cls(root, man, verify=verify)
        if verify:
            check_manifest_checksum(root, man)
            if man.get("samples"):
                # keep the checked bytes: `samples` parses them instead of reading and hashing the file again
                store._samples_data = store._samples_bytes(f"run `repscope verify {root}`, then re-extract the store")
        return store

    def __getstate__(self) -> dict[str, Any]:
        """Pickle (e.g. to a worker process) without the open arrays: they are reopened, with their checks, on use.
        The root travels as an absolute path, so a worker started in another folder finds the store."""
        return {**self.__dict__, "root": self.root.absolute(), "_arrays": {}, "_missing": {}, "_n_chunks": {},
                "_verified": {}}

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
        from repscope.selection import match_layers

        return match_layers(self.layers, patterns, where=f"store '{self.name}'")

    @property
    def samples(self) -> pd.DataFrame:
        """Per-sample table: id, labels/factors, text or image index, split."""
        if self._samples is None:
            self._samples = self._read_samples(self._samples_data)
            self._samples_data = None
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
    def _key(self, layer: str, suffix: str = "") -> str:
        """Name of a layer's zarr array under arrays/ (plus `suffix`, e.g. '.offsets')."""
        return self.layer_info(layer).get("array", array_name(layer)) + suffix

    def _array(self, layer: str, suffix: str = "") -> zarr.Array:
        """Open a layer's zarr array once; notes which committed chunks have no file (checked on each read)."""
        key = self._key(layer, suffix)
        if key not in self._arrays:
            path = self.root / "arrays" / key
            try:
                store: LocalStore | _CheckedChunks = LocalStore(path, read_only=True)
                if self._verify:
                    store = _CheckedChunks(store, self._chunk_check(layer, suffix))
                arr = zarr.open_array(store=store, mode="r")
            except Exception as err:  # missing or unreadable zarr.json
                raise CorruptChunkError(
                    f"store '{self.root}': layer '{layer}'{suffix} cannot be opened ({path / GROUP_META}: "
                    f"{type(err).__name__}); run `repscope verify {self.root}`"
                ) from None
            self._arrays[key] = arr
            extent = self._extent(layer, suffix)
            c = arr.chunks[0]
            self._n_chunks[key] = -(-extent // c)
            self._missing[key] = {i for i in range(self._n_chunks[key]) if not chunk_file(path, i, arr.ndim).exists()}
        return self._arrays[key]

    def _chunk_check(self, layer: str, suffix: str) -> Callable[[int, Any], None]:
        """The check run on each chunk of a layer's array as zarr reads it: the chunk is committed and its bytes
        are the ones recorded at commit (CRC32C trailer, which zarr then verifies against the payload; else the
        blake2b of the bytes, once per chunk per open store; layers with neither: nothing to check against)."""
        info = self.layer_info(layer)
        field_name = "offset_hashes" if suffix else "chunk_hashes"
        hashes, crcs = info.get(field_name), info.get(CRC_FIELD[field_name])
        key = self._key(layer, suffix)
        verified = self._verified.setdefault(key, set())
        use_crc: list[bool] = []  # decided once the array (and its codecs) is open

        def check(i: int, buf: Any) -> None:
            if i >= self._n_chunks[key]:  # past the committed rows: never read for committed rows
                return
            if buf is None:
                raise self._chunk_error(layer, suffix, i, "is missing")
            if not use_crc:
                codecs = getattr(self._arrays[key].metadata, "codecs", ())
                use_crc.append(crcs is not None and bool(codecs) and isinstance(codecs[-1], Crc32cCodec))
            data = buf.as_numpy_array()
            if use_crc[0]:
                ok = i < len(crcs) and crc_hex(int.from_bytes(data[-4:].tobytes(), "little")) == crcs[i]
            elif hashes is None or i in verified:
                return
            else:
                ok = i < len(hashes) and bytes_hash(memoryview(np.ascontiguousarray(data))) == hashes[i]
                if ok:
                    verified.add(i)
            if not ok:
                raise self._chunk_error(layer, suffix, i, "failed its checksum",
                                        "bytes differ from the content hash recorded at write")

        return check

    def _extent(self, layer: str, suffix: str) -> int:
        """Committed length along the row axis: rows, rows + 1 offsets, or the tokens of the committed rows."""
        if suffix == ".offsets":
            return self.n_rows + 1
        if self.is_tokens(layer):
            return self.n_tokens(layer)
        return self.n_rows

    def _chunk_error(self, layer: str, suffix: str, i: int, problem: str, detail: str = "",
                     verifying: bool = False) -> CorruptChunkError:
        """'store S: layer L chunk i.0 <problem> (arrays/L_x/c/i/0[: detail]); <what to do>'."""
        key = self._key(layer, suffix)
        ndim = self._arrays[key].ndim
        cid = ".".join([str(i)] + ["0"] * (ndim - 1))
        rel = chunk_file(Path("arrays") / key, i, ndim)
        todo = "re-extract the store" if verifying else f"run `repscope verify {self.root}`, then re-extract the store"
        return CorruptChunkError(f"store '{self.root}': layer '{layer}'{suffix} chunk {cid} {problem} "
                                 f"({rel}{': ' + detail if detail else ''}); {todo}")

    def _read(self, layer: str, suffix: str, lo: np.ndarray | range, fn: Callable[[zarr.Array], np.ndarray]):
        """Run `fn(array)` after checking that the chunks holding row-axis indices `lo` exist; turn a checksum
        failure inside zarr into a CorruptChunkError naming the chunk."""
        arr = self._array(layer, suffix)
        c = arr.chunks[0]

        def chunks() -> range | list[int]:  # computed only when needed: not on a healthy store's read path
            return range(lo.start // c, -(-lo.stop // c)) if isinstance(lo, range) else np.unique(lo // c).tolist()

        missing = self._missing[self._key(layer, suffix)]
        if missing:
            for i in chunks():
                if i in missing:
                    raise self._chunk_error(layer, suffix, i, "is missing")
        try:
            return fn(arr)
        except CorruptChunkError:  # raised by the chunk check, naming the chunk
            raise
        except Exception as err:
            for i in chunks():
                try:
                    arr[i * c : min((i + 1) * c, arr.shape[0])]
                except CorruptChunkError:
                    raise
                except Exception:
                    raise self._chunk_error(layer, suffix, i, "failed its checksum") from err
            raise

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
        if layer not in self._offsets:
            n = self.n_rows + 1
            self._offsets[layer] = np.asarray(self._read(layer, ".offsets", range(0, n), lambda a: a[:n]))
        return self._offsets[layer]

    def _take(self, layer: str, sel: np.ndarray | slice, n: int) -> np.ndarray:
        """Rows `sel` (a slice within [0, n) or indices) along the row axis of a layer's main array."""
        if isinstance(sel, slice):
            lo, hi, step = sel.indices(n)
            span = range(lo, max(hi, lo)) if step > 0 else range(hi + 1, lo + 1)
            return self._read(layer, "", span, lambda a: a[sel])
        order = np.argsort(sel, kind="stable")

        def gather(arr: zarr.Array) -> np.ndarray:
            data = np.empty((len(sel),) + tuple(arr.shape[1:]), dtype=arr.dtype)
            if len(sel):
                data[order] = arr.get_orthogonal_selection((sel[order],) + (slice(None),) * (arr.ndim - 1))
            return data

        return self._read(layer, "", sel, gather)

    def get(self, layer: str, rows: Rows = None, dtype: torch.dtype | None = None) -> torch.Tensor:
        """Load a layer for the given rows as a tensor (n, *shape); token layers give the rows' tokens, flat."""
        info = self.layer_info(layer)
        sel = self._rows(rows)
        if info.get("tokens"):
            off = self.offsets(layer)
            idx = range(*sel.indices(self.n_rows)) if isinstance(sel, slice) else sel
            ranges = [(int(off[i]), int(off[i + 1])) for i in idx]
            if ranges and isinstance(sel, slice) and sel.step == 1:
                data = self._take(layer, slice(ranges[0][0], ranges[-1][1]), self.n_tokens(layer))
            elif ranges:
                flat = np.concatenate([np.arange(a, b) for a, b in ranges])
                data = self._take(layer, flat, self.n_tokens(layer))
            else:
                data = self._take(layer, slice(0, 0), self.n_tokens(layer))
        else:
            data = self._take(layer, sel, self.n_rows)
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
        if isinstance(token_rows, slice):
            data = self._take(layer, slice(*token_rows.indices(n)), n)
        else:
            idx = np.asarray(token_rows, dtype=np.int64)
            if idx.size and (idx.min() < 0 or idx.max() >= n):
                raise StoreError(f"token row out of range for layer '{layer}' with {n} tokens")
            if idx.size and np.all(np.diff(idx) == 1):
                data = self._take(layer, slice(int(idx[0]), int(idx[-1]) + 1), n)
            else:
                data = self._take(layer, idx, n)
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

    def to_xarray(self) -> Any:
        """The layer arrays as a lazy `xarray.Dataset` (`xarray.open_zarr(root, group="arrays")`), with the samples
        columns as coordinates along 'row'. Needs the optional `xarray` package."""
        try:
            import xarray as xr
        except ImportError:
            raise StoreError("RepStore.to_xarray needs xarray; install it with `pip install xarray`") from None
        with warnings.catch_warnings():  # stores from before consolidated metadata: xarray warns, then reads
            warnings.simplefilter("ignore")
            ds = xr.open_zarr(self.root, group="arrays")
        if "row" in ds.dims:
            ds = ds.assign_coords({str(c): ("row", self.samples[c].to_numpy()) for c in self.samples.columns
                                   if str(c) not in ds.variables})
        return ds

    # ---- integrity ---------------------------------------------------------------------------------------------
    def verify(self) -> dict[str, int]:
        """Full integrity check (see `check`); returns {array: chunks checked}. Raises a StoreError naming the file."""
        return self.check().checked

    def check(self) -> VerifyReport:
        """Check the manifest self-checksum, samples.parquet (sha256, row count, readable), and every committed
        chunk of every layer: the file exists and its bytes match the hash recorded at commit (stores without
        hashes: it decodes with a valid CRC32C). Raises StoreError/CorruptChunkError naming the first bad file."""
        rep = VerifyReport()
        if not check_manifest_checksum(self.root, self.manifest):
            rep.notes.append(f"{MANIFEST} has no self-checksum (written by an older repscope)")
        self._check_samples(rep)
        legacy = False
        for layer in self.layers:
            info = self.layer_info(layer)
            parts = ([(".offsets", "offset_hashes")] if info.get("tokens") else []) + [("", "chunk_hashes")]
            for suffix, field_name in parts:
                arr = self._array(layer, suffix)
                path = self.root / "arrays" / self._key(layer, suffix)
                want_shape = [self.n_samples + 1] if suffix else [None if info.get("tokens") else self.n_samples,
                                                                   *info["shape"]]
                if [w if w is not None else s for w, s in zip(want_shape, arr.shape, strict=False)] != \
                        list(arr.shape):
                    raise CorruptChunkError(f"store '{self.root}': {path / GROUP_META} has shape {arr.shape}, the "
                                            f"manifest says {tuple(want_shape)}; re-extract the store")
                hashes, crcs = info.get(field_name), info.get(CRC_FIELD[field_name])
                legacy |= hashes is None
                c, n_chunks = arr.chunks[0], -(-self._extent(layer, suffix) // arr.chunks[0])
                for i in range(n_chunks):
                    f = chunk_file(path, i, arr.ndim)
                    if not f.is_file():
                        raise self._chunk_error(layer, suffix, i, "is missing", verifying=True)
                    if hashes is not None:
                        blake, crc = chunk_digests(f)
                        if i >= len(hashes) or hashes[i] != blake or \
                                (crcs is not None and (i >= len(crcs) or crcs[i] != crc)):
                            raise self._chunk_error(layer, suffix, i, "failed its checksum",
                                                    "bytes differ from the content hash recorded at write",
                                                    verifying=True)
                    else:
                        try:
                            arr[i * c : min((i + 1) * c, arr.shape[0])]
                        except Exception as err:
                            raise self._chunk_error(layer, suffix, i, "failed its checksum", type(err).__name__,
                                                    verifying=True) from None
                rep.checked[layer + suffix] = n_chunks
        if legacy:
            rep.notes.append("layers have no per-chunk content hashes (older store): checked CRC32C only, which "
                             "cannot tell a chunk copied over another")
        return rep

    def _check_samples(self, rep: VerifyReport) -> None:
        if not self.manifest.get("samples"):
            rep.notes.append(f"{SAMPLES} has no recorded hash (older store): checked that it reads")
        self._read_samples(self._samples_bytes("re-extract the store"))

    def _samples_bytes(self, todo: str) -> bytes:
        """samples.parquet's bytes, checked against the sha256 recorded in the manifest (when it has one); a
        missing or mismatching file raises a StoreError naming it and ending with `todo`."""
        path = self.root / SAMPLES
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise StoreError(f"store '{self.root}': {path} is missing; re-extract the store") from None
        except OSError as err:
            raise StoreError(f"store '{self.root}': cannot read {path} ({err.strerror}); {todo}") from None
        rec = self.manifest.get("samples")
        if rec and hashlib.sha256(data).hexdigest() != rec.get("sha256"):
            raise StoreError(f"store '{self.root}': {path} does not match the sha256 recorded in the manifest "
                             f"(damaged or replaced); {todo}")
        return data

    def _read_samples(self, data: bytes | None = None) -> pd.DataFrame:
        """Parse samples.parquet (from `data` when given, else read and, when verifying, hash-checked here),
        raising a StoreError naming it when unreadable or short."""
        path = self.root / SAMPLES
        if data is None:
            data = self._samples_bytes(f"run `repscope verify {self.root}`, then re-extract the store") \
                if self._verify else None
        try:
            df = pd.read_parquet(io.BytesIO(data) if data is not None else path)
        except Exception as err:
            raise StoreError(f"store '{self.root}': {path} cannot be read ({type(err).__name__}: "
                             f"{str(err).splitlines()[0] if str(err) else ''}); run `repscope verify {self.root}`"
                             ) from None
        want = (self.manifest.get("samples") or {}).get("rows", self.n_samples)
        if len(df) != want:
            raise StoreError(f"store '{self.root}': {path} has {len(df)} rows, the manifest says {want}; "
                             "re-extract the store")
        return df

    def __repr__(self) -> str:
        return f"RepStore('{self.root}', model={self.model!r}, n={self.n_rows}, layers={len(self.layers)})"
