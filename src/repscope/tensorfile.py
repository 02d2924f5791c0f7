"""One atomic safetensors writer for every checkpoint repscope writes (SAEs, adapters, learners, zoo weights).

safetensors' `save_file` writes in place, so a crash mid-write would leave a truncated file under the final name;
this writes a unique temp file beside it and renames it over the target (never pickle, never half-written).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import torch


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> Path:
    """Write `tensors` (detached, contiguous, on CPU) and string `metadata` to `path` atomically; returns the path."""
    from safetensors.torch import save_file

    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp), metadata=metadata)
        with open(tmp, "rb+") as f:  # durable before the rename, as the manifest writer is
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p
