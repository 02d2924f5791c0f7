"""Study steps `run: probe` and `run: sts`: params models (checked when the study file loads) and step functions.

Step functions take the stores named in the study plus validated params and return a `Result`; the study runner
records it. Heavy imports stay inside the functions so validating a study file is fast.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from repscope.budget import MaxMemory
from repscope.distributed.ray_sweep import RayParam
from repscope.params import SAMPLE_COLUMN
from repscope.results import Result


def _probe_names(value: str | list[str]) -> list[str]:
    """Comma string or list of probe names, each checked against the probe registry (aliases resolved)."""
    from repscope.probe.registry import canonical

    names = [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else list(value)
    if not names:
        raise ValueError("give at least one probe")
    return [canonical(n) for n in names]


class ProbeParams(BaseModel):
    """Params of `run: probe`: per-layer probe sweep, concept depth, optional few-shot curve at the best layer."""

    model_config = ConfigDict(extra="forbid")
    probes: list[str] = Field(default_factory=lambda: ["logistic"])
    target: Annotated[str, SAMPLE_COLUMN] = "label"
    layers: str | list[str] | None = None
    cv: int | None = Field(None, ge=2)
    test_size: float = Field(0.25, gt=0, lt=1)
    few_shot: bool = False
    threshold: float = Field(0.9, gt=0, le=1)
    seed: int = 0
    device: str = "auto"
    max_memory: MaxMemory = None
    ray: RayParam = None

    @field_validator("probes", mode="before")
    @classmethod
    def _known(cls, value: str | list[str]) -> list[str]:
        return _probe_names(value)


class StsParams(BaseModel):
    """Params of `run: sts`: STS Spearman per layer."""

    model_config = ConfigDict(extra="forbid")
    layers: str | list[str] | None = None
    max_memory: MaxMemory = None


def run(stores: list, probes: list[str], target: str = "label", layers: Any = None, cv: int | None = None,
        test_size: float = 0.25, few_shot: bool = False, threshold: float = 0.9, seed: int = 0,
        device: str = "auto", max_memory: int | str | None = None, ray: str | None = None) -> Result:
    """Per-layer probe sweep (+ concept depth, optional few-shot curve at the best layer) for each store; with `ray`,
    one Ray task per layer for the sweep (concept depth and the few-shot curve on the driver)."""
    from repscope.probe.protocols import as_table, concept_depth, few_shot_curve, layer_sweep

    sweep_fn = layer_sweep
    if ray:
        from functools import partial

        from repscope.distributed.ray_sweep import ray_layer_sweep

        sweep_fn = partial(ray_layer_sweep, address=ray)
    result = Result()
    for store in stores:
        sweep = sweep_fn(store, probes, target, layers=layers, cv=cv, test_size=test_size, seed=seed,
                         device=device, max_memory=max_memory)
        result.extend(sweep)
        table = as_table(sweep)
        if "accuracy" not in set(table["metric"]):
            continue
        result.extend(concept_depth(table, store.resolve_layers(layers), threshold=threshold, model=store.model))
        if few_shot:
            acc = table[table["metric"] == "accuracy"]
            best = str(acc.loc[acc["value"].idxmax(), "layer"])
            classifiers = list(dict.fromkeys(acc["probe"]))
            result.extend(few_shot_curve(store, best, classifiers, target, seed=seed, device=device))
    return result


def run_sts(stores: list, layers: Any = None, max_memory: int | str | None = None) -> Result:
    """STS Spearman per layer for stores of sentence pairs (columns pair, side, score)."""
    from repscope.probe.protocols import sts_sweep

    result = Result()
    for store in stores:
        result.extend(sts_sweep(store, layers=layers, max_memory=max_memory))
    return result
