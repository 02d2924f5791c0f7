"""Probe protocols: planted layer structure, reproducibility by seed, retrieval/STS/CI vs reference formulas, CLI."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy.stats import binomtest, spearmanr
from scipy.stats import t as student_t
from sklearn.metrics import average_precision_score, ndcg_score

from repscope.probe import (
    concat_stores,
    concept_depth,
    few_shot_curve,
    layer_sweep,
    mean_ci,
    retrieval_metrics,
    sts_sweep,
    wilson_ci,
)
from repscope.probe.protocols import as_table
from repscope.results import Result, ResultsDB
from repscope.store import write_store


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    """4 layers; the label is decodable only from layer.2 on (signal strength 0, 0, 5, 5)."""
    rng = np.random.default_rng(0)
    n = 300
    y = rng.integers(0, 3, n)
    layers = {}
    for i, strength in enumerate([0.0, 0.0, 5.0, 5.0]):
        x = rng.normal(size=(n, 16)).astype(np.float32)
        x[:, 0] += strength * y
        layers[f"layer.{i}"] = x
    samples = pd.DataFrame({"id": np.arange(n), "label": y, "score": layers["layer.3"][:, 0] + rng.normal(size=n)})
    return write_store(tmp_path_factory.mktemp("s") / "planted", layers, samples)


def test_sweep_finds_planted_depth_and_writes_rows(planted, tmp_path):
    db = ResultsDB(tmp_path / "r.duckdb")
    result = layer_sweep(planted, ["logistic", "nb"], "label", device="cpu")
    assert isinstance(result, Result) and len(db.frame()) == 0  # analyses return rows; the caller records them
    sweep = as_table(result)
    acc = sweep[sweep["metric"] == "accuracy"].pivot_table(index="layer", columns="probe", values="value")
    assert (acc.loc[["layer.0", "layer.1"]] < 0.5).all().all()  # chance is ~1/3
    assert (acc.loc[["layer.2", "layer.3"]] > 0.9).all().all()
    assert (sweep["ci_low"] <= sweep["value"]).all() and (sweep["value"] <= sweep["ci_high"]).all()
    depth = concept_depth(result, planted.layers)
    d = as_table(depth)
    assert set(d[d["metric"] == "depth"]["layer"]) == {"layer.2"} and set(d[d["metric"] == "depth"]["value"]) == {2}
    db.record_result(result)
    db.record_result(depth)
    rows = db.frame("probe")
    assert len(rows) == 4 * 2 * 3 and set(rows["metric"]) == {"accuracy", "accuracy_ci_low", "accuracy_ci_high"}
    # layer order is stored: layer_index is the layer's position in the store
    assert (rows["layer"].map(planted.layers.index) == rows["layer_index"]).all()
    assert len(db.frame("concept_depth")) == 2 * 3


def test_concept_depth_threshold_and_chance():
    sweep = pd.DataFrame({"store": "s", "target": "t", "probe": "p", "metric": "accuracy",
                          "layer": ["a", "b", "c"], "value": [0.5, 0.8, 0.95]})
    def depth_layer(res: Result) -> str:
        (row,) = [r for r in res.rows if r.metric == "depth"]
        return row.layer

    assert depth_layer(concept_depth(sweep, ["a", "b", "c"], threshold=0.8)) == "b"
    # chance-adjusted at p0=0.5: (0, .6, .9): 0.8 × 0.9 = 0.72 → layer c
    assert depth_layer(concept_depth(sweep, ["a", "b", "c"], 0.8, chance={"t": 0.5})) == "c"


def test_cv_reproducible_by_seed(planted):
    a, b, c = (as_table(layer_sweep(planted, ["logistic"], "label", layers="layer.1", cv=3, seed=seed, device="cpu"))
               for seed in (7, 7, 8))
    pd.testing.assert_frame_equal(a.drop(columns="seconds"), b.drop(columns="seconds"))
    assert (a["eval"] == "cv").all() and not np.allclose(a["value"], c["value"])


def test_few_shot_reproducible_and_increasing(planted, tmp_path):
    db = ResultsDB(tmp_path / "r.duckdb")
    kw = dict(probes=("logistic", "nb"), shots=(1, 4, 16), seeds=3, seed=1, device="cpu")
    res = few_shot_curve(planted, "layer.3", **kw)
    db.record_result(res)
    a = as_table(res).drop(columns="seconds")
    b = as_table(few_shot_curve(planted, "layer.3", **kw)).drop(columns="seconds")
    pd.testing.assert_frame_equal(a, b)
    c = as_table(few_shot_curve(planted, "layer.3", **(kw | {"seed": 2})))
    assert not np.allclose(a["value"], c["value"])
    for _, g in a.groupby("probe"):
        assert g.set_index("shots")["value"].loc[16] > g.set_index("shots")["value"].loc[1]
    assert set(db.frame("probe_few_shot")["params"].map(lambda p: p["shots"])) == {1, 4, 16}


def test_split_column_is_used(tmp_path):
    rng = np.random.default_rng(1)
    n = 200
    y = rng.integers(0, 2, n)
    x = rng.normal(size=(n, 4)).astype(np.float32)
    x[:, 0] += 3 * y
    split = np.where(np.arange(n) < 150, "train", "test")
    s = write_store(tmp_path / "sp", {"l": x}, pd.DataFrame({"id": np.arange(n), "label": y, "split": split}))
    res = as_table(layer_sweep(s, ["nb"], "label", device="cpu"))
    from repscope.probe import NaiveBayesProbe

    ref = NaiveBayesProbe(device="cpu").fit(x[:150], y[:150]).score(x[150:], y[150:])
    assert res["eval"].item() == "split" and res["value"].item() == pytest.approx(ref)


def test_ridge_sweep_reports_r2_and_spearman(planted):
    res = as_table(layer_sweep(planted, ["ridge"], "score", cv=3, device="cpu"))
    r2 = res[res["metric"] == "r2"].set_index("layer")["value"]
    assert r2["layer.3"] > 0.5 and r2["layer.0"] < 0.2
    assert set(res["metric"]) == {"r2", "spearman"}


def test_concat_of_complementary_stores_beats_each(tmp_path):
    rng = np.random.default_rng(2)
    n = 400
    y = rng.integers(0, 4, n)
    samples = pd.DataFrame({"id": np.arange(n), "label": y})
    a = rng.normal(size=(n, 3)).astype(np.float32)
    b = rng.normal(size=(n, 3)).astype(np.float32)
    a[:, 0] += 2.5 * (y % 2)  # store a knows the low bit, store b the high bit
    b[:, 0] += 2.5 * (y // 2)
    sa = write_store(tmp_path / "a", {"h": a}, samples)
    sb = write_store(tmp_path / "b", {"h": b}, samples)
    res = as_table(concat_stores([sa, sb], "h", "logistic", device="cpu")).set_index("store")["value"]
    assert res["a+b"] > max(res["a"], res["b"]) + 0.2


def _retrieval_reference(x, y, ks):
    xn = x / np.linalg.norm(x, axis=1, keepdims=True)
    s = xn @ xn.T
    out = {f"recall@{k}": [] for k in ks} | {"mAP": [], "nDCG@10": []}
    for i in range(len(x)):
        others = np.delete(np.arange(len(x)), i)
        rel = (y[others] == y[i]).astype(float)
        if rel.sum() == 0:
            continue
        order = np.argsort(-s[i, others], kind="stable")
        for k in ks:
            out[f"recall@{k}"].append(float(rel[order[:k]].sum() > 0))
        out["mAP"].append(average_precision_score(rel, s[i, others]))
        out["nDCG@10"].append(ndcg_score(rel[None], s[i, others][None], k=10))
    return {k: float(np.mean(v)) for k, v in out.items()}


def test_retrieval_matches_sklearn_reference():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 5, 120)
    x = rng.normal(size=(120, 8)) + 1.5 * np.eye(8)[y]
    y[0] = 99  # a singleton label: no relevant item, skipped
    got = retrieval_metrics(x, y, ks=(1, 5), chunk_size=37, device="cpu")
    ref = _retrieval_reference(x, y, (1, 5))
    for k in ref:
        assert got[k] == pytest.approx(ref[k], abs=1e-6), k


def test_intervals_match_scipy():
    v = [0.81, 0.84, 0.79, 0.88, 0.83]
    m, lo, hi = mean_ci(v)
    ref = student_t.interval(0.95, len(v) - 1, loc=np.mean(v), scale=np.std(v, ddof=1) / np.sqrt(len(v)))
    assert (lo, hi) == pytest.approx(ref) and m == pytest.approx(np.mean(v))
    ci = binomtest(83, 100).proportion_ci(0.95, method="wilson")
    assert wilson_ci(0.83, 100) == pytest.approx((ci.low, ci.high), abs=1e-9)


@pytest.fixture()
def sts_store(tmp_path):
    rng = np.random.default_rng(4)
    n_pairs = 60
    gold = rng.uniform(0, 5, n_pairs)
    base = rng.normal(size=(n_pairs, 8))
    noise = rng.normal(size=(n_pairs, 8))
    w = (5 - gold)[:, None] / 5
    side1 = base + 2 * w * noise  # high gold → close pair
    x = np.empty((2 * n_pairs, 8), dtype=np.float32)
    x[0::2], x[1::2] = base, side1
    rand = rng.normal(size=x.shape).astype(np.float32)
    samples = pd.DataFrame({"id": np.arange(2 * n_pairs), "pair": np.repeat(np.arange(n_pairs), 2),
                            "side": np.tile([0, 1], n_pairs), "score": np.repeat(gold, 2)})
    return write_store(tmp_path / "sts", {"good": x, "random": rand}, samples), x, gold


def test_sts_matches_scipy(sts_store, tmp_path):
    store, x, gold = sts_store
    res = sts_sweep(store).frame().set_index("layer")["value"]
    cos = (x[0::2] * x[1::2]).sum(1) / np.linalg.norm(x[0::2], axis=1) / np.linalg.norm(x[1::2], axis=1)
    assert res["good"] == pytest.approx(spearmanr(cos, gold).statistic, abs=1e-9)
    assert res["good"] > 0.5 and abs(res["random"]) < 0.4


def test_cli_probe_and_sts(planted, sts_store, tmp_path):
    from typer.testing import CliRunner

    from repscope.cli import app

    db = tmp_path / "cli.duckdb"
    r = CliRunner().invoke(app, ["probe", str(planted.root), "--probe", "logistic,nb", "--few-shot", "--db", str(db),
                                 "--device", "cpu"])
    assert r.exit_code == 0, r.output
    r2 = CliRunner().invoke(app, ["sts", str(sts_store[0].root), "--db", str(db)])
    assert r2.exit_code == 0, r2.output
    rdb = ResultsDB(db)
    assert {"probe", "concept_depth", "probe_few_shot", "sts"} <= set(rdb.frame()["analysis"])
    from repscope.probe.report import report_sections

    secs, handled = report_sections(rdb.frame(), [])
    assert handled == {"probe", "concept_depth", "probe_few_shot", "sts"}
    assert sum(len(s.figures) for s in secs) >= 3
