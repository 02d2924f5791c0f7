"""The store manifest: schema version, provenance, layer table and progress, written atomically as JSON."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 1
MANIFEST = "manifest.json"
SAMPLES = "samples.parquet"


def write_json_atomic(path: Path, obj: Any) -> None:
    """Write JSON to a temp file in the same folder, fsync, then rename over `path` (never half-written)."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(obj, f, indent=2)  # keep insertion order: layers are in model order
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def read_manifest(root: Path) -> dict[str, Any]:
    """Load manifest.json from a store directory."""
    with open(root / MANIFEST) as f:
        return json.load(f)


def array_name(layer: str) -> str:
    """Zarr array name for a layer (module paths may contain characters zarr dislikes)."""
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in layer)
    return "L_" + safe
