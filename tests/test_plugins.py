"""The analysis-plugin contract: a toy plugin registered from inside the test appears, with no other edit, in the CLI,
in study files (with params validated on load), in the report (in pipeline order) and in the demo; and the declared
list is the only package list the spine iterates."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import typer
from pydantic import BaseModel, ConfigDict, Field
from typer.testing import CliRunner

from repscope import analyses
from repscope.analyses import AnalysisPlugin, StudyStep, register_plugin, unregister_plugin
from repscope.errors import ConfigError
from repscope.report.sections import Section
from repscope.results import Result, ResultsDB
from repscope.store import RepStore, write_store

SRC = Path(__file__).parents[1] / "src" / "repscope"


# ---- the toy plugin: mean row norm per layer, times a scale ---------------------------------------------------
class ToyParams(BaseModel):
    model_config = ConfigDict(extra="forbid")
    scale: float = Field(1.0, gt=0)
    layers: str | list[str] | None = None


def toy_norms(store, scale: float = 1.0, layers=None) -> Result:
    """Mean Euclidean row norm of each layer × scale (a pure analysis: returns a Result, takes no DB)."""
    result = Result()
    for layer in store.resolve_layers(layers):
        x = store.get(layer).numpy()
        result.add("toy", "mean_norm", float(np.linalg.norm(x, axis=1).mean() * scale), layer=layer,
                   layer_index=store.layers.index(layer), store=store.name, params={"scale": scale})
    return result


def toy_step(stores, scale: float = 1.0, layers=None) -> Result:
    out = Result()
    for s in stores:
        out.extend(toy_norms(s, scale, layers))
    return out


def toy_register(app: typer.Typer) -> None:
    @app.command("toy-norms")
    def toy_cmd(store: Path, scale: float = 1.0, db: Path = typer.Option(None, "--db")) -> None:
        """Mean row norm per layer (toy plugin).

        Example: repscope toy-norms runs/store --scale 2
        """
        result = toy_norms(RepStore.open(store), scale)
        ResultsDB(db).record_result(result)
        typer.echo(f"recorded {len(result)} toy rows")


def toy_sections(frame: pd.DataFrame, artifacts: list[dict]) -> tuple[list[Section], set[str]]:
    d = frame[frame["analysis"] == "toy"] if len(frame) else frame
    if not len(d):
        return [], set()
    table = d[["store", "layer", "layer_index", "value"]].sort_values("layer_index")
    return [Section(title="Toy plugin: mean norms", analysis="toy", tables=[table])], {"toy"}


def toy_findings(frame: pd.DataFrame, artifacts: list[dict]) -> list:
    """Per store, the layer with the largest mean norm (no `group`: listed under the plugin's title)."""
    from repscope.report.findings import Finding

    d = frame[(frame["analysis"] == "toy") & (frame["metric"] == "mean_norm")] if len(frame) else frame
    out = []
    for store, g in d.groupby("store", sort=True) if len(d) else []:
        top = g.loc[g["value"].idxmax()]
        out.append(Finding("toy", f"{store}: largest mean norm at {top['layer']} ({top['value']:.4f})",
                           store=str(store), layer=str(top["layer"]), data={"value": float(top["value"])}))
    return out


def toy_demo(ctx) -> None:
    for store in ctx.stores.values():
        ctx.db.record_result(toy_norms(store, 2.0))


TOY = AnalysisPlugin("toy", analyses.DICTIONARIES + 5, cli=toy_register,
                     steps=(StudyStep("toy", toy_step, ToyParams),), report=toy_sections, demo=toy_demo,
                     findings=toy_findings, title="Toy analyses")


@pytest.fixture()
def toy_plugin():
    register_plugin(TOY)
    try:
        yield TOY
    finally:
        unregister_plugin("toy")


@pytest.fixture()
def store(tmp_path) -> RepStore:
    rng = np.random.default_rng(0)
    layers = {"b.first": rng.normal(size=(40, 3)), "a.second": 3 * rng.normal(size=(40, 5))}  # model order ≠ sorted
    return write_store(tmp_path / "runs" / "toy_store", layers, pd.DataFrame({"id": np.arange(40),
                                                                             "label": np.arange(40) % 2}))


def _norms(store: RepStore, scale: float) -> dict[str, float]:
    return {n: float(np.linalg.norm(store.get(n).numpy(), axis=1).mean() * scale) for n in store.layers}


# ---- the declared list ----------------------------------------------------------------------------------------
def test_declared_plugins_in_pipeline_order_and_unique():
    names = [p.name for p in analyses.plugins()]
    assert names[:5] == ["stores", "probe", "similarity", "geometry", "dictionary"]
    assert len(set(names)) == len(names)
    orders = [p.order for p in analyses.plugins()]
    assert orders == sorted(orders)
    later = {p.name: p.order for p in analyses.plugins()}
    if "disentangle" in later:  # newer packages keep their declared pipeline positions
        assert later["disentangle"] == analyses.DISENTANGLEMENT > analyses.DICTIONARIES
    steps = list(analyses.study_steps())
    assert steps[:6] == ["probe", "sts", "compare", "geometry", "sae", "quantize"]
    assert len(set(steps)) == len(steps)
    for p in analyses.PLUGINS:  # every lazy reference resolves
        for ref in (p.cli, p.report, p.demo, p.findings):
            assert ref is None or callable(analyses.resolve(ref))
        for step in p.steps:  # a step runs as fn(stores, **params), or plans units (+ an optional combine)
            assert callable(analyses.resolve(step.plan if step.distributable else step.fn))
            assert step.combine is None or callable(analyses.resolve(step.combine))
            assert step.model().model_config.get("extra") == "forbid"
    with pytest.raises(ConfigError, match="already registered"):
        register_plugin(analyses.PLUGINS[1])
    with pytest.raises(ConfigError, match="unknown analysis plugin 'nope'"):
        unregister_plugin("nope")


def test_no_other_package_list_in_the_spine():
    """cli.py, study.py, demo.py and report/build.py iterate the plugin list; none keeps its own."""
    for rel in ("cli.py", "study.py", "demo.py", "report/build.py"):
        text = (SRC / rel).read_text(encoding="utf-8")
        assert not re.search(r"^(PLUGINS|STEPS)\s*[:=]", text, re.M), rel
        assert '"repscope.probe"' not in text and '"repscope.dictionary"' not in text, rel
    r = subprocess.run(["grep", "-rlE", r"^(PLUGINS|STEPS)\s*(:|=)", str(SRC)], capture_output=True, text=True)
    assert r.stdout.split() == [str(SRC / "analyses.py")]


def test_import_of_the_plugin_module_is_cheap():
    code = "import sys, repscope.analyses; print(sorted(m for m in ('torch', 'pandas', 'duckdb') if m in sys.modules))"
    r = subprocess.run([__import__("sys").executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0 and r.stdout.strip() == "[]", r.stdout + r.stderr


# ---- the toy plugin shows up everywhere -----------------------------------------------------------------------
def test_toy_plugin_in_cli_help_and_runs(toy_plugin, store, tmp_path):
    from repscope.cli import build_app

    runner = CliRunner()
    r = runner.invoke(build_app(), ["--help"])
    assert r.exit_code == 0 and "toy-norms" in r.output and "probe" in r.output and "compare" in r.output
    db = tmp_path / "r.duckdb"
    r = runner.invoke(build_app(), ["toy-norms", str(store.root), "--scale", "2", "--db", str(db)])
    assert r.exit_code == 0, r.output
    got = ResultsDB(db).frame("toy").set_index("layer")["value"]
    assert got.to_dict() == pytest.approx(_norms(store, 2.0))
    unregister_plugin("toy")
    try:
        assert "toy-norms" not in runner.invoke(build_app(), ["--help"]).output
    finally:
        register_plugin(TOY)


def test_toy_plugin_in_a_study_and_its_params_are_validated(toy_plugin, store, tmp_path):
    from repscope.study import load_study, run_study

    cfg = tmp_path / "s.yaml"
    cfg.write_text("name: toy\nstores: [{name: toy_store, model: unused, data: unused}]\n"
                   "analyses: [{run: toy, stores: [toy_store], params: {scale: 3}}]\n")
    report = run_study(cfg)  # the store exists already: reused, nothing extracted
    got = ResultsDB(tmp_path / "runs" / "repscope.duckdb").frame("toy").set_index("layer")["value"]
    assert got.to_dict() == pytest.approx(_norms(store, 3.0))
    assert "Toy plugin: mean norms" in report.read_text(encoding="utf-8")
    cfg.write_text(cfg.read_text().replace("scale: 3", "scael: 3"))
    with pytest.raises(ConfigError, match=r"analyses\.0 \(run: toy\): unknown param 'scael'; allowed: scale, layers"):
        load_study(cfg)
    cfg.write_text(cfg.read_text().replace("scael: 3", "scale: -1"))
    with pytest.raises(ConfigError, match=r"param 'scale': Input should be greater than 0"):
        load_study(cfg)


def test_toy_section_in_the_report_in_pipeline_order(toy_plugin, store, tmp_path):
    from repscope.probe.protocols import layer_sweep
    from repscope.report.build import build_report

    db = ResultsDB(tmp_path / "r.duckdb")
    db.record_result(toy_norms(store))
    db.record_result(layer_sweep(store, ["nb"], "label", device="cpu"))
    db.record("zzz_unclaimed", "value", 1.0, layer="b.first")  # no plugin claims it: generic section, last
    html = build_report(db, tmp_path / "report.html").read_text(encoding="utf-8")
    titles = re.findall(r"<h2>(.*?)</h2>", html)
    assert titles[:2] == ["Findings", "Probes: score per layer"] and "Toy plugin: mean norms" in titles
    assert titles.index("Probes: score per layer") < titles.index("Toy plugin: mean norms") < titles.index(
        "zzz_unclaimed")
    # tables are in model order (layer_index), not alphabetical: in the probe section and in the toy section
    for title in ("Probes: score per layer", "Toy plugin: mean norms"):
        sec = html[html.index(f"<h2>{title}</h2>"):]
        assert sec.index("<td>b.first</td>") < sec.index("<td>a.second</td>"), title
    # its findings hook adds a line to the overview, under its family title, after the probes' (pipeline order)
    norms = _norms(store, 1.0)
    top = max(norms, key=norms.get)
    overview = html[html.index("<h2>Findings</h2>"):html.index("<h2>Probes: score per layer</h2>")]
    line = f"toy_store: largest mean norm at {top} ({norms[top]:.4f})"
    assert line in overview
    assert overview.index("<h3>Where each target is decodable</h3>") < overview.index("<h3>Toy analyses</h3>") \
        < overview.index(line)
    assert re.search(r'<span class="fam">Toy analyses <span class="count">\(1\)</span>', html)  # its nav title


def test_toy_plugin_demo_step(toy_plugin, store, tmp_path, monkeypatch):
    from repscope import demo

    def tiny_stores(ctx):
        ctx.stores["toy_store"] = store

    monkeypatch.setattr(demo, "default_stores", tiny_stores)
    report = demo.run_demo(tmp_path / "demo", device="cpu", steps=["toy"])
    got = ResultsDB(tmp_path / "demo" / "repscope.duckdb").frame("toy").set_index("layer")["value"]
    assert got.to_dict() == pytest.approx(_norms(store, 2.0))
    assert "Toy plugin: mean norms" in report.read_text(encoding="utf-8")
    with pytest.raises(Exception, match="unknown demo step"):
        demo.run_demo(tmp_path / "demo", device="cpu", steps=["nope"])


def test_layer_order_comes_from_layer_index_with_natural_fallback():
    from repscope.report.sections import layer_order

    df = pd.DataFrame({"layer": ["zeta", "alpha", "layer.10", "layer.2", "alpha"],
                       "layer_index": [0, 1, None, None, 7],  # recorded positions first (smallest wins) …
                       "layer_b": ["alpha", None, None, "zeta", None], "layer_b_index": [3, None, None, 2, None]})
    assert layer_order(df) == ["zeta", "alpha", "layer.2", "layer.10"]  # … then old rows in natural order
    assert layer_order(df, "layer_b") == ["zeta", "alpha"]
    assert layer_order(["layer.10", "embeddings", "layer.2"]) == ["embeddings", "layer.2", "layer.10"]


# ---- registered names reach the study steps and the CLI at run time ------------------------------------------
def test_a_measure_registered_at_run_time_is_accepted_by_compare(store, tmp_path):
    import torch

    from repscope.cli import build_app
    from repscope.similarity.registry import MEASURES, register
    from repscope.study import load_study

    def toy_mean_cosine(x, y):
        """Cosine of the two layers' mean Gram rows (toy)."""
        gx, gy = (x @ x.T).mean(0), (y @ y.T).mean(0)
        return float(torch.dot(gx, gy) / (gx.norm() * gy.norm()))

    cfg = tmp_path / "s.yaml"
    cfg.write_text("name: t\nstores: [{name: toy_store, model: m, data: d}]\n"
                   "analyses: [{run: compare, stores: [toy_store], params: {measures: [cka, toy_mean_cosine]}}]\n")
    with pytest.raises(ConfigError, match="unknown similarity measure 'toy_mean_cosine'"):
        load_study(cfg)
    register(toy_mean_cosine, name="toy_mean_cosine", invariant_to=("ortho", "isotropic_scaling"))
    try:
        study = load_study(cfg)
        assert study.analyses[0].run == "compare"
        db = tmp_path / "r.duckdb"
        r = CliRunner().invoke(build_app(), ["compare", str(store.root), "--measure", "toy_mean_cosine", "--db",
                                             str(db), "--device", "cpu"])
        assert r.exit_code == 0, r.output
        got = ResultsDB(db).frame("similarity")
        assert set(got["metric"]) == {"toy_mean_cosine"} and len(got) == 4
        x = {n: torch.as_tensor(store.get(n).numpy(), dtype=torch.float64) for n in store.layers}
        row = got[(got["layer"] == "b.first") & (got["layer_b"] == "a.second")]
        assert row["value"].item() == pytest.approx(toy_mean_cosine(x["b.first"], x["a.second"]), abs=1e-6)
    finally:
        MEASURES.unregister("toy_mean_cosine")


def test_a_probe_registered_at_run_time_is_accepted_by_the_probe_step(store, tmp_path):
    from sklearn.neighbors import NearestCentroid

    from repscope.probe.registry import PROBES, register
    from repscope.study import run_study

    cfg = tmp_path / "s.yaml"
    cfg.write_text("name: t\nstores: [{name: toy_store, model: m, data: d}]\n"
                   "analyses: [{run: probe, stores: [toy_store], params: {probes: [nb, toy_centroid], cv: 3}}]\n")
    with pytest.raises(ConfigError, match="unknown probe 'toy_centroid'"):
        run_study(cfg)
    register("toy_centroid", lambda device="auto", **kw: NearestCentroid(**kw), paper="test toy")
    try:
        run_study(cfg)
        rows = ResultsDB(tmp_path / "runs" / "repscope.duckdb").frame("probe")
        assert {p["probe"] for p in rows["params"]} == {"nb", "toy_centroid"}
        # nearest centroid scored on the same stratified 3-fold split as an independent sklearn run
        from sklearn.model_selection import StratifiedKFold, cross_val_score

        y = store.samples["label"].to_numpy()
        for layer in store.layers:
            x = store.get(layer).numpy()
            want = cross_val_score(NearestCentroid(), x, y, cv=StratifiedKFold(3, shuffle=True, random_state=0))
            got = rows[(rows["layer"] == layer) & (rows["metric"] == "accuracy")
                       & rows["params"].map(lambda p: p["probe"] == "toy_centroid")]["value"]
            assert got.item() == pytest.approx(want.mean(), abs=1e-9)
    finally:
        PROBES.unregister("toy_centroid")


def test_toy_names_show_in_cli_help_study_report_and_estimator_checks(tmp_path):
    """A toy similarity measure and a toy regression probe, registered here, reach `--help`, a study, the report
    and the generic checks (declared invariances; scikit-learn's estimator checks) with no other edit."""
    import torch
    from sklearn.linear_model import LinearRegression
    from sklearn.utils.estimator_checks import check_estimator

    from repscope.cli import build_app
    from repscope.probe.registry import PROBES
    from repscope.probe.registry import register as register_probe
    from repscope.similarity.registry import MEASURES
    from repscope.similarity.registry import register as register_measure
    from repscope.study import run_study
    from repscope.testing import check_similarity_properties

    def toy_gram_trace(x, y):
        """Cosine of the two Gram matrices' diagonals (toy)."""
        gx, gy = (x * x).sum(1), (y * y).sum(1)
        return float(torch.dot(gx, gy) / (gx.norm() * gy.norm()))

    runner = CliRunner(env={"COLUMNS": "240"})
    assert "toy_gram_trace" not in runner.invoke(build_app(), ["compare", "--help"]).output
    assert "toy_ols" not in runner.invoke(build_app(), ["probe", "--help"]).output
    register_measure(toy_gram_trace, name="toy_gram_trace",
                     invariant_to=("ortho", "isotropic_scaling", "permutation"))
    register_probe("toy_ols", lambda device="auto", **kw: LinearRegression(**kw), task="regression",
                   paper="test toy")
    try:
        assert "toy_gram_trace" in runner.invoke(build_app(), ["compare", "--help"]).output
        assert "toy_ols" in runner.invoke(build_app(), ["probe", "--help"]).output
        assert check_similarity_properties(MEASURES.get("toy_gram_trace")) == []
        check_estimator(PROBES.get("toy_ols")())
        rng = np.random.default_rng(1)
        x = rng.normal(size=(60, 4))
        samples = pd.DataFrame({"id": np.arange(60), "label": np.arange(60) % 2,
                                "size": x @ np.array([1.0, -2.0, 0.5, 0.0]) + 0.01 * rng.normal(size=60)})
        write_store(tmp_path / "runs" / "reg_store", {"h": x, "h2": np.tanh(x)}, samples)
        cfg = tmp_path / "s.yaml"
        cfg.write_text("name: t\nstores: [{name: reg_store, model: m, data: d}]\nanalyses:\n"
                       "  - {run: probe, stores: [reg_store], params: {probes: [toy_ols], target: size, cv: 3}}\n"
                       "  - {run: compare, stores: [reg_store], params: {measures: [toy_gram_trace]}}\n")
        html = run_study(cfg).read_text()
        assert "toy_ols" in html and "toy_gram_trace" in html
        rows = ResultsDB(tmp_path / "runs" / "repscope.duckdb").frame()
        r2 = rows[(rows["analysis"] == "probe") & (rows["metric"] == "r2") & (rows["layer"] == "h")]["value"]
        assert r2.item() > 0.99  # a linear target on the raw layer: regression, not a classifier
        sim = rows[(rows["metric"] == "toy_gram_trace") & (rows["layer"] == "h") & (rows["layer_b"] == "h2")]
        xt = torch.as_tensor(x)
        assert sim["value"].item() == pytest.approx(toy_gram_trace(xt, torch.tanh(xt)), abs=1e-6)
    finally:
        MEASURES.unregister("toy_gram_trace")
        PROBES.unregister("toy_ols")
