"""YAML studies: name stores (model + data + layers) and analyses, validated with pydantic, rerun end to end.

Example::

    name: minilm-factors
    workdir: runs
    stores:
      - {name: minilm_templates, model: minilm, data: "templates:1000", pooling: masked-mean}
      - {name: mlp_s0, model: "digits-mlp:0", data: digits}
    analyses:
      - {run: probe, stores: [minilm_templates], params: {target: topic}}
      - {run: geometry, stores: [minilm_templates]}
      - {run: compare, stores: [mlp_s0]}
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from repscope.errors import ConfigError, StoreError
from repscope.extract import extract
from repscope.report.build import build_report
from repscope.results import ResultsDB
from repscope.sources.load import load_dataset, load_model
from repscope.store import RepStore

# run name -> "module:function"; each function takes (stores: list[RepStore], db: ResultsDB, **params)
STEPS: dict[str, str] = {
    "probe": "repscope.probe.study:run",
    "sts": "repscope.probe.study:run_sts",
    "compare": "repscope.similarity.study:run",
    "geometry": "repscope.geometry.study:run",
    "sae": "repscope.dictionary.study:run",
}


class StoreSpec(BaseModel):
    """One extraction: model spec, dataset spec, layers, pooling and storage options."""

    model_config = ConfigDict(extra="forbid")
    name: str
    model: str
    data: str
    layers: str | None = None
    pooling: str = "auto"
    batch_size: int = Field(64, ge=1)
    dtype: Literal["float32", "float16", "bfloat16"] = "float32"
    seed: int = 0


class AnalysisSpec(BaseModel):
    """One analysis step over one or more stores."""

    model_config = ConfigDict(extra="forbid")
    run: str
    stores: list[str]
    params: dict[str, Any] = Field(default_factory=dict)


class Study(BaseModel):
    """A whole study."""

    model_config = ConfigDict(extra="forbid")
    name: str
    workdir: str = "runs"
    db: str | None = None
    report: str = "report.html"
    device: str = "auto"
    stores: list[StoreSpec]
    analyses: list[AnalysisSpec] = Field(default_factory=list)


def load_study(path: str | Path) -> Study:
    """Parse and validate a study YAML; errors name the field."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"study file '{path}' not found")
    try:
        study = Study.model_validate(yaml.safe_load(path.read_text(encoding="utf-8")) or {})
    except ValidationError as err:
        e = err.errors()[0]
        raise ConfigError(f"{path.name}: {'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path.name} is not valid YAML: {str(err).splitlines()[0]}") from None
    names = {s.name for s in study.stores}
    for a in study.analyses:
        if a.run not in STEPS:
            raise ConfigError(f"{path.name}: unknown analysis '{a.run}'; use one of {', '.join(STEPS)}")
        missing = [s for s in a.stores if s not in names]
        if missing:
            raise ConfigError(f"{path.name}: analysis '{a.run}' uses undefined store(s) {', '.join(missing)}")
    return study


def run_study(path: str | Path, db: ResultsDB | None = None) -> Path:
    """Extract (or reuse/resume) every store, run every analysis, write the report; returns its path."""
    study = load_study(path)
    base = Path(path).parent
    workdir = base / study.workdir
    db = db or ResultsDB(workdir / (study.db or "repscope.duckdb"), study=study.name)
    stores: dict[str, RepStore] = {}
    for spec in study.stores:
        out = workdir / spec.name
        try:
            stores[spec.name] = RepStore.open(out)
            continue
        except StoreError:
            pass
        stores[spec.name] = extract(load_model(spec.model, device=study.device), load_dataset(spec.data, spec.seed),
                                    out, layers=spec.layers, pooling=spec.pooling, batch_size=spec.batch_size,
                                    dtype=spec.dtype, seed=spec.seed)
    for a in study.analyses:
        mod, fn = STEPS[a.run].split(":")
        getattr(importlib.import_module(mod), fn)([stores[s] for s in a.stores], db, **a.params)
    return build_report(db, workdir / study.report, study=study.name, title=f"repscope study: {study.name}")
