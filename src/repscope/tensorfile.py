"""One atomic safetensors writer for every checkpoint repscope writes (SAEs, adapters, learners, zoo weights).

safetensors' `save_file` writes in place, so a crash mid-write would leave a truncated file under the final name;
this writes through `repscope.atomic.atomic_write` (a unique temp file beside it, fsynced and renamed over the
target: never pickle, never half-written).
Every file carries `MARKER` in its header metadata, so repscope can later prove it wrote it
(`is_repscope_checkpoint`); an existing file that does not is never replaced (`require_replaceable_checkpoint`, the
checkpoint guard `repscope.store.ownership` applies with those of every other output).
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from repscope.atomic import atomic_write

MARKER = "repscope"  # header metadata key (value: the repscope version) on every checkpoint repscope writes
SAE_FILES = frozenset({"config.json", "model.safetensors", "trainer.safetensors", "optimizer.json"})
SAE_FORMAT = "repscope-dictionary"  # config.json "format" of an SAE/quantizer folder (dictionary.checkpoint writes)
_LEGACY_CHECKPOINT_FORMATS = ("repscope-learner",)
_LEGACY_CHECKPOINT_KEYS = ("repscope_adapter",)


def save_tensors(path: str | os.PathLike, tensors: dict[str, torch.Tensor],
                 metadata: dict[str, str] | None = None) -> Path:
    """Write `tensors` (detached, contiguous, on CPU) and string `metadata` (plus `MARKER`) to `path` atomically;
    returns the path. An existing file at `path` that repscope did not write is refused (OutputError)."""
    from safetensors.torch import save_file

    from repscope import __version__

    p = Path(path)
    require_replaceable_checkpoint(p)
    p.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(p) as tmp:
        save_file({k: v.detach().contiguous().cpu() for k, v in tensors.items()}, str(tmp),
                  metadata={**(metadata or {}), MARKER: __version__})
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


# ---- proof of authorship -----------------------------------------------------------------------------------------
def safetensors_metadata(path: str | Path) -> dict[str, Any] | None:
    """The `__metadata__` of a safetensors file's header ({} when it has none), or None when it is not one."""
    try:
        with open(path, "rb") as f:
            head = f.read(8)
            n = int.from_bytes(head, "little") if len(head) == 8 else 0
            if not 2 <= n <= 100_000_000:
                return None
            header = json.loads(f.read(n))
    except (OSError, ValueError):  # JSON and UTF-8 errors are ValueErrors
        return None
    if not isinstance(header, dict):
        return None
    meta = header.get("__metadata__") or {}
    return meta if isinstance(meta, dict) else None


def is_sae_folder(directory: str | Path) -> bool:
    """True when `directory` holds a repscope SAE/quantizer checkpoint (config.json with format
    repscope-dictionary)."""
    try:
        cfg = json.loads((Path(directory) / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(cfg, dict) and cfg.get("format") == SAE_FORMAT


def is_repscope_checkpoint(path: str | Path) -> bool:
    """True when `path` is a safetensors file repscope wrote: its header carries `MARKER` (or an older
    learner's or adapter's metadata), or it is one of the files of a repscope SAE folder."""
    p = Path(path)
    meta = safetensors_metadata(p)
    if meta is None:
        return False
    if MARKER in meta or meta.get("format") in _LEGACY_CHECKPOINT_FORMATS or \
            any(k in meta for k in _LEGACY_CHECKPOINT_KEYS):
        return True
    return p.name in SAE_FILES and is_sae_folder(p.parent)


def require_replaceable_checkpoint(path: str | Path, option: str | None = None) -> None:
    """The guard of every checkpoint write: an existing file at `path` must be a checkpoint repscope wrote."""
    from repscope.errors import OutputError

    p = Path(path)
    what = f"{option} '{p}'" if option else f"'{p}'"
    if p.is_dir():
        raise OutputError(f"{what} is a folder; give a .safetensors file path")
    if p.exists() and not is_repscope_checkpoint(p):
        raise OutputError(f"{what} exists and is not a checkpoint repscope wrote; repscope never replaces it "
                          "(--overwrite too): choose another file name")
