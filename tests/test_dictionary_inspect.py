"""Feature inspection, metrics, probe-after-reconstruction, CLI commands and report sections."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from repscope.dictionary import metrics as M
from repscope.dictionary.inspect import feature_cards, inspect_features
from repscope.store import write_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matmuls: 1 thread is faster


def test_auroc_matrix_matches_sklearn():
    from sklearn.metrics import roc_auc_score

    rng = np.random.default_rng(0)
    z = np.maximum(rng.normal(size=(300, 6)), 0)  # ties at zero on purpose
    lab = rng.integers(0, 3, 300)
    z[:, 2] += (lab == 1) * 2.0
    auc, classes = M.auroc_matrix(z, lab)
    assert list(classes) == [0, 1, 2]
    for i, c in enumerate(classes):
        for j in range(6):
            assert auc[i, j] == pytest.approx(roc_auc_score(lab == c, z[:, j]))


def test_inspect_finds_planted_label_latent_and_orders_top_samples():
    rng = np.random.default_rng(1)
    n, m = 400, 10
    samples = pd.DataFrame({"id": np.arange(n), "text": [f"s{i}" for i in range(n)],
                            "topic": rng.choice(["a", "b", "c", "d"], n), "split": "train"})
    z = np.zeros((n, m))
    on = samples["topic"].to_numpy() == "c"
    z[on, 7] = rng.random(on.sum()) + 0.5  # latent 7 fires exactly on topic c
    z[:, 1] = rng.random(n) * (rng.random(n) < 0.05)  # a random sparse latent
    z[:, 3] = 1.0  # dense latent: excluded from picks
    feats = inspect_features(z, samples, n_features=2, top_n=5)
    assert feats[0]["latent"] == 7
    assert feats[0]["best_label"] == "topic=c" and feats[0]["best_auroc"] == pytest.approx(1.0)
    assert feats[0]["frequency"] == pytest.approx(on.mean())
    acts = [t["activation"] for t in feats[0]["top"]]
    assert acts == sorted(acts, reverse=True) and len(acts) == 5
    top_row = int(np.argmax(z[:, 7]))
    assert feats[0]["top"][0]["row"] == top_row and feats[0]["top"][0]["text"] == f"s{top_row}"
    assert all(f["latent"] != 3 for f in feats)
    cards = feature_cards(feats)
    assert cards[0]["title"] == "latent 7" and "topic=c" in cards[0]["lines"][0]
    img = feature_cards(feats, images=np.zeros((n, 4, 4), dtype=np.uint8))
    assert len(img[0]["images"]) == 4 and len(img[0]["images"][0]) == 4


def test_fvu_and_l0_closed_forms():
    x = np.array([[1.0, 0.0], [3.0, 0.0]])
    assert M.fvu(x, x.mean(0, keepdims=True).repeat(2, 0)) == pytest.approx(1.0)
    assert M.fvu(x, x) == 0.0
    assert M.mse(x, np.zeros_like(x)) == pytest.approx(5.0)
    z = np.array([[0, 1, 2], [0, 0, 3.0]])
    assert M.mean_l0(z) == pytest.approx(1.5)
    assert M.dead_fraction(z) == pytest.approx(1 / 3)
    assert M.dense_fraction(z, 0.6) == pytest.approx(1 / 3)
    f = np.eye(3)
    assert np.allclose(M.mmcs(f[[2, 0]], f), [1, 0, 1])


def test_probe_after_reconstruction():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(600, 8))
    y = (x[:, 0] > 0).astype(int)
    same = M.probe_after_reconstruction(x[:400], y[:400], x[400:], y[400:], x[400:])
    assert same["probe_acc_drop"] == 0.0 and same["probe_acc"] > 0.9
    wiped = x[400:].copy()
    wiped[:, 0] = rng.normal(size=200)  # the reconstruction loses the label direction
    lost = M.probe_after_reconstruction(x[:400], y[:400], x[400:], y[400:], wiped)
    assert lost["probe_acc_drop"] > 0.3


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    rng = np.random.default_rng(0)
    F = rng.normal(size=(48, 24))
    c = rng.random((2000, 48)) * (rng.random((2000, 48)) < 0.08)
    samples = pd.DataFrame({"id": np.arange(2000), "label": (c[:, 0] > 0).astype(int),
                            "text": [f"sentence {i}" for i in range(2000)]})
    G = rng.normal(size=(48, 12))
    return write_store(tmp_path_factory.mktemp("st") / "toy", {"h": (c @ F).astype(np.float32),
                                                                 "h2": (c @ G).astype(np.float32)},
                       samples, chunk_rows=256)


def test_cli_sae_train_inspect_quantize_and_report(store, tmp_path):
    from repscope.cli import app
    from repscope.report.build import build_report
    from repscope.results import ResultsDB

    db = tmp_path / "r.duckdb"
    runner = CliRunner()
    out = tmp_path / "sae"
    r = runner.invoke(app, ["sae", "train", str(store.root), "--layer", "h", "--k", "4", "--expansion", "4",
                            "--batch-size", "256", "--steps", "60", "-o", str(out), "--db", str(db),
                            "--device", "cpu", "--target", "label"])
    assert r.exit_code == 0, r.output
    assert (out / "model.safetensors").is_file() and (out / "config.json").is_file()
    frame = ResultsDB(db).frame("sae")
    got = dict(zip(frame["metric"], frame["value"], strict=False))
    assert 0 < got["fvu"] < 1 and got["mean_l0"] <= 4 and "probe_acc_drop" in got
    assert set(frame["layer"]) == {"h"} and frame["params"].iloc[0]["eval"] == "holdout"
    assert frame["params"].iloc[0]["probe_label"] == "label"  # the recorded key keeps its name
    r = runner.invoke(app, ["sae", "inspect", str(out), "--top", "3", "--db", str(db), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    for flag in ("--target", "--label"):  # --label: the old name of --target, the same option
        r = runner.invoke(app, ["quantize", str(store.root), "--layer", "h", "--method", "pq", "--bits", "32",
                                "--db", str(tmp_path / "x.duckdb"), "--device", "cpu", flag, "nope"])
        assert r.exit_code != 0 and "column 'nope' not in samples" in str(r.exception), r.output
    r = runner.invoke(app, ["quantize", str(store.root), "--layer", "h", "--method", "pq", "--bits", "32",
                            "--db", str(db), "--device", "cpu", "--label", "label"])
    assert r.exit_code == 0, r.output
    q = ResultsDB(db).frame("quantize")
    assert dict(zip(q["metric"], q["value"], strict=False))["bits_per_vector"] == 32
    r = runner.invoke(app, ["sae", "train", str(store.root), "--layer", "h", "--target-layer", "h2", "--k", "4",
                            "--expansion", "2", "--batch-size", "256", "--steps", "20", "-o", str(tmp_path / "tc"),
                            "--db", str(db), "--device", "cpu"])
    assert r.exit_code == 0, r.output
    html = build_report(ResultsDB(db), tmp_path / "report.html").read_text()
    assert "SAE frontier" in html and "Discrete codes" in html and "toy · h · latent" in html


def test_report_sections_claims_its_analyses():
    from repscope.dictionary.report import report_sections

    frame = pd.DataFrame({"analysis": ["sae", "sae", "other"], "metric": ["fvu", "mean_l0", "x"],
                          "value": [0.2, 8.0, 1.0], "store": ["s", "s", "s"], "layer": ["l", "l", "l"],
                          "params": [{"arch": "topk", "k": 8, "n_latents": 64}] * 2 + [{}]})
    secs, handled = report_sections(frame, [{"analysis": "sae", "name": "c", "payload": {
        "store": "s", "layer": "l", "cards": [{"title": "latent 1", "lines": ["x"]}]}}])
    assert handled == {"sae"} and len(secs) == 1
    assert secs[0].cards[0]["title"] == "s · l · latent 1"
    fig = secs[0].figures[0]
    assert list(fig.data[0].x) == [8.0] and list(fig.data[0].y) == [0.2]
