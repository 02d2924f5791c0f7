"""Quantizers: round-trip shapes and bit counts, RVQ error vs stages, QLAE codebook values, references."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from repscope.dictionary import metrics as M
from repscope.dictionary.quantize import (
    BinaryQuantizer,
    KMeansQuantizer,
    ProductQuantizer,
    ResidualVQ,
    ScalarQuantizer,
    VectorQuantizer,
    make_quantizer,
)
from repscope.errors import ConfigError, DataError

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matmuls: 1 thread is faster


@pytest.fixture(scope="module")
def X():
    rng = np.random.default_rng(0)
    return (rng.normal(size=(3000, 24)) @ rng.normal(size=(24, 24))).astype(np.float32)


@pytest.mark.parametrize("q, code_shape, bits", [
    (KMeansQuantizer(32, n_iter=30), (), 5),
    (VectorQuantizer(32, n_epochs=2), (), 5),
    (ResidualVQ(3, 16, n_iter=20), (3,), 12),
    (ProductQuantizer(n_subspaces=6, bits_per_subspace=4, n_iter=20), (6,), 24),
    (ScalarQuantizer(8, n_iter=10), (24,), 72),
    (BinaryQuantizer(), (24,), 24),
])
def test_round_trip_shapes_and_bits(X, q, code_shape, bits):
    q.fit(X)
    codes = q.encode(X[:100])
    assert codes.shape == (100, *code_shape)
    assert np.issubdtype(codes.dtype, np.integer)
    assert codes.min() >= 0 and codes.max() < q.n_codes
    out = q.decode(codes)
    assert out.shape == (100, 24) and out.dtype == np.float32
    assert q.bits_per_vector() == pytest.approx(bits)
    # bits are what the codes can hold: (number of code slots) × log2(codebook size)
    assert q.bits_per_vector() == pytest.approx(max(1, int(np.prod(code_shape))) * math.log2(q.n_codes))
    assert np.allclose(q.transform(X[:100]), out)
    # torch in, torch out
    assert isinstance(q.encode(torch.from_numpy(X[:5])), torch.Tensor)
    ev = q.evaluate(X)
    assert 0 < ev["fvu"] < 1 and 0 < ev["codebook_usage"] <= 1 and 1 <= ev["perplexity"] <= q.n_codes


def test_rvq_error_falls_with_stages(X):
    rvq = ResidualVQ(n_stages=5, n_codes=16, n_iter=30).fit(X)
    errs = [M.mse(X, rvq.decode(rvq.encode(X, n_stages=s))) for s in range(1, 6)]
    assert all(a > b for a, b in zip(errs, errs[1:], strict=False))


def test_pq_bits_budget_and_better_than_fewer_bits(X):
    q64 = make_quantizer("pq", bits=48, dim=24)
    q64.fit(X)
    assert q64.bits_per_vector() == 48 and q64.encode(X[:3]).shape == (3, 6)
    q16 = make_quantizer("pq", bits=16, dim=24).fit(X)
    assert M.fvu(X, q64.transform(X)) < M.fvu(X, q16.transform(X))
    with pytest.raises(ConfigError):
        make_quantizer("pq", bits=8 * 30, dim=24).fit(X)


def test_scalar_codes_take_only_codebook_values(X):
    q = ScalarQuantizer(n_levels=5).fit(X)
    out = q.decode(q.encode(X))
    levels = q.levels_.numpy()
    assert levels.shape == (24, 5)
    for j in range(24):
        assert np.isin(out[:, j], levels[j]).all()
    # each value is quantized to its nearest level of its own dimension
    j = 3
    nearest = levels[j][np.abs(X[:, j:j + 1] - levels[j][None]).argmin(1)]
    assert np.array_equal(out[:, j], nearest)


def test_kmeans_close_to_sklearn(X):
    from sklearn.cluster import KMeans

    ref = KMeans(32, n_init=3, random_state=0).fit(X).inertia_ / len(X)
    mine = M.mse(X, KMeansQuantizer(32, n_iter=100).fit(X).transform(X))
    assert mine <= 1.05 * ref


def test_vq_dead_code_reset_revives_codes():
    rng = np.random.default_rng(1)
    centers = rng.normal(size=(4, 4)) * 10
    # 64 codes seeded on rows of only 4 tight clusters: near-duplicate codes lose every row to one twin and starve
    init = (centers[rng.integers(0, 4, 3000)] + rng.normal(size=(3000, 4)) * 0.05).astype(np.float32)
    q = VectorQuantizer(64, n_epochs=4, seed=0).fit(init)
    assert q.n_resets_ > 0  # 64 codes on 4 tight clusters: most starve and are reset
    off = VectorQuantizer(64, n_epochs=4, dead_threshold=0.0, seed=0).fit(init)
    assert off.n_resets_ == 0
    # reset codes sit on data rows, never far away: reconstruction is no worse than without resets
    assert M.mse(init, q.transform(init)) <= M.mse(init, off.transform(init)) + 1e-3


def test_binary_decode_is_per_dimension_optimal(X):
    q = BinaryQuantizer().fit(X)
    b = q.encode(X).astype(bool)
    mu = X.mean(0)
    # for fixed signs the L2-optimal magnitude is the mean absolute deviation (closed form)
    s = np.abs(X - mu).mean(0)
    assert np.allclose(q.decode(b.astype(np.int64)), np.where(b, mu + s, mu - s), atol=1e-5)


def test_codebook_metrics_closed_forms():
    assert M.perplexity(np.arange(8), 8) == pytest.approx(8.0)
    assert M.perplexity(np.zeros(10, int), 8) == pytest.approx(1.0)
    assert M.codebook_usage(np.array([0, 1, 1, 3]), 8) == pytest.approx(3 / 8)


def test_bad_input():
    with pytest.raises(DataError):
        KMeansQuantizer(4).fit(np.zeros((0, 3)))
    with pytest.raises(ConfigError):
        KMeansQuantizer(4).encode(np.zeros((2, 3)))
    with pytest.raises(ConfigError):
        make_quantizer("nope")
    with pytest.raises(ConfigError):
        make_quantizer("kmeans", bits=64)


def test_store_quantizer_evaluates_a_recorded_capped_subset(tmp_path, monkeypatch):
    """`dictionary.runs.quantize_store` fits and evaluates on at most QUANTIZE_MAX_ROWS seeded rows each (counts in
    params), and its metrics equal the quantizer's own evaluation on exactly those held-out rows."""
    import numpy as np
    import pandas as pd

    from repscope.dictionary import runs
    from repscope.selection import subset_rows
    from repscope.store import write_store

    x = np.random.default_rng(0).normal(size=(3000, 16)).astype(np.float32)
    store = write_store(tmp_path / "s", {"h": x}, pd.DataFrame({"id": np.arange(3000)}), provenance={"model": "t"})
    monkeypatch.setattr(runs, "QUANTIZE_MAX_ROWS", 120)
    res = runs.quantize_store(store, "h", method="scalar", bits=64, holdout_every=5, device="cpu")
    p = res.params
    _, test_rows = runs.holdout_rows(3000, 5)
    assert p["n_fit"] == p["n_eval"] == 120 and len(test_rows) == 600
    direct = res.quantizer.evaluate(torch.as_tensor(x[subset_rows(test_rows, 120, 1)]))
    assert res.metrics == pytest.approx(direct, rel=1e-12)
