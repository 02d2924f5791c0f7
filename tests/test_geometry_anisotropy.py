"""Anisotropy and rogue dimensions: closed forms, brute-force pair averages, planted outlier dimensions."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from repscope.geometry.anisotropy import cosine_contributions, mean_cosine, mean_cosine_standardized, rogue_dimensions


def _brute_mean_cosine(x: np.ndarray) -> float:
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    return float(np.mean([u[i] @ u[j] for i, j in itertools.permutations(range(len(x)), 2)]))


def test_exact_mean_cosine_equals_all_pairs_average():
    x = np.random.default_rng(0).standard_normal((40, 6)) + 0.7
    assert mean_cosine(x, device="cpu") == pytest.approx(_brute_mean_cosine(x), rel=1e-10)
    assert cosine_contributions(x, device="cpu").sum().item() == pytest.approx(_brute_mean_cosine(x), rel=1e-10)


def test_sampled_pairs_estimate_the_same_expectation():
    x = np.random.default_rng(1).standard_normal((500, 16)) + 0.5
    exact = mean_cosine(x, device="cpu")
    assert mean_cosine(x, n_pairs=200_000, seed=3, device="cpu") == pytest.approx(exact, abs=0.01)


def test_isotropic_gaussian_near_zero_and_offset_near_one():
    x = np.random.default_rng(2).standard_normal((3000, 64))
    assert abs(mean_cosine(x, device="cpu")) < 0.01
    shifted = x + 50.0 * np.ones(64)
    assert mean_cosine(shifted, device="cpu") > 0.95
    # standardization removes a shared offset entirely
    assert abs(mean_cosine_standardized(shifted, device="cpu")) < 0.01


def test_rogue_dimension_planted():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((2000, 32))
    x[:, 17] += 30.0  # one outlier dimension with a large mean
    r = rogue_dimensions(x, top=3, device="cpu")
    assert r["top1_index"] == 17
    assert r["top1_share"] > 0.95
    assert mean_cosine(x, device="cpu") > 0.5
    assert abs(mean_cosine_standardized(x, device="cpu")) < 0.02


def test_rogue_shares_nan_when_isotropic():
    x = np.random.default_rng(4).standard_normal((1000, 16))
    assert np.isnan(rogue_dimensions(x, device="cpu")["top1_share"])
