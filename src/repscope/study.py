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

from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from repscope.analyses import study_steps
from repscope.errors import ConfigError, StoreError
from repscope.results import ResultsDB

# `run:` names are the study steps declared by the analysis plugins (repscope.analyses.PLUGINS); each step has a
# pydantic params model, checked in `load_study` before anything is extracted.


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

    @field_validator("name")
    @classmethod
    def _plain_name(cls, v: str) -> str:
        """A store name is one folder inside the workdir: no path separators, '..' or absolute paths."""
        if v.strip() in ("", ".", "..") or any(c in v for c in "/\\\0") or Path(v).is_absolute():
            raise ValueError(f"store name '{v}' must be a plain folder name inside the workdir (no '/', '\\' or "
                             "'..'); rename it, e.g. minilm_templates")
        return v


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
    except UnicodeDecodeError as err:
        raise ConfigError(f"study file '{path}' is not UTF-8 text (byte at offset {err.start}); re-save it with UTF-8 "
                          "encoding") from None
    except ValidationError as err:
        e = err.errors()[0]
        raise ConfigError(f"{path.name}: {'.'.join(map(str, e['loc']))}: {e['msg']}") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path.name} is not valid YAML: {str(err).splitlines()[0]}") from None
    names = {s.name for s in study.stores}
    steps = study_steps()
    for i, a in enumerate(study.analyses):
        if a.run not in steps:
            raise ConfigError(f"{path.name}: unknown analysis '{a.run}'; use one of {', '.join(steps)}")
        missing = [s for s in a.stores if s not in names]
        if missing:
            raise ConfigError(f"{path.name}: analysis '{a.run}' uses undefined store(s) {', '.join(missing)}")
        step_params(path.name, i, a, steps[a.run].model())
    return study


def step_params(file: str, index: int, spec: AnalysisSpec, model: type[BaseModel]) -> BaseModel:
    """`spec.params` validated by the step's params model; a one-line ConfigError naming the step, key and choices."""
    where = f"{file}: analyses.{index} (run: {spec.run})"
    try:
        return model.model_validate(spec.params)
    except ValidationError as err:
        e = err.errors()[0]
        key = ".".join(map(str, e["loc"])) or "params"
        allowed = ", ".join(model.model_fields)
        if e["type"] == "extra_forbidden":
            raise ConfigError(f"{where}: unknown param '{key}'; allowed: {allowed}") from None
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError):  # a registry lookup in a validator: its message lists the choices
            raise ConfigError(f"{where}: param '{key}': {cause}") from None
        msg = e["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: param '{key}': {msg} (allowed params: {allowed})") from None
    except ConfigError as err:  # a registry lookup inside a validator (unknown measure, probe, arch …)
        raise ConfigError(f"{where}: {err}") from None


def run_study(path: str | Path, db: ResultsDB | None = None) -> Path:
    """Extract (or reuse/resume) every store, run every analysis, write the report; returns its path.

    The whole file (stores and every step's params) is validated before any extraction."""
    from repscope.extract import extract
    from repscope.report.build import build_report
    from repscope.report.provenance import record_stores
    from repscope.sources.load import load_dataset, load_model
    from repscope.store import RepStore

    study = load_study(path)
    steps = study_steps()
    params = [step_params(Path(path).name, i, a, steps[a.run].model()) for i, a in enumerate(study.analyses)]
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
    record_stores(db, stores)  # provenance cards of the report
    for a, p in zip(study.analyses, params, strict=True):
        if "device" in type(p).model_fields and "device" not in a.params:
            p = p.model_copy(update={"device": study.device})  # the study's device unless the step names one
        db.record_result(steps[a.run].run([stores[s] for s in a.stores], p))
    return build_report(db, workdir / study.report, study=study.name, title=f"repscope study: {study.name}")
