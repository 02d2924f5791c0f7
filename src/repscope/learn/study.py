"""Study step `run: learn`: train a learner per seed, extract its latents into stores, and run the chosen analyses
(disentanglement against `factors`, a logistic probe of `target`, and with ≥ 2 seeds the RRL concatenation).

With `ray` set, each seed (train + extract, writing its own checkpoint and store) is one Ray task; the driver then
runs the analyses on the stores, so the rows equal a local run's (timings aside)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from repscope.distributed.ray_sweep import RayParam
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
    ray: RayParam = None

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


def run(stores: list, **params: Any) -> Result:
    """Train `learner` per seed on `data` (or `layer` of each store), extract, and analyse the latents; with `ray`,
    one Ray task per seed (`out_dir`, or the temporary folder, must then be reachable by every worker)."""
    from repscope.sources.load import load_dataset

    p = LearnParams(**params)
    res = Result()
    sources = [(load_dataset(p.data), p.data.split(":")[0].split("/")[-1])] if p.data is not None else \
        [(s, s.name) for s in stores]
    with tempfile.TemporaryDirectory(prefix="repscope-learn-") as tmp:
        root = Path(p.out_dir) if p.out_dir else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        for source, label in sources:
            names = [f"{p.learner}_{label}_s{seed}" for seed in p.seeds]
            if p.ray:
                from repscope.distributed.ray_sweep import ray_learn_seeds
                from repscope.store import RepStore

                for part in ray_learn_seeds(p, source, root, names, address=p.ray):
                    res.extend(part)
                learned = [RepStore.open(root / name) for name in names]
            else:
                learned = [train_seed(p, seed, source, root, name, res) for seed, name in zip(p.seeds, names,
                                                                                                strict=True)]
            res.extend(analyse(learned, factors=p.factors, metrics=p.metrics, target=p.target, device=p.device))
    return res


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
        from repscope.probe.study import run as probe_run

        res.extend(probe_run(learned, ["logistic"], target=target, device=device))
    return res
