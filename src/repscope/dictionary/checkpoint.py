"""Checkpoints as safetensors + JSON only (never pickle).

Directory layout::

    config.json          module config (arch, sizes, coefficients), training config, step, source, metrics
    model.safetensors    parameters and buffers
    trainer.safetensors  optimizer moments, dead-latent counters, torch RNG state (resumable checkpoints only)
    optimizer.json       optimizer param_groups (hyper-parameters) and the state key layout
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch

from repscope.atomic import atomic_write_text
from repscope.errors import StoreError
from repscope.tensorfile import SAE_FORMAT as FORMAT  # one definition: the proof of authorship reads it too
from repscope.tensorfile import read_tensors, save_tensors

VERSION = 1


def _atomic_json(path: Path, obj: Any) -> None:
    atomic_write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str))


def _atomic_tensors(path: Path, tensors: dict[str, torch.Tensor]) -> None:
    save_tensors(path, tensors)


def save_module(directory: str | os.PathLike, module: torch.nn.Module, meta: dict[str, Any]) -> Path:
    """Write module weights and its JSON config (plus `meta`) to a directory."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    _atomic_tensors(d / "model.safetensors", dict(module.state_dict()))
    _atomic_json(d / "config.json", {"format": FORMAT, "version": VERSION, "module": module.config(), **meta})
    return d


def read_config(directory: str | os.PathLike) -> dict[str, Any]:
    """Read a checkpoint's config.json, with a one-line error if the directory is not a checkpoint."""
    d = Path(directory)
    p = d / "config.json"
    if not p.is_file() or not (d / "model.safetensors").is_file():
        raise StoreError(f"'{d}' is not a repscope SAE/quantizer directory (needs config.json and model.safetensors)")
    try:
        cfg = json.loads(p.read_text(encoding="utf-8"))
    except ValueError as err:  # JSON and UTF-8 errors
        raise StoreError(f"'{p}' is damaged (not JSON: {str(err).splitlines()[0][:120]}); restore the folder from a "
                         "copy or train it again") from None
    if not isinstance(cfg, dict) or not isinstance(cfg.get("module"), dict):
        raise StoreError(f"'{p}' is damaged (no 'module' config); restore the folder from a copy or train it again")
    if cfg.get("format") != FORMAT:
        raise StoreError(f"'{p}' has format {cfg.get('format')!r}, expected {FORMAT!r}; retrain with this repscope")
    return cfg


def load_tensors(directory: str | os.PathLike, name: str = "model.safetensors") -> dict[str, torch.Tensor]:
    """Load a safetensors file from a checkpoint directory (a damaged file: one-line StoreError)."""
    return read_tensors(Path(directory) / name, "SAE checkpoint")


def save_trainer_state(directory: str | os.PathLike, optimizer: torch.optim.Optimizer,
                       extra: dict[str, torch.Tensor]) -> None:
    """Write the optimizer state and extra tensors (counters, RNG) for an exact resume."""
    d = Path(directory)
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {f"extra.{k}": v for k, v in extra.items()}
    layout: dict[str, dict[str, str]] = {}
    for pid, st in sd["state"].items():
        layout[str(pid)] = {}
        for key, val in st.items():
            if isinstance(val, torch.Tensor):
                tensors[f"opt.{pid}.{key}"] = val
                layout[str(pid)][key] = "tensor"
            else:
                layout[str(pid)][key] = json.dumps(val)
    _atomic_tensors(d / "trainer.safetensors", tensors)
    _atomic_json(d / "optimizer.json", {"param_groups": sd["param_groups"], "state": layout})


def load_trainer_state(directory: str | os.PathLike, optimizer: torch.optim.Optimizer) -> dict[str, torch.Tensor]:
    """Restore optimizer state from a checkpoint directory; returns the extra tensors."""
    d = Path(directory)
    tensors = read_tensors(d / "trainer.safetensors", "SAE trainer state")
    try:
        meta = json.loads((d / "optimizer.json").read_text(encoding="utf-8"))
        state: dict[int, dict[str, Any]] = {}
        for pid, keys in meta["state"].items():
            state[int(pid)] = {k: (tensors[f"opt.{pid}.{k}"] if kind == "tensor" else json.loads(kind))
                               for k, kind in keys.items()}
        optimizer.load_state_dict({"state": state, "param_groups": meta["param_groups"]})
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as err:
        raise StoreError(f"the optimizer state in '{d}' is damaged ({type(err).__name__}: {str(err)[:120]}); train "
                         "again with --fresh, or into a new --out folder") from None
    return {k[len("extra."):]: v for k, v in tensors.items() if k.startswith("extra.")}
