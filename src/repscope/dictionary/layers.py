"""One SAE per layer, shared by `repscope sae train --layer a,b` and the `run: sae` study step: checkpoint folders
per layer (never shared) and one unit per layer, which any executor (`repscope.distributed.executor`: local or Ray)
runs; each unit writes only its own checkpoint folder."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from repscope.distributed.executor import Unit


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


def _sae_layer(store: Any, layer: str, out: str | None, kw: dict[str, Any]) -> Any:
    """One unit of `sae train`: `train_sae_on_store(store, layer, out=out, **kw)`, returned without its estimator
    (the weights are in the checkpoint folder `out`; the metrics, params and feature cards stay)."""
    from repscope.dictionary.runs import train_sae_on_store

    res = train_sae_on_store(store, layer, out=out, **kw)
    res.estimator = None  # keep the module off the wire
    return res


def plan_sae_layers(store: Any, layers: Sequence[str], outs: Sequence[str | Path | None], *,
                    option: str = "--out", progress: bool = False, **kw: Any) -> list[Unit]:
    """The units of `train_sae_on_store(store, layers[i], out=outs[i], **kw)`, one per layer (their `SaeResult`s in
    layer order, estimator dropped). Checked here, before any unit runs: one folder per layer, each writable and free
    for an SAE checkpoint (new, empty or a repscope SAE folder; never the current folder or the store:
    `ownership.check_sae_output`), and no two layers writing one folder (compared as absolute paths, which the
    units receive, so a worker elsewhere writes the same folders). `option` names the folder in one-line errors;
    `progress` shows a progress bar per layer (for units run in this process)."""
    from repscope.errors import ConfigError, check_output_dir
    from repscope.store.ownership import check_sae_output

    if len(outs) != len(layers):
        raise ConfigError(f"{len(layers)} layers but {len(outs)} checkpoint folders; give one folder per layer")
    for o in outs:
        if o is not None:
            check_output_dir(o, option)
            check_sae_output(o, inputs=[store.root], option=option)
    paths = [None if o is None else str(Path(o).resolve()) for o in outs]
    named = [p for p in paths if p is not None]
    if len(set(named)) != len(named):
        dup = next(p for p in named if named.count(p) > 1)
        raise ConfigError(f"two layers would write the SAE folder '{dup}'; give each layer its own {option}")
    kw = {**kw, "progress": progress}
    return [Unit(_sae_layer, (store, layer, out, kw), label=f"{store.name}:{layer}")
            for layer, out in zip(layers, paths, strict=True)]
