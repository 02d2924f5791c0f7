"""Geometry profile runner, CLI, report sections and demo step on small written stores."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from repscope.errors import ConfigError
from repscope.geometry.profile import geometry_profile, positive_pairs
from repscope.results import ResultsDB
from repscope.store import write_store


@pytest.fixture()
def store(tmp_path):
    rng = np.random.default_rng(0)
    n = 400
    y = np.repeat(np.arange(4), n // 4)
    means = rng.standard_normal((4, 12)) * 4
    layers = {
        "l0": rng.standard_normal((n, 12)),  # no class structure
        "l1": rng.standard_normal((n, 12)) + means[y],  # separated classes
        "l2": (rng.standard_normal((n, 2, 3)) + means[y][:, :6].reshape(n, 2, 3)),  # multi-axis: flattened
    }
    samples = pd.DataFrame({"id": np.arange(n), "label": y, "pair": np.arange(n) // 2, "side": np.arange(n) % 2})
    return write_store(tmp_path / "toy", layers, samples, provenance={"model": "toy"})


def test_profile_records_rows_in_model_order(store, tmp_path):
    db = ResultsDB(tmp_path / "r.duckdb", study="t")
    result = geometry_profile(store, max_rows=300, device="cpu")
    assert len(db.frame("geometry")) == 0  # the analysis returns its Result; the caller records it
    db.record_result(result)
    frame = db.frame("geometry")
    assert len(frame) == len(result.rows) > 0
    assert set(frame["layer"]) == {"l0", "l1", "l2"}
    assert (frame["layer"].map({"l0": 0, "l1": 1, "l2": 2}) == frame["layer_index"]).all()
    assert {"twonn_id", "mle_id", "silhouette", "rate_reduction", "alignment", "I_XT", "effective_rank"} <= set(
        frame["metric"])
    p = frame["params"].iloc[0]
    assert p["n"] == 300 and p["n_layers"] == 3 and "measure" in p and "layer_index" not in p
    sil = frame[frame["metric"] == "silhouette"].set_index("layer")["value"]
    assert sil["l1"] > 0.3 > abs(sil["l0"])
    dr = frame[frame["metric"] == "rate_reduction"].set_index("layer")["value"]
    assert dr["l1"] > dr["l0"]
    art = db.artifacts("geometry")
    assert art[0]["name"] == "spectrum:toy"
    assert art[0]["payload"]["order"] == ["l0", "l1", "l2"]
    assert sum(art[0]["payload"]["layers"]["l1"]) == pytest.approx(1.0)


def test_profile_without_labels_skips_label_measures(store):
    df = geometry_profile(store, measures=["twonn", "clusters", "coding_rate"], target=None, device="cpu").frame()
    assert {p["measure"] for p in df["params"]} == {"twonn", "coding_rate"}
    assert "rate_reduction" not in set(df["metric"])


def test_profile_params_and_errors(store):
    df = geometry_profile(store, measures=["mle"], layers="l1", params={"mle": {"k1": 5, "k2": 8}},
                          device="cpu").frame()
    assert list(df["layer"]) == ["l1"]
    with pytest.raises(ConfigError):
        geometry_profile(store, measures=["nope"])
    with pytest.raises(ConfigError):
        geometry_profile(store, measures=["mle"], params={"twonn": {}})


def test_positive_pairs_respects_scores():
    s = pd.DataFrame({"pair": [0, 0, 1, 1, 2, 2], "side": [0, 1, 0, 1, 0, 1], "score": [5, 5, 1, 1, 4.5, 4.5]})
    a, b = positive_pairs(s, np.arange(6))
    assert list(a) == [0, 4] and list(b) == [1, 5]
    assert positive_pairs(pd.DataFrame({"x": [1]}), np.arange(1)) is None


def test_cli_and_report(store, tmp_path):
    from repscope.cli import app
    from repscope.geometry.report import report_sections
    from repscope.report.build import build_report

    db_path = tmp_path / "cli.duckdb"
    res = CliRunner().invoke(app, ["geometry", str(store.root), "--db", str(db_path), "-m", "twonn,anisotropy,rank",
                                   "--device", "cpu"])
    assert res.exit_code == 0, res.output
    db = ResultsDB(db_path)
    assert set(db.frame("geometry")["metric"]) == {"twonn_id", "anisotropy", "effective_rank", "stable_rank"}
    secs, handled = report_sections(db.frame(), db.artifacts())
    assert handled == {"geometry"}
    titles = [s.title for s in secs]
    assert "Geometry: rank and spectrum" in titles and "Geometry: intrinsic dimension" in titles
    rank = secs[titles.index("Geometry: rank and spectrum")]
    assert any("spectrum" in (f.layout.title.text or "") for f in rank.figures)
    out = build_report(db, tmp_path / "rep.html")
    assert "Geometry: anisotropy and uniformity" in out.read_text()
    # a geometry metric with no theme falls back to a generic section instead of vanishing
    db.record("geometry", "new_metric_without_theme", 0.5, layer="l0", layer_index=0, store="toy")
    db.record("geometry", "new_metric_without_theme", 0.7, layer="l1", layer_index=1, store="toy")
    secs, _ = report_sections(db.frame(), db.artifacts())
    other = [s for s in secs if s.title == "Geometry: other measures"]
    assert len(other) == 1 and "new_metric_without_theme" in set(other[0].tables[0]["metric"])
    assert other[0].figures and list(other[0].figures[0].data[0].y) == [0.5, 0.7]
    bad = CliRunner().invoke(app, ["geometry", str(store.root), "--db", str(db_path), "--params", "{oops"])
    assert bad.exit_code != 0


@pytest.mark.parametrize("flag", ["--target", "--label"])
def test_cli_target_and_its_old_name_label(store, tmp_path, flag):
    """`--target COLUMN` (and `--label`, its old name) feeds the label-based measures; 'none' skips them. The rows
    equal the Python API's and still record the column under params['label']."""
    from repscope.cli import app

    got = {}
    for value in ("label", "none"):
        db_path = tmp_path / f"{value}.duckdb"
        res = CliRunner().invoke(app, ["geometry", str(store.root), "--db", str(db_path), "-m", "twonn,clusters",
                                       "-l", "l1", flag, value, "--device", "cpu"])
        assert res.exit_code == 0, res.output
        got[value] = ResultsDB(db_path).frame("geometry")
    assert "silhouette" not in set(got["none"]["metric"]) and "twonn_id" in set(got["none"]["metric"])
    ref = geometry_profile(store, ["twonn", "clusters"], layers="l1", target="label", device="cpu").frame()
    cli = got["label"].set_index("metric")
    assert cli.loc["silhouette", "value"] == ref.set_index("metric").loc["silhouette", "value"]
    assert cli.loc["silhouette", "params"]["label"] == "label"


def test_demo_step_on_small_stores(tmp_path):
    from repscope.demo_context import DemoContext
    from repscope.geometry import demo

    rng = np.random.default_rng(1)
    n = 200
    y = rng.integers(0, 10, n)
    st = write_store(tmp_path / "digits_mlp_s0", {k: rng.standard_normal((n, 8)) for k in ("fc1", "act1", "out")},
                     pd.DataFrame({"id": np.arange(n), "label": y}))
    ctx = DemoContext(workdir=tmp_path, db=ResultsDB(tmp_path / "d.duckdb", study="demo"),
                      stores={"digits_mlp_s0": st}, device="cpu")
    demo.run(ctx)
    frame = ctx.db.frame("geometry")
    assert set(frame["store"]) == {"digits_mlp_s0"} and set(frame["layer"]) == {"fc1", "act1", "out"}
