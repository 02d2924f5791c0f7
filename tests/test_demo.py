"""Smoke test of the whole demo path (small template count): stores, every analysis step, results, report."""

from __future__ import annotations

import pytest

from repscope.demo import run_demo
from repscope.store import RepStore


@pytest.mark.slow
def test_demo_end_to_end(tmp_path, monkeypatch):
    monkeypatch.setattr("repscope.demo.N_TEMPLATES", 240)
    report = run_demo(tmp_path / "demo", device="cpu")
    html = report.read_text(encoding="utf-8")
    assert report.name == "report.html" and "Plotly.newPlot" in html
    for name in ("digits_mlp_s0", "digits_mlp_s1", "digits_mlp_s2", "minilm_templates"):
        s = RepStore.open(tmp_path / "demo" / "stores" / name)
        assert s.n_rows == (240 if name.startswith("minilm") else 1797)
    s = RepStore.open(tmp_path / "demo" / "stores" / "minilm_templates")
    assert s.layers == ["embeddings"] + [f"encoder.layer.{i}" for i in range(6)]
    assert {"topic", "sentiment", "tense", "negation", "number"} <= set(s.samples.columns)
    from repscope.results import ResultsDB

    df = ResultsDB(tmp_path / "demo" / "repscope.duckdb").frame()
    analyses = set(df["analysis"])
    # every analysis package contributed rows (probe, similarity, geometry, dictionary)
    assert {"probe", "concept_depth", "similarity", "geometry", "sae", "quantize", "disentangle",
            "compat"} <= analyses, sorted(analyses)
    # layer order is stored, never guessed: every row that names a layer carries its index in the store
    with_layer = df[df["layer"].notna()]
    assert with_layer["layer_index"].notna().all(), with_layer[with_layer["layer_index"].isna()]["analysis"].unique()
    # the report opens with the generated findings, before the first analysis section
    assert html.index("<h2>Findings</h2>") < html.index("<h2>Probes: score per layer</h2>")
    # … and they name, for every MiniLM target, the layer with the highest mean probe accuracy in the DB
    acc = df[(df["analysis"] == "probe") & (df["metric"] == "accuracy") & (df["store"] == "minilm_templates")]
    acc = acc.assign(target=acc["params"].map(lambda p: p.get("target")), probe=acc["params"].map(lambda p: p["probe"]))
    for target, g in acc.groupby("target"):
        m = g.groupby(["layer_index", "probe", "layer"], as_index=False)["value"].mean()
        best = m.loc[m["value"].idxmax(), "layer"]
        assert f"{target} in minilm_templates: best layer {best} " in html, target
    polarity = df[(df["analysis"] == "probe") & (df["metric"] == "accuracy")
                  & df["params"].map(lambda p: p.get("target") == "polarity" and p.get("probe") == "logistic")]
    by_layer = dict(zip(polarity["layer"], polarity["value"], strict=True))
    # the XOR factor is near chance in the (bag-of-words) embeddings and decodable in deeper layers
    assert by_layer["embeddings"] < 0.7 < max(by_layer.values()), by_layer
    assert df["value"].notna().mean() > 0.95
