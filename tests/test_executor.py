"""The one executor (repscope.distributed.executor): a step plans units, Local/Ray executors run them, the step
combines them. A toy analysis plugin defined here, with no edit outside this file, runs as a study step locally and on
one local Ray (`ray.init(num_cpus=2)`) with identical rows; nothing outside the executor branches on Ray."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pydantic import BaseModel, ConfigDict

from repscope import analyses
from repscope.analyses import AnalysisPlugin, StudyStep, register_plugin, unregister_plugin
from repscope.distributed.executor import LocalExecutor, RayExecutor, Unit, concat_results, executor_for
from repscope.errors import ConfigError
from repscope.results import Result, ResultsDB, Row

SRC = Path(__file__).resolve().parents[1] / "src" / "repscope"


# ---- the toy plugin: one unit per layer (mean row norm × scale), combine adds a cross-layer max row ------------------
class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scale: float = 1.0


def toy_layer(store, layer: str, scale: float) -> Result:
    x = store.get(layer).numpy().astype(np.float64)
    value = float(np.linalg.norm(x, axis=1).mean() * scale)
    return Result(rows=[Row(analysis="toy_exec", store=store.name, model=store.model, layer=layer,
                            layer_index=store.layers.index(layer), metric="mean_norm", value=value)])


def toy_plan(stores, p: ToyParams) -> list[Unit]:
    return [Unit(toy_layer, (s, layer, p.scale), label=layer) for s in stores for layer in s.layers]


def toy_combine(stores, p: ToyParams, parts: list[Result]) -> Result:
    out = concat_results(parts)
    best = max(out.rows, key=lambda r: r.value)
    out.rows.append(Row(analysis="toy_exec", store=best.store, model=best.model, layer=best.layer,
                        layer_index=best.layer_index, metric="max_mean_norm", value=best.value))
    return out


TOY = AnalysisPlugin("toy_exec", analyses.LEARNERS + 5,
                     steps=(StudyStep("toy_exec", None, ToyParams, plan=toy_plan, combine=toy_combine),))


@pytest.fixture()
def toy_plugin():
    register_plugin(TOY)
    try:
        yield TOY
    finally:
        unregister_plugin("toy_exec")


def _study(home: Path, ray_value: str | None, run: str = "toy_exec") -> Path:
    from repscope.store import write_store

    rng = np.random.default_rng(0)
    layers = {"first": rng.normal(size=(50, 4)), "second": 2 * rng.normal(size=(50, 6)),
              "third": rng.normal(size=(50, 3))}
    write_store(home / "runs" / "toy", layers, pd.DataFrame({"id": np.arange(50), "label": np.arange(50) % 2}),
                provenance={"model": "toy"})
    step = {"run": run, "stores": ["toy"], "params": {"scale": 2.0}, **({"ray": ray_value} if ray_value else {})}
    path = home / "study.yaml"
    path.write_text(json.dumps({"name": "exec", "workdir": "runs", "device": "cpu",
                                "stores": [{"name": "toy", "model": "toy", "data": "toy"}], "analyses": [step]}))
    return path


def _rows(home: Path) -> pd.DataFrame:
    df = ResultsDB(home / "runs" / "repscope.duckdb").frame()
    df = df[df["analysis"] == "toy_exec"]
    return df.drop(columns=["seconds", "created"]).reset_index(drop=True)


# ---- executor unit tests --------------------------------------------------------------------------------------------
def _square(x: int) -> int:
    return x * x


def test_local_executor_keeps_plan_order_and_combines():
    units = [Unit(_square, (i,)) for i in (3, 1, 2)]
    assert LocalExecutor().map(units) == [9, 1, 4]
    assert LocalExecutor().run(units, combine=sum) == 14
    assert isinstance(executor_for(None), LocalExecutor)
    ray_ex = executor_for("local", num_gpus=0.0)
    assert isinstance(ray_ex, RayExecutor) and ray_ex.address == "local"


def test_a_single_process_step_refuses_a_ray_executor(tmp_path):
    step = StudyStep("one", lambda stores, **kw: Result(), ToyParams)
    assert not step.distributable
    with pytest.raises(ConfigError, match="runs in one process"):
        step.run([], ToyParams(), RayExecutor("local"))


def test_study_ray_key_is_beside_run_and_checked_at_load(toy_plugin, tmp_path):
    from repscope.study import load_study

    path = _study(tmp_path, None)
    spec = json.loads(path.read_text())
    spec["analyses"][0]["params"]["ray"] = "auto"  # the old place: a one-line error saying where it goes
    path.write_text(json.dumps(spec))
    with pytest.raises(ConfigError, match="'ray' is a key of the analysis, not a param"):
        load_study(path)
    spec["analyses"][0]["params"].pop("ray")
    spec["analyses"][0] |= {"run": "sts", "ray": "local"}  # sts has no units to distribute
    path.write_text(json.dumps(spec))
    pytest.importorskip("ray")
    with pytest.raises(ConfigError, match=r"run: sts\): this step runs in one process; remove its ray key"):
        load_study(path)


def test_no_ray_branch_and_no_analysis_import_outside_the_executor():
    """`if ray` lives nowhere but the executor (distributed/: the executor and its Ray connection), and distributed/
    imports no analysis plugin."""
    switch = re.compile(r"\bif\s+(not\s+)?(\w+\.)?ray\b")
    offenders = [f"{p.relative_to(SRC)}:{i}" for p in SRC.rglob("*.py") if p.parent.name != "distributed"
                 for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1) if switch.search(line)]
    assert offenders == []
    plugin_pkgs = {p.name for p in analyses.PLUGINS if (SRC / p.name).is_dir()}
    assert {"probe", "similarity", "geometry", "dictionary", "compress", "disentangle", "learn"} <= plugin_pkgs
    imports = re.compile(r"^\s*(from|import)\s+repscope\.(\w+)", re.M)
    used = {(p.name, m.group(2)) for p in (SRC / "distributed").glob("*.py")
            for m in imports.finditer(p.read_text(encoding="utf-8"))}
    assert [u for u in used if u[1] in plugin_pkgs] == []
    assert not (SRC / "distributed" / "ray_sweep.py").exists()
    assert not (SRC / "distributed" / "batched_probe.py").exists()


# ---- the toy plugin, locally and on Ray ------------------------------------------------------------------------------
def test_toy_plugin_runs_locally_with_its_combine(toy_plugin, tmp_path):
    from repscope.study import run_study

    run_study(_study(tmp_path, None))
    rows = _rows(tmp_path)
    assert list(rows["metric"]) == ["mean_norm"] * 3 + ["max_mean_norm"]
    assert list(rows["layer"][:3]) == ["first", "second", "third"]  # plan order
    from repscope.store import RepStore

    store = RepStore.open(tmp_path / "runs" / "toy")
    want = [float(np.linalg.norm(store.get(k).numpy().astype(np.float64), axis=1).mean() * 2.0)
            for k in store.layers]
    assert np.allclose(rows["value"][:3], want, rtol=0, atol=1e-12)
    assert rows["value"][3] == max(want) and rows["layer"][3] == "second"


def test_toy_plugin_gives_identical_rows_on_local_ray(toy_plugin, tmp_path, monkeypatch):
    ray = pytest.importorskip("ray")
    from ray import cloudpickle  # the pickler Ray ships tasks with

    from repscope.study import run_study

    # the toy functions live in this test module, which Ray workers cannot import: ship them by value
    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    ran: list[int] = []
    real_map = RayExecutor.map

    def counting(self, units):
        ran.append(len(units))
        return real_map(self, units)

    monkeypatch.setattr(RayExecutor, "map", counting)
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        run_study(_study(tmp_path / "local", None))
        run_study(_study(tmp_path / "ray", "auto"))
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
        if started:
            ray.shutdown()
    assert ran == [3]  # the Ray study really fanned out one task per layer
    pd.testing.assert_frame_equal(_rows(tmp_path / "local"), _rows(tmp_path / "ray"))
