"""Study step `run: learn`: train a learner per seed, extract its latents into stores, and run the chosen analyses
(disentanglement against `factors`, a logistic probe of `target`, and with ≥ 2 seeds the RRL concatenation).

Each seed (train + extract, writing its own checkpoint and store) is one unit, which any executor
(`repscope.distributed.executor`: local or Ray) runs; the driver then runs the analyses on the stores (`combine`), so
Ray rows equal local ones (timings aside)."""

from __future__ import annotations

import atexit
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from repscope.distributed.executor import LocalExecutor, Unit
from repscope.learn.registry import DEFAULT_EPOCHS
from repscope.params import PositiveFloat
from repscope.results import Result

ANALYSIS = "learn"


class LearnParams(BaseModel):
    """Params of `run: learn`; `data` is a dataset spec (default: train on `layer` of each study store)."""

    model_config = ConfigDict(extra="forbid")
    learner: str
    data: str | None = None
    layer: str | None = None
    latents: int | None = Field(None, ge=1)
    epochs: int = Field(DEFAULT_EPOCHS, ge=0)  # one default for the CLI, studies and the learner classes
    batch_size: int = Field(128, ge=2)
    lr: PositiveFloat = 1e-3
    hidden: int = Field(256, ge=1)
    seeds: list[int] = Field(default_factory=lambda: [0], min_length=1)
    options: dict[str, Any] = Field(default_factory=dict)
    factors: list[str] | None = None
    metrics: list[str] = Field(default_factory=lambda: ["mig", "infomec"])
    target: str | None = None
    out_dir: str | None = None
    device: str = "auto"

    @field_validator("learner")
    @classmethod
    def _known(cls, value: str) -> str:
        from repscope.learn.registry import learner_class

        return learner_class(value).KIND

    @field_validator("factors", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @model_validator(mode="after")
    def _buildable(self) -> LearnParams:
        """Construct the learner now, so a bad option fails when the study loads."""
        from repscope.errors import ConfigError

        if self.data is None and self.layer is None:
            raise ConfigError("give data (a dataset spec) or layer (a layer of the study stores) to train on")
        make_learner(self, self.seeds[0])
        return self


def make_learner(p: Any, seed: int) -> Any:
    """The configured learner for one seed (unknown options: one-line ConfigError)."""
    import inspect

    from repscope.errors import ConfigError
    from repscope.learn.base import Learner
    from repscope.learn.registry import learner_class

    cls = learner_class(p.learner)
    allowed = (set(inspect.signature(cls.__init__).parameters) | set(inspect.signature(Learner.__init__).parameters)) \
        - {"self", "kw", "device", "progress", "seed", "epochs", "batch_size", "lr", "hidden", "latents"}
    bad = [k for k in p.options if k not in allowed]
    if bad:
        raise ConfigError(f"unknown {cls.KIND} option '{bad[0]}'; choose from {', '.join(sorted(allowed))}")
    kw = {"epochs": p.epochs, "batch_size": p.batch_size, "lr": p.lr, "hidden": p.hidden, "seed": seed,
          "device": p.device, "progress": False, **p.options}
    if p.latents is not None:
        kw["latents"] = p.latents
    return cls(**kw)


def train_seed(p: LearnParams, seed: int, source: Any, root: Path, name: str, res: Result) -> Any:
    """Train one seed (checkpoint `root/<name>.safetensors`), record its training rows in `res`, and return the
    store `root/<name>` of its latents."""
    from repscope.extract import extract
    from repscope.learn.source import learner_adapter
    from repscope.store import write_store

    model = make_learner(p, seed)
    t0 = time.perf_counter()
    model.fit(source, layer=p.layer)
    sec = time.perf_counter() - t0
    model.save(root / f"{name}.safetensors")
    params = {"learner": model.KIND, "seed": seed, "epochs": model.epochs, "latents": model.latents,
              "data": p.data or p.layer, **p.options}
    n = len(source) if p.data is not None else int(source.n_rows)
    for metric, value in (("final_loss", model.history_[-1] if model.history_ else float("nan")),
                          ("first_loss", model.history_[0] if model.history_ else float("nan")),
                          ("samples_per_s", n * model.epochs / sec if sec > 0 else 0.0)):
        res.add(ANALYSIS, metric, float(value), store=name, model=model.KIND, layer="latent", layer_index=0,
                params=params, seconds=sec)
    if p.data is not None:  # the learner as a model source, through the normal extraction path
        model.repscope_name = name
        return extract(learner_adapter(model, device=p.device), source, root / name, layers="latent",
                       progress=False, seed=seed, overwrite=True)
    return write_store(root / name, {"latent": model.transform(source, layer=p.layer)}, samples=source.samples,
                       provenance={"model": name, "learner": model.KIND, "trained_on": p.layer})


class DatasetRef:
    """A dataset by its `load_dataset` spec, loaded once per process: the loaded data does not pickle, so a Ray
    worker re-reads the spec (files absolute) while local units share the one copy."""

    def __init__(self, spec: str, dataset: Any = None):
        self.spec = spec
        self._dataset = dataset

    def load(self) -> Any:
        """The dataset (read on first use here)."""
        if self._dataset is None:
            from repscope.sources.load import load_dataset

            self._dataset = load_dataset(self.spec)
        return self._dataset

    def __getstate__(self) -> dict[str, Any]:
        return {"spec": self.spec, "_dataset": None}


_TEMP_ROOTS: set[str] = set()  # folders `plan` made for stores without `out_dir`; `combine` (or exit) removes them


def _remove_temp_root(root: str) -> None:
    if root in _TEMP_ROOTS:
        _TEMP_ROOTS.discard(root)
        shutil.rmtree(root, ignore_errors=True)


def _learn_seed(p: LearnParams, seed: int, source: Any, root: str, name: str) -> tuple[Result, Any]:
    """One unit of `run: learn`: train one seed and write its checkpoint `root/<name>.safetensors` and the store
    `root/<name>` of its latents; returns (the training rows, the store). `source` is a study store (`p.layer`) or
    a `DatasetRef` (`p.data`)."""
    res = Result()
    src = source.load() if isinstance(source, DatasetRef) else source
    store = train_seed(p, seed, src, Path(root), name, res)
    return res, store


def _sources(stores: list, p: LearnParams) -> list[tuple[Any, str]]:
    """(source, label) pairs: the dataset `p.data` names (once), else each study store."""
    if p.data is None:
        return [(s, s.name) for s in stores]
    from repscope.sources.load import load_dataset

    ds = load_dataset(p.data)  # here: a bad spec fails before any unit, and `.spec` is the canonical one
    return [(DatasetRef(ds.spec or p.data, ds), p.data.split(":")[0].split("/")[-1])]


def plan(stores: list, p: LearnParams) -> list[Unit]:
    """`run: learn` units: one per (source, seed), each writing `root/<learner>_<source>_s<seed>` (store and
    checkpoint) under `out_dir`, or a temporary folder `combine` removes; with Ray that folder must be reachable by
    every worker (it is passed as an absolute path)."""
    if p.out_dir:
        root = Path(p.out_dir).resolve()
        root.mkdir(parents=True, exist_ok=True)
    else:
        root = Path(tempfile.mkdtemp(prefix="repscope-learn-")).resolve()
        _TEMP_ROOTS.add(str(root))
        atexit.register(_remove_temp_root, str(root))  # a failed unit never reaches `combine`
    return [Unit(_learn_seed, (p, seed, source, str(root), f"{p.learner}_{label}_s{seed}"), label=f"{label}:s{seed}")
            for source, label in _sources(stores, p) for seed in p.seeds]


def combine(stores: list, p: LearnParams, parts: list[tuple[Result, Any]]) -> Result:
    """Per source: the seeds' training rows in seed order, then the analyses of their stores (on the driver)."""
    res = Result()
    n = len(p.seeds)
    try:
        for start in range(0, len(parts), n):
            group = parts[start:start + n]
            for rows, _ in group:
                res.extend(rows)
            res.extend(analyse([store for _, store in group], factors=p.factors, metrics=p.metrics,
                               target=p.target, device=p.device))
    finally:
        if parts and not p.out_dir:
            _remove_temp_root(str(Path(parts[0][1].root).parent))
    return res


def run(stores: list, **params: Any) -> Result:
    """Train `learner` per seed on `data` (or `layer` of each store), extract, and analyse the latents: `plan` run
    in this process, then `combine` (a study runs the step on its executor)."""
    p = LearnParams(**params)
    return combine(stores, p, LocalExecutor().map(plan(stores, p)))


def analyse(learned: list, *, factors: list[str] | None, target: str | None, metrics: list[str] | None = None,
            device: str = "auto") -> Result:
    """Disentanglement (with `factors`) and probe accuracy (with `target`; RRL concatenation for ≥ 2 stores)."""
    res = Result()
    if factors:
        from repscope.disentangle.store import disentangle_store

        for s in learned:
            res.extend(disentangle_store(s, factors, metrics=metrics or ["mig", "infomec"], max_rows=5000))
    if target and len(learned) >= 2:
        from repscope.probe.protocols import concat_stores

        res.extend(concat_stores(learned, "latent", target=target, device=device))
    elif target:
        from repscope.analyses import study_steps
        from repscope.probe.study import ProbeParams

        res.extend(study_steps()["probe"].run(learned, ProbeParams(probes=["logistic"], target=target, device=device)))
    return res
