"""The store manifest: schema version, provenance, layer table and progress, written atomically as JSON.

Integrity fields (absent in stores written before repscope recorded them; `verify` then says so):

- `checksum`: sha256 of the manifest's own canonical JSON without this field (`manifest_checksum`);
- `samples`: `{"sha256": …, "rows": …}` of samples.parquet;
- per layer, `chunk_hashes` (and `offset_hashes` for token layers): blake2b-64 of each stored chunk file, by chunk
  index along the row axis, recorded when the chunk is committed (`verify` recomputes them);
- per layer, `chunk_crc32c` (and `offset_crc32c`): CRC32C of each chunk's payload (the file less zarr's 4-byte CRC32C
  trailer), recorded at the same commit. Reads check it at no extra cost: zarr already verifies that the payload
  matches the trailer it reads, and the reader compares that trailer with the recorded value. Layers without it
  (older stores) are checked on read against `chunk_hashes` (blake2b of the bytes zarr read), or not at all.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np

from repscope.atomic import atomic_write
from repscope.errors import StoreError

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
SAMPLES = "samples.parquet"
LOCK = ".writer.lock"
CHECKSUM_KEY = "checksum"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temp file in the same folder, fsync, then rename over `path` (never half-written;
    `repscope.atomic.atomic_write`). The temp name starts with '.tmp-', a store temp file
    (`ownership.is_store_temp`) that a resumed writer cleans up after a kill."""
    with atomic_write(path, prefix=".tmp-", suffix=".json") as tmp, open(tmp, "w") as f:
        f.write(_dumps(obj))  # keep insertion order: layers are in model order


def _dumps(obj: Any) -> str:
    """JSON with one line per top-level key (and per entry of a top-level dict), via the fast C encoder."""
    if not isinstance(obj, dict):
        return json.dumps(obj)

    def entry(k: str, v: Any, pad: str) -> str:
        if isinstance(v, dict) and v and pad == "  ":
            inner = ",\n".join(entry(k2, v2, "    ") for k2, v2 in v.items())
            return f"{pad}{json.dumps(k)}: {{\n{inner}\n{pad}}}"
        return f"{pad}{json.dumps(k)}: {json.dumps(v)}"

    return "{\n" + ",\n".join(entry(str(k), v, "  ") for k, v in obj.items()) + "\n}\n"


def manifest_checksum(man: dict[str, Any]) -> str:
    """sha256 of the manifest's canonical JSON (sorted keys, no whitespace), the `checksum` field left out."""
    body = {k: v for k, v in man.items() if k != CHECKSUM_KEY}
    return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def write_manifest(root: Path, man: dict[str, Any]) -> None:
    """Stamp the self-checksum into `man` and write it atomically to root/manifest.json."""
    man[CHECKSUM_KEY] = manifest_checksum(man)
    write_json_atomic(root / MANIFEST, man)


def _corrupt(root: Path, what: str) -> StoreError:
    return StoreError(f"{root / MANIFEST} is corrupt ({what}); restore it or re-extract the store with --overwrite")


# required top-level keys and their JSON types (checked on every open, cheap)
_SCHEMA: dict[str, type | tuple[type, ...]] = {
    "provenance": dict, "n_samples": int, "chunk_rows": int, "layers": dict, "progress": dict,
}


def read_manifest(root: Path) -> dict[str, Any]:
    """Load and schema-check manifest.json; a truncated or malformed file raises a StoreError naming it."""
    path = root / MANIFEST
    try:
        man = json.loads(path.read_bytes())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise _corrupt(root, f"not valid JSON: {str(err).splitlines()[0]}") from None
    except OSError as err:
        raise StoreError(f"cannot read {path}: {err.strerror}") from None
    if not isinstance(man, dict):
        raise _corrupt(root, "not a JSON object")
    if man.get("schema_version") != SCHEMA_VERSION:
        return man  # the caller reports the version mismatch; other versions may have other keys
    for key, typ in _SCHEMA.items():
        if not isinstance(man.get(key), typ):
            raise _corrupt(root, f"field '{key}' missing or not a {getattr(typ, '__name__', typ)}")
    rows = man["progress"].get("rows_done")
    if not isinstance(rows, int) or not 0 <= rows <= man["n_samples"]:
        raise _corrupt(root, f"progress.rows_done is {rows!r}")
    for name, info in man["layers"].items():
        if not isinstance(info, dict) or not {"shape", "dtype", "tokens", "array"} <= info.keys():
            raise _corrupt(root, f"layer '{name}' entry is incomplete")
    return man


def check_manifest_checksum(root: Path, man: dict[str, Any]) -> bool:
    """True when the manifest carries a self-checksum and it matches; False when it has none (older store).

    Raises a StoreError naming manifest.json when the checksum does not match (edited or damaged).
    """
    want = man.get(CHECKSUM_KEY)
    if want is None:
        return False
    if want != manifest_checksum(man):
        raise _corrupt(root, "its self-checksum does not match its content; it was edited or damaged")
    return True


def array_name(layer: str) -> str:
    """Zarr array name for a layer (module paths may contain characters zarr dislikes)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in layer)
    return "L_" + safe


def file_sha256(path: Path) -> str:
    """sha256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def chunk_hash(path: Path) -> str | None:
    """blake2b-64 of a stored chunk file's bytes (None when the file does not exist)."""
    try:
        return bytes_hash(path.read_bytes())
    except FileNotFoundError:
        return None


# per-layer manifest field of the read-path CRC32C list that goes with each blake2b list
CRC_FIELD = {"chunk_hashes": "chunk_crc32c", "offset_hashes": "offset_crc32c"}


def bytes_hash(data: bytes | memoryview) -> str:
    """blake2b-64 hex digest of a chunk's bytes (the `chunk_hashes` entries)."""
    return hashlib.blake2b(data, digest_size=8).hexdigest()


def crc_hex(value: int) -> str:
    """A CRC32C as recorded in `chunk_crc32c`: 8 lowercase hex digits."""
    return f"{value:08x}"


def chunk_digests(path: Path) -> tuple[str | None, str | None]:
    """(blake2b-64 of the file, CRC32C of its payload) of a stored chunk file, from one read; (None, None) when the
    file does not exist. The payload is the file less zarr's 4-byte CRC32C trailer."""
    import google_crc32c  # zarr's own CRC32C dependency

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return None, None
    payload = np.frombuffer(data, dtype=np.uint8)[:-4]  # no copy; google_crc32c takes it as zarr passes it
    return bytes_hash(data), crc_hex(google_crc32c.value(payload))
