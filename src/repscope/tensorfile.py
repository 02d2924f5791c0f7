"""One atomic safetensors writer for every checkpoint repscope writes (SAEs, adapters, learners, zoo weights).

safetensors' `save_file` writes in place, so a crash mid-write would leave a truncated file under the final name;
this writes a unique temp file beside it and renames it over the target (never pickle, never half-written).
Every file carries `MARKER` in its header metadata, so repscope can later prove it wrote it; an existing file that
does not is never replaced (`repscope.store.ownership`).
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import torch

MARKER = "repscope"  # header metadata key (value: the repscope version) on every checkpoint repscope writes


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> Path:
    """Write `tensors` (detached, contiguous, on CPU) and string `metadata` (plus `MARKER`) to `path` atomically;
    returns the path. An existing file at `path` that repscope did not write is refused (OutputError)."""
    from safetensors.torch import save_file

    from repscope import __version__
    from repscope.store.ownership import require_replaceable_checkpoint

    p = Path(path)
    require_replaceable_checkpoint(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    tmp = p.with_name(f".{p.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata={**(metadata or {}), MARKER: __version__})
        with open(tmp, "rb+") as f:  # durable before the rename, as the manifest writer is
            os.fsync(f.fileno())
        os.replace(tmp, p)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return p


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0][:200]


def read_tensors(path: str | os.PathLike, what: str = "checkpoint") -> dict[str, torch.Tensor]:
    """Every tensor of a safetensors file; a damaged file (truncated, header shapes or offsets that do not match the
    data, not safetensors at all, unreadable) is a one-line StoreError naming it instead of safetensors' error."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from repscope.errors import StoreError

    try:
        return load_file(str(path))
    except (SafetensorError, OSError, ValueError, RuntimeError) as err:
        raise StoreError(f"{what} file '{path}' is damaged ({_first_line(err)}); restore it from a copy or train it "
                         "again") from None


def load_state(module: torch.nn.Module, state: dict[str, torch.Tensor], path: str | os.PathLike,
               what: str = "checkpoint") -> None:
    """`module.load_state_dict(state)`, where `module` was built from the file's own config: a missing, extra or
    differently shaped tensor means the config and the tensors disagree (an edited or damaged file), reported as
    a one-line StoreError naming the first mismatch."""
    import re

    from repscope.errors import StoreError

    try:
        module.load_state_dict(state)
    except RuntimeError as err:
        text = str(err)
        m = re.search(r"size mismatch for ([^:]+): copying a param with shape torch\.Size\((\[[^\]]*\])\) from "
                      r"checkpoint, the shape in current model is torch\.Size\((\[[^\]]*\])\)", text)
        detail = f"tensor '{m.group(1)}' is {m.group(2)} but its config makes it {m.group(3)}" if m else \
            " ".join(ln.strip() for ln in text.splitlines()[1:2]) or _first_line(err)
        raise StoreError(f"{what} '{path}' does not match its own config ({detail}); the file was edited or damaged "
                         "— restore it from a copy or train it again") from None
