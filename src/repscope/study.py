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
from repscope.distributed.executor import RayParam, executor_for
from repscope.errors import ConfigError, StoreError, format_choices
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
    """One analysis step over one or more stores; `ray` (auto, local or a cluster address) runs its units on Ray."""

    model_config = ConfigDict(extra="forbid")
    run: str
    stores: list[str]
    params: dict[str, Any] = Field(default_factory=dict)
    ray: RayParam = None


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

    @field_validator("stores", mode="after")
    @classmethod
    def _unique_names(cls, stores: list[StoreSpec]) -> list[StoreSpec]:
        """At least one store, each its own folder of the workdir (a name given twice would make two specs share
        one store)."""
        if not stores:
            raise ValueError("the study names no stores; list at least one, e.g. "
                             "stores: [{name: mlp, model: digits-mlp:0, data: digits}]")
        seen: set[str] = set()
        for s in stores:
            if s.name in seen:
                raise ValueError(f"store name '{s.name}' is given twice; give each store its own name")
            seen.add(s.name)
        return stores


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
        raise ConfigError(f"{path.name}: {'.'.join(map(str, e['loc']))}: {e['msg'].removeprefix('Value error, ')}") \
            from None
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
        if not steps[a.run].distributable and a.ray is not None:  # a check, not a switch: no unit runs on Ray
            raise ConfigError(f"{path.name}: analyses.{i} (run: {a.run}): this step runs in one process; remove its "
                              "ray key")
        step_params(path.name, i, a, steps[a.run].model())
    return study


def step_params(file: str, index: int, spec: AnalysisSpec, model: type[BaseModel]) -> BaseModel:
    """`spec.params` validated by the step's params model; a one-line ConfigError naming the step, key and choices."""
    from repscope.params import field_keys

    where = f"{file}: analyses.{index} (run: {spec.run})"
    if "ray" in spec.params and "ray" not in model.model_fields:
        raise ConfigError(f"{where}: 'ray' is a key of the analysis, not a param: write it beside run:, e.g. "
                          f"{{run: {spec.run}, stores: [...], ray: auto}}")
    try:
        return model.model_validate(spec.params)
    except ValidationError as err:
        e = err.errors()[0]
        key = ".".join(map(str, e["loc"])) or "params"
        allowed = ", ".join(model.model_fields)
        if e["type"] == "extra_forbidden":
            twin = next((k for k in model.model_fields if key in field_keys(model, k)[1:]), None)
            if twin is not None:  # e.g. both `target` and its old name `label`
                raise ConfigError(f"{where}: param '{key}' is another name of '{twin}'; give only '{twin}'") from None
            raise ConfigError(f"{where}: unknown param '{key}'; allowed: {allowed}") from None
        cause = (e.get("ctx") or {}).get("error")
        if isinstance(cause, ConfigError):  # a registry lookup in a validator: its message lists the choices
            raise ConfigError(f"{where}: param '{key}': {cause}") from None
        msg = e["msg"].removeprefix("Value error, ")
        raise ConfigError(f"{where}: param '{key}': {msg} (allowed params: {allowed})") from None
    except ConfigError as err:  # a registry lookup inside a validator (unknown measure, probe, arch …)
        raise ConfigError(f"{where}: {err}") from None


def spec_record(spec: StoreSpec) -> dict[str, Any]:
    """What a study records in the provenance of a store it extracts (`study_spec`): the spec fields that decide
    the store's content, so a rerun can tell its own store from one whose model or data changed under the name."""
    return spec.model_dump(exclude={"name", "batch_size"})


def spec_matches(spec: StoreSpec, store: Any) -> bool:
    """True when the existing `store` was extracted for `spec`, or carries no study record to compare (a store
    written by hand or by `repscope extract`)."""
    recorded = store.provenance.get("study_spec")
    return not isinstance(recorded, dict) or all(recorded.get(k) == v for k, v in spec_record(spec).items())


def _changed(spec: StoreSpec, store: Any) -> str:
    recorded, want = store.provenance.get("study_spec") or {}, spec_record(spec)
    return ", ".join(f"{k} {recorded.get(k)!r} → {v!r}" for k, v in want.items() if recorded.get(k) != v)


def check_columns(file: str, study: Study, params: list[BaseModel], sources: dict[str, Any]) -> None:
    """The sample columns a step's file params name (fields marked `params.SAMPLE_COLUMN`: probe targets,
    disentanglement factors, …) checked against each of the step's stores before anything is extracted; `sources`
    maps a store name to the existing store or to the dataset it will be extracted from (both have `samples`)."""
    from repscope.params import column_fields, field_keys

    for i, (a, p) in enumerate(zip(study.analyses, params, strict=True)):
        for field in column_fields(type(p)):
            value = getattr(p, field)
            if value is None or not set(field_keys(type(p), field)) & set(a.params):  # an old key (label) counts
                continue  # a default column is the step's own business (some steps skip a missing one)
            for name in a.stores:
                have = [str(c) for c in sources[name].samples.columns]
                missing = [c for c in ([value] if isinstance(value, str) else value) if c not in have]
                if missing:
                    raise ConfigError(f"{file}: analyses.{i} (run: {a.run}): param '{field}': column '{missing[0]}' is "
                                      f"not in the samples of store '{name}'; available: {format_choices(have)}")


def run_study(path: str | Path, db: ResultsDB | None = None, *, overwrite: bool = False) -> Path:
    """Extract (or reuse/resume) every store, run every analysis, write the report; returns its path.

    The whole file (stores and every step's params) is validated before any extraction, and so is every existing
    store: one extracted for a different spec under the same name is refused (rename it in the file) unless
    `overwrite`, which re-extracts it."""
    from repscope.extract import extract
    from repscope.report.build import build_report
    from repscope.report.provenance import record_stores
    from repscope.sources.load import load_dataset, load_model
    from repscope.store import RepStore
    from repscope.store.ownership import check_report_output

    study = load_study(path)
    steps = study_steps()
    params = [step_params(Path(path).name, i, a, steps[a.run].model()) for i, a in enumerate(study.analyses)]
    base = Path(path).parent
    workdir = base / study.workdir
    check_report_output(workdir / study.report, option="report")  # refused before any extraction, not after
    stores: dict[str, RepStore] = {}
    changed: set[str] = set()
    for spec in study.stores:  # every existing store checked before anything is extracted
        try:
            existing = RepStore.open(workdir / spec.name, allow_incomplete=True)
        except StoreError:
            continue  # no store there yet
        if not spec_matches(spec, existing):
            if not overwrite:
                raise ConfigError(f"{Path(path).name}: store '{spec.name}' in '{existing.root}' was extracted for "
                                  f"another spec ({_changed(spec, existing)}); give the changed store a new name, or "
                                  "rerun with --overwrite to re-extract it")
            changed.add(spec.name)
        elif existing.manifest["progress"]["complete"]:
            stores[spec.name] = existing  # reused; an incomplete one is resumed below
    datasets = {spec.name: load_dataset(spec.data, spec.seed) for spec in study.stores if spec.name not in stores}
    check_columns(Path(path).name, study, params, {**stores, **datasets})
    db = db or ResultsDB(workdir / (study.db or "repscope.duckdb"), study=study.name)
    for spec in study.stores:
        if spec.name in stores:
            continue
        stores[spec.name] = extract(load_model(spec.model, device=study.device), datasets[spec.name],
                                    workdir / spec.name, layers=spec.layers, pooling=spec.pooling,
                                    batch_size=spec.batch_size, dtype=spec.dtype, seed=spec.seed,
                                    overwrite=spec.name in changed, extra_provenance={"study_spec": spec_record(spec)})
    record_stores(db, stores)  # provenance cards of the report
    for a, p in zip(study.analyses, params, strict=True):
        if "device" in type(p).model_fields and "device" not in a.params:
            p = p.model_copy(update={"device": study.device})  # the study's device unless the step names one
        db.record_result(steps[a.run].run([stores[s] for s in a.stores], p, executor_for(a.ray)))
    return build_report(db, workdir / study.report, study=study.name, title=f"repscope study: {study.name}")
