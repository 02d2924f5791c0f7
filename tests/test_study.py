"""YAML studies: validation errors name the field; a small study runs end to end and reruns from its stores."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest

from repscope.errors import ConfigError
from repscope.results import ResultsDB
from repscope.study import load_study, run_study

STUDY = """
name: tiny
workdir: runs
stores:
  - {name: mlp_s0, model: "digits-mlp:0", data: "digits@600"}
  - {name: mlp_s1, model: "digits-mlp:1", data: "digits@600"}
analyses:
  - {run: probe, stores: [mlp_s0], params: {probes: "logistic,nb", target: label}}
  - {run: geometry, stores: [mlp_s0], params: {measures: "twonn,rank"}}
  - {run: compare, stores: [mlp_s0, mlp_s1], params: {measures: "linear_cka"}}
"""


def test_study_runs_end_to_end_and_reuses_stores(tmp_path):
    cfg = tmp_path / "study.yaml"
    cfg.write_text(STUDY)
    report = run_study(cfg)
    assert report.is_file() and report.stat().st_size > 100_000
    df = ResultsDB(tmp_path / "runs" / "repscope.duckdb").frame()
    assert set(df["study"]) == {"tiny"}
    assert {"probe", "geometry", "similarity"} <= set(df["analysis"])
    cka = df[(df["analysis"] == "similarity") & (df["metric"] == "linear_cka")]
    assert len(cka) == 25  # 5 × 5 layers
    assert cka["value"].between(0, 1 + 1e-9).all()
    acc = df[(df["analysis"] == "probe") & (df["metric"] == "accuracy")]
    assert acc["value"].max() > 0.9  # a trained digits MLP is linearly decodable
    mtime = (tmp_path / "runs" / "mlp_s0" / "manifest.json").stat().st_mtime
    run_study(cfg)  # second run reuses the complete stores
    assert (tmp_path / "runs" / "mlp_s0" / "manifest.json").stat().st_mtime == mtime


@pytest.mark.parametrize("text,msg", [
    ("name: x\nstores: [{name: a, model: m, data: d}]\nanalyses: [{run: nope, stores: []}]", "unknown analysis 'nope'"),
    ("name: x\nstores: [{name: a, model: m}]", r"stores\.0\.data: Field required"),
    ("name: x\nstores: [{name: a, model: m, data: d}]\nanalyses: [{run: probe, stores: [ghost]}]",
     "undefined store.*ghost"),
    ("name: x\nstores: []", "stores: the study names no stores; list at least one"),
    ("name: x\nstores: [{name: a, model: m, data: d}, {name: a, model: m2, data: d}]",
     "stores: store name 'a' is given twice"),
    ("name: x\nstores: [}", "not valid YAML"),
])
def test_study_validation_errors(tmp_path, text, msg):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        load_study(cfg)


BAD_PARAM = """
name: typo
stores: [{name: mlp_s0, model: "digits-mlp:0", data: "digits@600"}]
analyses:
  - {run: geometry, stores: [mlp_s0]}
  - {run: compare, stores: [mlp_s0], params: %s}
"""


@pytest.mark.parametrize("params,msg", [
    ("{measure: cka}", r"^s\.yaml: analyses\.1 \(run: compare\): unknown param 'measure'; allowed: measures, layers, "
                       r"layers_b, max_rows, seed, device, max_memory, pair_by, unpaired, streaming$"),
    ("{measures: cka, max_rows: many}", r"analyses\.1 \(run: compare\): param 'max_rows': .*integer"),
    ("{measures: [cka, nope]}", r"analyses\.1 \(run: compare\): param 'measures': unknown similarity measure 'nope'; "
                                r"choose one of linear_cka"),
])
def test_bad_step_params_fail_before_any_extraction(tmp_path, params, msg):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(BAD_PARAM % params)
    (tmp_path / "ok.yaml").write_text(BAD_PARAM % "{measures: cka}")
    load_study(tmp_path / "ok.yaml")  # imports the step modules (torch) once; the timing below is the check itself
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=msg) as err:
        run_study(cfg)
    assert time.perf_counter() - t0 < 2  # extracting the store alone (training a digits MLP) takes longer
    assert "\n" not in str(err.value)
    assert not (tmp_path / "runs").exists()  # nothing extracted, no store directory, no DB


def test_mistyped_param_one_line_error_from_the_cli(tmp_path):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(BAD_PARAM % "{measure: cka}")
    r = subprocess.run([sys.executable, "-m", "repscope.cli", "study", str(cfg)], capture_output=True, text=True,
                       timeout=120)
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "unknown param 'measure'" in lines[0], r.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("text,msg", [
    ("{run: probe, stores: [a], params: {probes: [logistic, nope]}}", "unknown probe 'nope'"),
    ("{run: probe, stores: [a], params: {cv: 1}}", r"param 'cv': cv 1: use 0 .* or k >= 2 folds"),
    ("{run: geometry, stores: [a], params: {measures: [twonn, bogus]}}", "unknown geometry measure 'bogus'"),
    ("{run: sae, stores: [a], params: {k: 8}}", r"param 'layer': Field required"),
    ("{run: sae, stores: [a], params: {layer: x, arch: nope}}", "unknown SAE architecture 'nope'"),
    ("{run: sts, stores: [a], params: {layer: x}}", "unknown param 'layer'; allowed: layers"),
    ("{run: quantize, stores: [a], params: {layer: x, method: nope}}", "unknown quantizer 'nope'"),
    ("{run: quantize, stores: [a], params: {layer: x, bits: 0}}", r"param 'bits': .*greater than or equal to 1"),
])
def test_every_step_validates_its_params(tmp_path, text, msg):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(f"name: x\nstores: [{{name: a, model: m, data: d}}]\nanalyses: [{text}]\n")
    with pytest.raises(ConfigError, match=msg):
        load_study(cfg)


def test_example_studies_are_valid():
    examples = sorted((Path(__file__).parents[1] / "examples").glob("*.yaml"))
    assert examples
    for path in examples:
        assert load_study(path).analyses


def test_study_sae_step(tmp_path):
    cfg = tmp_path / "sae.yaml"
    cfg.write_text("""
name: sae
stores: [{name: mlp, model: "digits-mlp:0", data: "digits@500"}]
analyses:
  - {run: sae, stores: [mlp], params: {layer: act1, k: 8, expansion: 2, n_steps: 30, batch_size: 128}}
  - {run: quantize, stores: [mlp], params: {layer: fc2, method: scalar, bits: 512}}
""")
    run_study(cfg)
    db = ResultsDB(tmp_path / "runs" / "repscope.duckdb")
    df = db.frame("sae")
    l0 = df[df["metric"] == "mean_l0"]["value"]
    assert len(l0) == 1 and 0 < l0.iloc[0] <= 8
    assert df["layer_index"].unique().tolist() == [1]  # act1 is the store's second layer
    assert len(db.artifacts("sae")) == 1  # the feature cards
    q = db.frame("quantize").set_index("metric")["value"]
    assert q["bits_per_vector"] == 512 and 0 <= q["fvu"] < 0.01  # 8 bits for each of 64 units: near-lossless


def test_changed_store_spec_is_refused_then_overwritten(tmp_path):
    """A rerun whose store changed model and data under the same name is refused before any work (the old store
    would otherwise be reused silently); `overwrite=True` re-extracts it, and an unchanged spec reuses it."""
    first = "name: t\nstores: [{name: s, model: 'digits-mlp:0', data: 'digits@30'}]\n"
    (tmp_path / "a.yaml").write_text(first)
    (tmp_path / "b.yaml").write_text(first.replace("digits-mlp:0", "digits-mlp:1").replace("@30", "@20"))
    run_study(tmp_path / "a.yaml")
    manifest = tmp_path / "runs" / "s" / "manifest.json"
    before = manifest.read_bytes()
    with pytest.raises(ConfigError, match=r"store 's' .* another spec \(model 'digits-mlp:0' → 'digits-mlp:1', "
                                          r"data 'digits@30' → 'digits@20'\).*--overwrite"):
        run_study(tmp_path / "b.yaml")
    assert manifest.read_bytes() == before  # refused before any work
    from repscope.store import RepStore

    run_study(tmp_path / "b.yaml", overwrite=True)
    s = RepStore.open(tmp_path / "runs" / "s")
    assert s.n_rows == 20 and s.provenance["study_spec"]["model"] == "digits-mlp:1"
    mtime = manifest.stat().st_mtime_ns
    run_study(tmp_path / "b.yaml")  # the same spec again: reused, not re-extracted
    assert manifest.stat().st_mtime_ns == mtime


OLD_KEY = """
name: old
stores: [{name: mlp_s0, model: "digits-mlp:0", data: "digits@600"}]
analyses:
  - {run: %s, stores: [mlp_s0], params: {%s}}
"""


@pytest.mark.parametrize("run,given", [("geometry", ""), ("sae", "layer: act1, "), ("quantize", "layer: fc2, ")])
def test_old_label_key_is_the_target(tmp_path, run, given):
    """Study files written before the one vocabulary name a step's `target` `label`: loaded as the same param;
    giving both is a one-line error, and a missing column under the old key is refused before any extraction."""
    from repscope.analyses import study_steps
    from repscope.study import step_params

    cfg = tmp_path / "s.yaml"
    params = {}
    for key in ("target", "label"):
        cfg.write_text(OLD_KEY % (run, f"{given}{key}: label"))
        spec = load_study(cfg).analyses[0]
        params[key] = step_params("s.yaml", 0, spec, study_steps()[run].model())
    assert params["target"] == params["label"] and params["label"].target == "label"
    assert "label" not in dict(params["label"])  # the field is `target`; the old name is only a key of the file
    cfg.write_text(OLD_KEY % (run, f"{given}target: label, label: label"))
    with pytest.raises(ConfigError, match=r"param 'label' is another name of 'target'; give only 'target'$"):
        load_study(cfg)
    if run == "geometry":  # its target may be 'auto', no column: not checked before extraction
        return
    for key in ("target", "label"):
        cfg.write_text(OLD_KEY % (run, f"{given}{key}: colour"))
        with pytest.raises(ConfigError, match=r"param 'target': column 'colour' is not in the samples of store"):
            run_study(cfg)
        assert not (tmp_path / "runs").exists()
