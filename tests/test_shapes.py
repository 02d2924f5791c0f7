"""The procedural shapes generator: deterministic bytes, addressable combinations, factors recoverable from pixels."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from repscope.errors import ConfigError
from repscope.sources.shapes import (
    FACTOR_SIZES,
    FACTORS,
    N_COMBINATIONS,
    factors_to_index,
    index_to_factors,
    render,
    shapes_dataset,
)


def test_deterministic_bytes() -> None:
    a, b = shapes_dataset(64, seed=3), shapes_dataset(64, seed=3)
    assert hashlib.sha256(a.x.numpy().tobytes()).digest() == hashlib.sha256(b.x.numpy().tobytes()).digest()
    assert a.samples.equals(b.samples)
    c = shapes_dataset(64, seed=4)
    assert not np.array_equal(a.samples["combination"], c.samples["combination"])


def test_dataset_layout() -> None:
    ds = shapes_dataset(50, seed=0)
    assert ds.modality == "image" and tuple(ds.x.shape) == (50, 64, 64) and ds.x.dtype.is_floating_point is False
    assert set(FACTORS) <= set(ds.samples.columns)
    assert ds.samples["combination"].is_unique  # distinct combinations
    assert (index_to_factors(ds.samples["combination"].to_numpy()) == ds.samples[list(FACTORS)].to_numpy()).all()
    with pytest.raises(ConfigError, match="shapes\\[:N\\] needs 1 ≤ N"):
        shapes_dataset(N_COMBINATIONS + 1)


def test_every_combination_addressable() -> None:
    assert N_COMBINATIONS == 3 * 6 * 12 * 16 * 16
    assert FACTOR_SIZES[1] == 6 and FACTOR_SIZES[2] >= 10 and min(FACTOR_SIZES[3:]) >= 16
    idx = np.arange(N_COMBINATIONS)
    f = index_to_factors(idx)
    assert (factors_to_index(f) == idx).all()
    assert len({tuple(r) for r in f[::97]}) == len(f[::97])
    assert index_to_factors(N_COMBINATIONS - 1).tolist() == [[s - 1 for s in FACTOR_SIZES]]


def test_rendering_follows_the_factors() -> None:
    # centre of mass follows pos_x / pos_y; area grows with scale; a square covers more than an ellipse
    base = np.array([0, 5, 0, 3, 12])
    img = render(base[None])[0].astype(float)
    ys, xs = np.nonzero(img)
    assert np.average(xs, weights=img[ys, xs]) + 0.5 == pytest.approx(14 + 3 * 36 / 15, abs=0.6)
    assert np.average(ys, weights=img[ys, xs]) + 0.5 == pytest.approx(14 + 12 * 36 / 15, abs=0.6)
    assert img.sum() / 255 == pytest.approx(20.0**2, rel=0.03)  # square of half-size 10 px: 400 px²
    ellipse = render(np.array([[1, 5, 0, 3, 12]]))[0].sum() / 255
    assert ellipse == pytest.approx(np.pi * 10 * 5, rel=0.05)
    small = render(np.array([[0, 0, 0, 3, 12]]))[0].sum() / 255
    assert small == pytest.approx(10.0**2, rel=0.05)


def test_logistic_probe_recovers_factors() -> None:
    from sklearn.linear_model import LogisticRegression
    from threadpoolctl import threadpool_limits

    ds = shapes_dataset(1500, seed=0)
    # 4×4 average-pooled pixels (256 features) keep the probe fast; a logistic readout of pixels, nothing else
    x = ds.x.numpy().astype(np.float32).reshape(len(ds.x), 16, 4, 16, 4).mean(axis=(2, 4)).reshape(len(ds.x), -1)
    x /= 255.0
    tr, te = slice(0, 1000), slice(1000, None)
    acc, near = {}, {}
    with threadpool_limits(1):
        for factor in ("shape", "pos_x", "pos_y"):
            y = ds.samples[factor].to_numpy()
            pred = LogisticRegression(C=100.0, max_iter=500).fit(x[tr], y[tr]).predict(x[te])
            acc[factor], near[factor] = np.mean(pred == y[te]), np.mean(np.abs(pred - y[te]) <= 1)
    assert acc["shape"] > 1 / 3 + 0.1, acc  # better than chance (1/3)
    for factor in ("pos_x", "pos_y"):  # 16 positions 2.4 px apart: chance 1/16
        assert acc[factor] > 0.85 and near[factor] > 0.98, (acc, near)
