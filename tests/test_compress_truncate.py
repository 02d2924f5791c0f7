"""Truncation analysis (MRL / 2DMSE grid): planted isotropic-plus-low-rank signal, summary, bad input."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from repscope.compress.evaluate import eval_plan
from repscope.compress.truncate import PCABasis, prefix_dims, truncate_store, truncation_grid
from repscope.errors import ConfigError, DataError
from repscope.store import write_store

RANK = 4


def _planted(n=800, d=128, seed=0):
    """Labels live in a rank-4 signal (strong variance) hidden by a random rotation in isotropic noise."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    centers = rng.normal(size=(4, RANK)) * 4.0  # per raw coordinate the signal is weak
    signal = centers[y] + rng.normal(size=(n, RANK))
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    x = np.concatenate([signal, rng.normal(size=(n, d - RANK))], 1) @ q.T
    return x.astype(np.float32), y


@pytest.fixture(scope="module")
def planted_store(tmp_path_factory):
    x, y = _planted()
    split = np.where(np.arange(len(y)) % 4 == 0, "test", "train")
    samples = pd.DataFrame({"id": np.arange(len(y)), "label": y, "split": split})
    return write_store(tmp_path_factory.mktemp("tr") / "planted", {"noise": np.random.default_rng(1).normal(
        size=x.shape).astype(np.float32), "signal": x}, samples=samples, chunk_rows=256)


def test_pca_keeps_probe_score_at_rank_while_raw_drops():
    x, y = _planted()
    plan = eval_plan(pd.DataFrame({"label": y}), len(y), target="label", seed=0)
    g = truncation_grid(x, plan, dims=[RANK, 8], bases="raw,pca", device="cpu")
    acc = g[g["metric"] == "accuracy"].set_index(["basis", "dim"])["value"]
    full = acc[("raw", 128)]
    assert full > 0.9
    assert acc[("pca", RANK)] >= full - 0.02  # PCA keeps the score at m = rank
    assert acc[("raw", RANK)] < full - 0.3  # raw truncation loses it
    r10 = g[g["metric"] == "recall@10"].set_index(["basis", "dim"])["value"]
    assert r10[("pca", RANK)] > r10[("raw", RANK)]


def test_pca_basis_is_fit_on_fit_rows_only():
    x, _ = _planted(n=200)
    a = PCABasis().fit(x[:100])
    b = PCABasis().fit(x)
    assert not torch.allclose(a.components_[:, 0].abs(), b.components_[:, 0].abs(), atol=1e-3)
    z = a.transform(x[:100]).double()
    cov = z.T @ z / 99
    assert torch.allclose(cov, torch.diag(torch.diagonal(cov)), atol=1e-3)  # decorrelated on its fit rows


def test_store_grid_rows_and_summary(planted_store):
    res = truncate_store(planted_store, target="label", dims=[4, 16], device="cpu")
    df = res.frame()
    grid = df[df["analysis"] == "truncate"]
    assert set(grid["layer"]) == {"noise", "signal"}
    assert set(grid["layer_index"]) == {0, 1}
    assert {p["dim"] for p in grid["params"]} == {4, 16, 128}
    assert {p["basis"] for p in grid["params"]} == {"raw", "pca"}
    assert all(p["bytes_per_vector"] == 4 * p["dim"] for p in grid["params"])
    summ = df[(df["analysis"] == "truncate_summary") & (df["metric"] == "accuracy@95%")]
    pca = summ[[p["basis"] == "pca" for p in summ["params"]]].iloc[0]
    assert pca["layer"] == "signal" and pca["value"] == 4 and pca["params"]["bytes_per_vector"] == 16
    raw = summ[[p["basis"] == "raw" for p in summ["params"]]].iloc[0]
    assert raw["value"] > 4


def test_bad_input_is_one_line(planted_store):
    with pytest.raises(DataError, match="prefix dim 256 is larger than the layer width d=128"):
        truncate_store(planted_store, dims=[8, 256])
    with pytest.raises(ConfigError, match="unknown basis 'ica'"):
        truncate_store(planted_store, bases="raw,ica")
    with pytest.raises(DataError, match="target column 'topic'"):
        truncate_store(planted_store, target="topic")
    assert prefix_dims(100) == [8, 16, 32, 64, 100]


def test_non_numeric_sts_score_is_one_line(tmp_path):
    samples = pd.DataFrame({"id": range(8), "pair": [0, 1, 2, 3] * 2, "side": [0] * 4 + [1] * 4,
                            "score": ["1", "2", "x", "4"] * 2})
    with pytest.raises(DataError, match="STS score 'x' is not a number"):
        eval_plan(samples, 8, seed=0)


def test_max_rows_caps_fit_and_eval_rows(planted_store):
    res = truncate_store(planted_store, layers="signal", dims=[4], bases="pca", max_rows=100, device="cpu")
    p = res.frame()["params"].iloc[0]
    assert p["n_fit"] == 100 and p["n_eval"] == 100 and p["split"] == "split"
