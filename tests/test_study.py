"""YAML studies: validation errors name the field; a small study runs end to end and reruns from its stores."""

from __future__ import annotations

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
    ("name: x\nstores: []\nanalyses: [{run: nope, stores: []}]", "unknown analysis 'nope'"),
    ("name: x\nstores: [{name: a, model: m}]", r"stores\.0\.data: Field required"),
    ("name: x\nstores: []\nanalyses: [{run: probe, stores: [ghost]}]", "undefined store.*ghost"),
    ("name: x\nstores: [}", "not valid YAML"),
])
def test_study_validation_errors(tmp_path, text, msg):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(text)
    with pytest.raises(ConfigError, match=msg):
        load_study(cfg)


def test_study_sae_step(tmp_path):
    cfg = tmp_path / "sae.yaml"
    cfg.write_text("""
name: sae
stores: [{name: mlp, model: "digits-mlp:0", data: "digits@500"}]
analyses: [{run: sae, stores: [mlp], params: {layer: act1, k: 8, expansion: 2, n_steps: 30, batch_size: 128}}]
""")
    run_study(cfg)
    df = ResultsDB(tmp_path / "runs" / "repscope.duckdb").frame("sae")
    l0 = df[df["metric"] == "mean_l0"]["value"]
    assert len(l0) == 1 and 0 < l0.iloc[0] <= 8
