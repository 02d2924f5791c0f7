"""Study steps `run: probe` and `run: sts`: params models (checked when the study file loads) and step functions.

Step functions take the stores named in the study plus validated params and return a `Result`; the study runner
records it. Heavy imports stay inside the functions so validating a study file is fast.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from repscope.budget import MaxMemory
from repscope.distributed.executor import Unit, concat_results, driver_budget
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
    cv: int = 0  # k-fold CV; 0: the store's split column, else a stratified holdout
    test_size: float = Field(0.25, gt=0, lt=1)
    few_shot: bool = False
    retrieval: bool = False
    threshold: float = Field(0.9, gt=0, le=1)
    seed: int = 0
    device: str = "auto"
    max_memory: MaxMemory = None

    @field_validator("probes", mode="before")
    @classmethod
    def _known(cls, value: str | list[str]) -> list[str]:
        return _probe_names(value)

    @field_validator("cv", mode="before")
    @classmethod
    def _folds(cls, value: Any) -> Any:
        """0 (or null): the store's split column, else a holdout; k ≥ 2: k-fold CV."""
        if value is None:
            return 0
        if isinstance(value, int) and (value < 0 or value == 1):
            raise ValueError(f"cv {value}: use 0 (the store's split column, else a holdout) or k >= 2 folds")
        return value


class StsParams(BaseModel):
    """Params of `run: sts`: STS Spearman per layer."""

    model_config = ConfigDict(extra="forbid")
    layers: str | list[str] | None = None
    max_memory: MaxMemory = None


def sweep_layer(store: Any, layer: str, kw: dict[str, Any]) -> Result:
    """One unit of a probe sweep: `layer_sweep` restricted to `layer`."""
    from repscope.probe.protocols import layer_sweep

    return layer_sweep(store, layers=[layer], **kw)


def plan_sweep(store: Any, probes: Any, target: str = "label", layers: Any = None, **kw: Any) -> list[Unit]:
    """The units of `layer_sweep(store, probes, target, layers, **kw)`: one per pooled layer, each with the driver's
    memory budget; concatenated in plan order they are the local sweep's rows."""
    from repscope.probe.registry import PROBES
    from repscope.store import pooled_layers

    kw = {**kw, "probes": PROBES.resolve_many(probes), "target": target,
          "max_memory": driver_budget(kw.get("max_memory"))}
    return [Unit(sweep_layer, (store, layer, kw), label=f"{store.name}:{layer}")
            for layer in pooled_layers(store, layers, "probing")]


def plan(stores: list, p: ProbeParams) -> list[Unit]:
    """`run: probe` units: one per (store, layer) of the sweep."""
    return [unit for store in stores
            for unit in plan_sweep(store, p.probes, p.target, p.layers, cv=p.cv or None, test_size=p.test_size,
                                   seed=p.seed, device=p.device, max_memory=p.max_memory)]


def combine(stores: list, p: ProbeParams, parts: list[Result]) -> Result:
    """Per store: the sweep rows (plan order), concept depth, with `few_shot` a few-shot curve at the best layer and
    with `retrieval` leave-one-out label retrieval per layer (on the driver)."""
    from repscope.probe.protocols import as_table, concept_depth, few_shot_curve, retrieval_sweep
    from repscope.store import pooled_layers

    result = Result()
    start = 0
    for store in stores:
        layers = pooled_layers(store, p.layers, "probing")  # the store's units, as `plan` made them
        sweep = concat_results(parts[start:start + len(layers)])
        start += len(layers)
        result.extend(sweep)
        if p.retrieval:
            result.extend(retrieval_sweep(store, p.target, layers, device=p.device, max_memory=p.max_memory,
                                          seed=p.seed))
        table = as_table(sweep)
        if "accuracy" not in set(table["metric"]):
            continue
        result.extend(concept_depth(table, store.resolve_layers(p.layers), threshold=p.threshold, model=store.model))
        if p.few_shot:
            acc = table[table["metric"] == "accuracy"]
            best = str(acc.loc[acc["value"].idxmax(), "layer"])
            classifiers = list(dict.fromkeys(acc["probe"]))
            result.extend(few_shot_curve(store, best, classifiers, p.target, seed=p.seed, device=p.device))
    return result


def run_sts(stores: list, layers: Any = None, max_memory: int | str | None = None) -> Result:
    """STS Spearman per layer for stores of sentence pairs (columns pair, side, score)."""
    from repscope.probe.protocols import sts_sweep

    result = Result()
    for store in stores:
        result.extend(sts_sweep(store, layers=layers, max_memory=max_memory))
    return result
