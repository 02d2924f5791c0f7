"""One SAE per layer, shared by `repscope sae train --layer a,b` and the `run: sae` study step: checkpoint folders
per layer (never shared) and the layer loop, local or as one Ray task per layer."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any


def sae_dirs(store_name: str, layers: list[str], arch: str, out: Path | None, *, nested: bool = False) -> list[Path]:
    """Checkpoint folder per layer: `out` itself for one layer (unless `nested`), else `out/<store>_<layer>_<arch>`
    (default out: sae/), so no two layers share a folder; a clash of sanitised names is a one-line ConfigError."""
    from repscope.errors import ConfigError

    def name(la: str) -> str:
        return f"{store_name}_{la.replace('/', '_')}_{arch}"

    if len(layers) == 1 and not nested:
        return [out or Path("sae") / name(layers[0])]
    dirs = [(out or Path("sae")) / name(la) for la in layers]
    seen: dict[Path, str] = {}
    for la, d in zip(layers, dirs, strict=True):
        if d in seen:
            raise ConfigError(f"layers '{seen[d]}' and '{la}' would share the SAE folder '{d}'; train them apart")
        seen[d] = la
    return dirs


def train_sae_layers(store: Any, layers: Sequence[str], outs: Sequence[str | Path | None], *, ray: str | None = None,
                     num_gpus: float = 0.0, progress: bool = False, option: str = "--out", **kw: Any) -> list[Any]:
    """`train_sae_on_store(store, layers[i], out=outs[i], **kw)` for each layer, in order, or as one Ray task per
    layer when `ray` is an address ('auto', 'local', ray://…); returns the `SaeResult`s in layer order. Every named
    folder is checked writable and free for an SAE checkpoint (new, empty or a repscope SAE folder; never the
    current folder or the store: `ownership.check_sae_output`) before any training starts (`option` names it in
    the one-line error)."""
    from repscope.dictionary.runs import train_sae_on_store
    from repscope.errors import ConfigError, check_output_dir
    from repscope.store.ownership import check_sae_output

    if len(outs) != len(layers):
        raise ConfigError(f"{len(layers)} layers but {len(outs)} checkpoint folders; give one folder per layer")
    for o in outs:
        if o is not None:
            check_output_dir(o, option)
            check_sae_output(o, inputs=[store.root], option=option)
    if ray:
        from repscope.distributed.ray_sweep import ray_train_saes

        return ray_train_saes(store, list(layers), list(outs), address=ray, num_gpus=num_gpus, **kw)
    return [train_sae_on_store(store, la, out=o, progress=progress, **kw) for la, o in zip(layers, outs, strict=True)]
