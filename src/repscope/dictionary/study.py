"""Study steps `run: sae` (one unit per store and layer, run by any executor: locally or as Ray tasks) and
`run: quantize` (one store layer, run here); params are checked when the study file loads."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from repscope.distributed.executor import Unit
from repscope.params import SAMPLE_COLUMN, TARGET_KEYS, NonNegativeFloat, PositiveFloat
from repscope.results import Result


def _registered(registry_ref: str, value: str) -> str:
    from repscope.analyses import resolve

    return resolve(registry_ref).resolve(value)


class SaeParams(BaseModel):
    """Params of `run: sae` (passed to `train_sae_on_store`); `layer` is required (names or globs, a list or comma
    separated: one SAE per layer), `arch` a registered SAE arch. `out`: checkpoint folder holding one
    `<store>_<layer>_<arch>` folder per store and layer (relative: inside the stores' folder, the study workdir;
    default: no checkpoints). `target`: sample column of probe-after-reconstruction (old key: `label`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    layer: str | list[str] = Field(min_length=1)
    arch: str = "topk"
    k: int | None = Field(32, ge=1)
    expansion: PositiveFloat = 16.0
    n_latents: int | None = Field(None, ge=1)
    l1_coeff: NonNegativeFloat = 1.0
    n_epochs: PositiveFloat = 10.0
    n_steps: int | None = Field(None, ge=1)
    batch_size: int = Field(4096, ge=1)
    lr: PositiveFloat | None = None
    holdout_every: int = Field(10, ge=0)
    dead_rows: str = "eval"
    seed: int = 0
    device: str = "auto"
    target_layer: str | None = None
    target: Annotated[str | None, SAMPLE_COLUMN] = Field(None, validation_alias=TARGET_KEYS)
    n_cards: int = Field(12, ge=0)
    out: str | None = None
    resume: bool = True

    @field_validator("arch")
    @classmethod
    def _arch(cls, value: str) -> str:
        return _registered("repscope.dictionary.modules:ARCHS", value)

    @field_validator("dead_rows")
    @classmethod
    def _dead_rows(cls, value: str) -> str:
        from repscope.dictionary.runs import DEAD_ROWS
        from repscope.errors import check_choice

        return check_choice(value, DEAD_ROWS, "dead_rows")


class QuantizeParams(BaseModel):
    """Params of `run: quantize` (passed to `quantize_store`); `method` is a registered quantizer; `target`: sample
    column of probe-after-reconstruction (old key: `label`)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    layer: str
    method: str = "pq"
    bits: int | None = Field(64, ge=1)
    holdout_every: int = Field(10, ge=0)
    seed: int = 0
    device: str = "auto"
    target: Annotated[str | None, SAMPLE_COLUMN] = Field(None, validation_alias=TARGET_KEYS)

    @field_validator("method")
    @classmethod
    def _method(cls, value: str) -> str:
        return _registered("repscope.dictionary.quantize:METHODS", value)


def _each_store(stores: list, fn: Any, layer: str, params: dict[str, Any]) -> Result:
    """Rows and artifacts of `fn(store, layer, **params)` for each store (the fitted estimator is not kept)."""
    result = Result()
    for store in stores:
        result.extend(fn(store, layer, **params))
    return result


def plan(stores: list, p: SaeParams) -> list[Unit]:
    """`run: sae` units: one SAE per `layer` of each store (metrics rows + feature-card artifacts; the default
    combine concatenates them in order); with `out`, each writes its own checkpoint folder (see `SaeParams`). Every
    store's folders are checked before any unit runs."""
    from repscope.dictionary.layers import plan_sae_layers, sae_dirs
    from repscope.errors import ConfigError

    params = {k: v for k, v in dict(p).items() if k not in ("layer", "out")}
    units: list[Unit] = []
    for store in stores:
        layers = store.resolve_layers(p.layer)
        if p.target_layer and len(layers) > 1:
            raise ConfigError(f"target_layer trains one transcoder; give one layer, not {len(layers)}")
        outs: list[Path | None] = [None] * len(layers)
        if p.out is not None:
            base = Path(p.out) if Path(p.out).is_absolute() else Path(store.root).parent / p.out
            outs = list(sae_dirs(store.name, layers, p.arch, base, nested=True))
        units += plan_sae_layers(store, layers, outs, option="out", **params)
    return units


def run_quantize(stores: list, layer: str, **params: Any) -> Result:
    """Fit and evaluate a quantizer on `layer` of each store."""
    from repscope.dictionary.runs import quantize_store

    return _each_store(stores, quantize_store, layer, params)
