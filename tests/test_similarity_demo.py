"""The similarity demo step on small stand-in stores (default and extended names), then the report."""

from __future__ import annotations

import numpy as np
import pandas as pd
from rich.console import Console

from repscope.demo_context import DemoContext
from repscope.report.build import build_report
from repscope.results import ResultsDB
from repscope.similarity import demo
from repscope.store import write_store


def test_demo_step_records_every_analysis(tmp_path):
    rng = np.random.default_rng(0)
    n = 200
    x = rng.normal(size=(n, 12))
    labels = (x[:, 0] > 0).astype(int) + (x[:, 1] > 0).astype(int)
    samples = pd.DataFrame({"id": np.arange(n), "label": labels})
    stores = {}
    for s in range(3):
        w = np.random.default_rng(s).normal(size=(12, 16))
        fc1 = x @ w
        act1 = np.maximum(fc1, 0)
        fc2 = act1 @ np.random.default_rng(10 + s).normal(size=(16, 16)) / 4
        act2 = np.maximum(fc2, 0)
        layers = {"fc1": fc1, "act1": act1, "fc2": fc2, "act2": act2, "out": act2 @ rng.normal(size=(16, 3))}
        stores[f"digits_mlp_s{s}"] = write_store(tmp_path / f"digits_mlp_s{s}", layers, samples)
    text = {"embeddings": rng.normal(size=(n, 24))}
    for i in range(3):
        text[f"encoder.layer.{i}"] = np.tanh(list(text.values())[-1] @ rng.normal(size=(24, 24)) / 4) + 0.1
    for name in ("minilm_templates", "minilm_sst2"):
        stores[name] = write_store(tmp_path / name, text, samples)
    for depth, k in ((20, 3), (56, 5)):
        conv = {"conv1": x @ rng.normal(size=(12, 8))}
        for i in range(k):
            conv[f"layer{1 + i * 3 // k}.{i}"] = np.maximum(list(conv.values())[-1] @ rng.normal(size=(8, 8)), 0) + 0.01
        stores[f"resnet{depth}_cifar"] = write_store(tmp_path / f"resnet{depth}_cifar", conv, samples)
    db = ResultsDB(tmp_path / "r.duckdb", study="demo")
    ctx = DemoContext(workdir=tmp_path, db=db, stores=stores, extended=True, console=Console(quiet=True),
                      device="cpu")
    demo.run(ctx)
    frame = db.frame()
    sim = frame[frame.analysis == "similarity"]
    assert set(sim["store"]) == {"digits_mlp_s0 vs digits_mlp_s1", "digits_mlp_s0 vs digits_mlp_s2",
                                 "digits_mlp_s1 vs digits_mlp_s2", "minilm_templates",
                                 "resnet20_cifar vs resnet56_cifar", "minilm_sst2"}
    res = sim[sim.store == "resnet20_cifar vs resnet56_cifar"]
    assert set(res["metric"]) == {"linear_cka", "debiased_cka"} and len(res) == 2 * 4 * 6
    assert np.isfinite(sim["value"]).all()
    assert {"neuron_match", "stitching", "relative_stitching"} <= set(frame["analysis"])
    assert len(db.artifacts("neuron_match")) == 2
    html = build_report(db, tmp_path / "report.html").read_text()
    for title in ("Similarity: layer × layer", "Neuron matching", "Linear stitching", "zero-shot stitching"):
        assert title in html


def test_demo_step_skips_absent_stores(tmp_path):
    db = ResultsDB(tmp_path / "r.duckdb", study="demo")
    ctx = DemoContext(workdir=tmp_path, db=db, stores={}, extended=True, console=Console(quiet=True), device="cpu")
    demo.run(ctx)
    assert len(db.frame()) == 0
