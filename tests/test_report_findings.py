"""The findings overview and the report's honest-plot rules, on planted result rows with known answers."""

from __future__ import annotations

import math
import urllib.parse

import pandas as pd
import pytest

from repscope.dictionary.findings import dictionary_findings
from repscope.geometry.findings import geometry_findings, saturated_infoplane
from repscope.probe.findings import probe_findings
from repscope.report.build import build_report, collect_sections
from repscope.report.compare import compare_frames
from repscope.report.findings import findings
from repscope.results import ResultsDB
from repscope.results.db import Row
from repscope.similarity.findings import cca_warnings, similarity_findings

# layer names whose natural order differs from the model order recorded in layer_index
LAYERS = ["zeta", "alpha", "mid", "last"]


def _frame(rows: list[Row]) -> pd.DataFrame:
    """Rows as ResultsDB.frame() returns them (without a DB)."""
    recs = []
    for r in rows:
        recs.append({"study": r.study or "s", "store": r.store, "model": r.model, "layer": r.layer,
                     "layer_b": r.layer_b, "analysis": r.analysis, "metric": r.metric, "value": r.value,
                     "params": dict(r.params), "seconds": None, "created": None, "layer_index": r.layer_index,
                     "layer_b_index": r.layer_b_index})
    return pd.DataFrame(recs)


def _probe_rows(store: str, target: str, scores: list[float], half: float, probe: str = "logistic") -> list[Row]:
    out = []
    for i, (layer, v) in enumerate(zip(LAYERS, scores, strict=True)):
        p = {"target": target, "probe": probe}
        out += [Row("probe", "accuracy", v, layer=layer, store=store, params=p, layer_index=i),
                Row("probe", "accuracy_ci_low", v - half, layer=layer, store=store, params=p, layer_index=i),
                Row("probe", "accuracy_ci_high", v + half, layer=layer, store=store, params=p, layer_index=i)]
    return out


def test_best_layer_jumps_and_ties_from_planted_probe_rows():
    rows = _probe_rows("net", "topic", [0.50, 0.55, 0.90, 0.80], half=0.02)
    rows += _probe_rows("net", "topic", [0.40, 0.45, 0.85, 0.95], half=0.01, probe="knn")  # a better probe
    rows += _probe_rows("net", "tense", [0.70, 0.74, 0.72, 0.71], half=0.05)  # all within noise
    out = probe_findings(_frame(rows))
    info = {f.target: f for f in out if f.severity == "info"}
    topic, tense = info["topic"], info["tense"]
    # the best (probe, layer) over both probes: knn at 'last'
    assert (topic.data["probe"], topic.data["best_layer"]) == ("knn", "last")
    assert topic.data["score"] == pytest.approx(0.95)
    assert (topic.data["ci_low"], topic.data["ci_high"]) == (pytest.approx(0.94), pytest.approx(0.96))
    # knn rises by 0.40 at 'mid' (model order zeta → alpha → mid → last) and 0.10 at 'last'
    assert [j["layer"] for j in topic.data["jumps"]] == ["mid", "last"]
    assert topic.data["ties"] == []
    assert "best layer last" in topic.text and "[0.94, 0.96]" in topic.text
    # tense: best is 'alpha' but every other layer's CI overlaps it → a CI warning names it
    assert tense.data["best_layer"] == "alpha" and sorted(tense.data["ties"]) == ["last", "mid", "zeta"]
    assert tense.data["jumps"] == []
    warn = [f for f in out if f.severity == "warning"]
    assert len(warn) == 1 and "tense (net)" in warn[0].text and "topic" not in warn[0].text


def test_saturated_information_plane_is_flagged_per_layer():
    n = 1000
    rows = []
    for i, layer in enumerate(LAYERS):
        sat = math.log2(n) if i < 3 else math.log2(n) - 1.0  # the last layer is not saturated
        rows.append(Row("geometry", "I_XT", sat, layer=layer, store="a", params={"n": n}, layer_index=i))
        rows.append(Row("geometry", "I_TY", 2.0, layer=layer, store="a", params={"n": n}, layer_index=i))
        rows.append(Row("geometry", "I_XT", 3.0, layer=layer, store="b", params={"n": n}, layer_index=i))
    frame = _frame(rows)
    assert saturated_infoplane(frame) == {"a": ["zeta", "alpha", "mid"]}
    warn = [f for f in geometry_findings(frame) if f.kind == "saturated"]
    assert [(f.store, f.data["layers"]) for f in warn] == [("a", ["zeta", "alpha", "mid"])]


def test_infoplane_all_saturated_is_not_drawn(tmp_path):
    from repscope.geometry.report import report_sections

    n = 500
    rows = [Row("geometry", m, math.log2(n) if m == "I_XT" else 1.0, layer=lay, store="a",
                params={"n": n, "n_layers": 4}, layer_index=i)
            for i, lay in enumerate(LAYERS) for m in ("I_XT", "I_TY")]
    secs, _ = report_sections(_frame(rows), [])
    plane = [s for s in secs if "information plane" in s.title]
    assert plane and not any("information plane" in (f.layout.title.text or "") for f in plane[0].figures)
    assert any("saturates" in n for n in plane[0].notes)


def test_spectrum_is_clipped_at_the_precision_floor():
    from repscope.geometry.report import _spectrum_figure

    vals = [0.5, 0.3, 0.2 - 1e-9, 1e-9, 1e-20, 0.0]  # 1e-20 and 0 are below λ₁·d·ε
    fig, dropped, total = _spectrum_figure({"store": "s", "n": 10, "order": ["l"], "layers": {"l": vals}})
    assert (dropped, total) == (2, 6)
    assert list(fig.data[0].y) == vals[:4]


def test_dead_latents_above_threshold_warn():
    p = {"arch": "topk", "k": 8, "n_latents": 64}
    rows = [Row("sae", "dead_fraction", 0.35, layer="l1", store="s", params=p),
            Row("sae", "fvu", 0.2, layer="l1", store="s", params=p),
            Row("sae", "dead_fraction", 0.10, layer="l2", store="s", params=p),
            Row("sae", "fvu", 0.3, layer="l2", store="s", params=p)]
    out = dictionary_findings(_frame(rows))
    dead = [f for f in out if f.kind == "dead"]
    assert [(f.layer, f.data["dead_fraction"]) for f in dead] == [("l1", 0.35)]
    assert len([f for f in out if f.kind == "sae"]) == 2


def test_similarity_pairs_and_alignment():
    rows = []
    sims = {("zeta", "alpha"): 0.9, ("zeta", "mid"): 0.5, ("zeta", "last"): 0.2, ("alpha", "mid"): 0.6,
            ("alpha", "last"): 0.3, ("mid", "last"): 0.8}
    for i, a in enumerate(LAYERS):
        for j, b in enumerate(LAYERS):
            v = 1.0 if a == b else sims.get((a, b), sims.get((b, a)))
            rows.append(Row("similarity", "linear_cka", v, layer=a, layer_b=b, store="net", layer_index=i,
                            layer_b_index=j, params={"kind": "similarity", "store_b": "net"}))
            # a second model whose same-name layer is always the best match except for 'mid'
            w = 0.9 if a == b and a != "mid" else (0.95 if (a, b) == ("mid", "last") else 0.1)
            rows.append(Row("similarity", "linear_cka", w, layer=a, layer_b=b, store="net vs other",
                            layer_index=i, layer_b_index=j, params={"kind": "similarity", "store_b": "other"}))
    out = similarity_findings(_frame(rows))
    within = next(f for f in out if f.kind == "similarity")
    assert within.data["most"] == ("zeta", "alpha") and within.data["least"] == ("zeta", "last")
    assert within.data["largest_change"] == ("alpha", "mid")  # adjacent pairs: 0.9, 0.6, 0.8
    align = next(f for f in out if f.kind == "alignment")
    assert (align.data["best_match_hits"], align.data["layers"]) == (3, 4)


@pytest.mark.parametrize(("b_scores", "expected"), [(0.71, False), (0.90, True)])
def test_difference_inside_or_outside_the_ci(b_scores, expected):
    a = _frame(_probe_rows("net", "topic", [0.70] * 4, half=0.05))
    b = _frame(_probe_rows("net", "topic", [b_scores] * 4, half=0.05))
    cmp = compare_frames(a, b)
    assert len(cmp) == 4 and list(cmp["layer"]) == LAYERS  # model order from layer_index
    assert cmp["delta"].tolist() == pytest.approx([b_scores - 0.70] * 4)
    assert cmp["exceeds"].tolist() == [expected] * 4


def test_findings_section_is_first_and_tables_carry_csv(tmp_path):
    db = ResultsDB(tmp_path / "r.duckdb", study="s")
    db.record_rows(_probe_rows("net", "topic", [0.50, 0.55, 0.90, 0.80], half=0.02))
    secs = collect_sections(db.frame(), db.artifacts())
    assert secs[0][1].title == "Findings" and [f for f, _ in secs][1] == "probe"
    html = build_report(db, tmp_path / "r.html").read_text(encoding="utf-8")
    assert html.index("Findings") < html.index("Probes: score per layer")
    assert "topic in net: best layer mid" in html
    uri = html.split('href="data:text/csv;charset=utf-8,', 1)[1].split('"', 1)[0]
    csv = urllib.parse.unquote(uri.replace("&amp;", "&"))
    assert csv.splitlines()[0].startswith("store,target,layer")
    # deterministic for a given set of rows: the row order does not change the overview
    frame = db.frame()
    shuffled = frame.sample(frac=1, random_state=0).reset_index(drop=True)
    assert [f.text for f in findings(shuffled)] == [f.text for f in findings(frame)]


def test_cca_with_fewer_samples_than_dimensions_warns():
    rows = [Row("geometry", "twonn_id", 5.0, layer="wide", store="a", params={"dim": 512}),
            Row("geometry", "twonn_id", 5.0, layer="narrow", store="a", params={"dim": 16}),
            Row("similarity", "pwcca", 0.99, layer="wide", layer_b="wide", store="a",
                params={"n": 300, "store_b": "a"}),
            Row("similarity", "pwcca", 0.7, layer="narrow", layer_b="narrow", store="a",
                params={"n": 300, "store_b": "a"}),
            Row("similarity", "linear_cka", 0.7, layer="wide", layer_b="wide", store="a",
                params={"n": 300, "store_b": "a"})]  # not a CCA measure
    warn = cca_warnings(_frame(rows))
    assert len(warn) == 1 and "a (pwcca, n=300)" in warn[0].text and "1 layer(s)" in warn[0].text
    assert warn[0].store == "a" and warn[0].severity == "warning"


def test_probe_rows_without_a_target_param_are_not_named_nan():
    rows = [Row("probe", "accuracy", v, layer=lay, store="s", params={"probe": "logistic"}, layer_index=i)
            for i, (lay, v) in enumerate(zip(LAYERS, [0.2, 0.6, 0.5, 0.4], strict=True))]
    (f,) = probe_findings(_frame(rows))
    assert f.target is None and f.text.startswith("target in s: best layer alpha") and "nan" not in f.text


def test_filter_tags_match_whole_store_names_and_layer_positions():
    import plotly.graph_objects as go

    from repscope.report.filters import annotate_figure, filter_options, row_tags

    rows = _probe_rows("digits_mlp_s1", "topic", [0.1, 0.2, 0.3, 0.4], half=0.01)
    rows += _probe_rows("digits_mlp_s10", "tense", [0.1, 0.2, 0.3, 0.4], half=0.01)
    opts = filter_options(_frame(rows))
    assert opts.stores == ["digits_mlp_s1", "digits_mlp_s10"] and opts.targets == ["tense", "topic"]
    assert opts.layer_pos["digits_mlp_s10"] == {lay: i for i, lay in enumerate(LAYERS)}
    fig = go.Figure([go.Scatter(x=[1], y=[1], name="digits_mlp_s10 target=tense"),
                     go.Scatter(x=[1], y=[1], name="digits_mlp_s1 logistic")])
    annotate_figure(fig, opts)
    assert [t.meta for t in fig.data] == [{"stores": ["digits_mlp_s10"], "targets": ["tense"]},
                                          {"stores": ["digits_mlp_s1"], "targets": []}]
    tags = row_tags({"store": "digits_mlp_s1 vs digits_mlp_s10", "layer": "mid", "target": "topic"}, opts)
    assert tags == {"stores": ["digits_mlp_s1", "digits_mlp_s10"], "target": "topic", "layer_index": 2}


def test_overview_groups_follow_the_plugins_whatever_the_store_names():
    """Plugins' findings hooks feed the overview in pipeline order; a plugin's headings keep their order even when a
    cross-model store name ('a vs b') sorts before a within-store one ('b')."""
    from repscope.report.findings import findings_section

    rows = _probe_rows("b", "topic", [0.5, 0.6, 0.9, 0.8], half=0.01)
    for store, b in (("a vs b", "b"), ("b", "b")):
        for i, x in enumerate(LAYERS):
            for j, y in enumerate(LAYERS):
                rows.append(Row("similarity", "linear_cka", 1.0 if x == y else 0.5 / (1 + abs(i - j)), layer=x,
                                layer_b=y, store=store, layer_index=i, layer_b_index=j, params={"store_b": b}))
    rows += [Row("disentangle", "mig", 0.1 * i, layer=x, store="b", layer_index=i) for i, x in enumerate(LAYERS)]
    frame = _frame(rows)
    sec = findings_section(frame, [])
    titles = [g["title"] for g in sec.groups]
    assert titles == ["Where each target is decodable", "Layer similarity", "Cross-model alignment",
                      "Disentanglement"]
    kinds = [[it["kind"] for it in g["items"]] for g in sec.groups]
    assert kinds == [["probe"], ["similarity"], ["alignment"], ["disentangle"]]
    assert sec.groups[2]["items"][0]["store"] == "a vs b"
    # the same lines whatever the row order
    shuffled = frame.sample(frac=1, random_state=1).reset_index(drop=True)
    assert findings_section(shuffled, []).groups == sec.groups


def test_the_spine_holds_no_analysis_specific_finding_logic():
    """report/findings.py names no analysis: each plugin's finding logic lives in its own package."""
    import ast
    from pathlib import Path

    import repscope.report.findings as spine

    names = {"probe", "concept_depth", "similarity", "geometry", "sae", "quantize", "disentangle", "compat"}
    tree = ast.parse(Path(spine.__file__).read_text(encoding="utf-8"))
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    assert not literals & names, literals & names
