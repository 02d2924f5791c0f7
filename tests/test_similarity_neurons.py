"""Neuron matching, Lasso one-to-many, relative representations and linear stitching on planted structure."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from repscope.similarity.neurons import lasso_one_to_many, match_neurons, neuron_correlations
from repscope.similarity.relative import relative_representation, zero_shot_stitching
from repscope.similarity.stitching import LinearStitch, stitching_score


def test_hungarian_matching_recovers_a_planted_permutation():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(300, 12))
    perm = rng.permutation(12)
    y = x[:, perm] * rng.uniform(0.5, 3, 12) + 0.3 * rng.normal(size=(300, 12)) + 4.0
    y[:, 0] = 1.0  # a dead (constant) neuron: correlation 0, not NaN
    c = neuron_correlations(x, y, "cpu")
    ref = np.corrcoef(x.T, y[:, 1:].T)[:12, 12:]
    assert np.allclose(c[:, 1:], ref, atol=1e-9) and np.all(c[:, 0] == 0)
    m = match_neurons(x, y, "cpu")
    mapping = dict(zip(m.a_idx, m.b_idx, strict=True))
    for j in range(1, 12):  # B's neuron j copies A's neuron perm[j]
        assert mapping[perm[j]] == j
    assert np.all(np.diff(m.curve) <= 0) and m.curve[-1] == pytest.approx(0.0, abs=1e-12)
    assert m.best[0] >= m.curve[0] and 0.8 < m.mean < 1.0


def test_lasso_finds_sparse_one_to_many_maps():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 20))
    y = np.stack([x[:, 0] + x[:, 1], 2 * x[:, 5] - x[:, 7] + x[:, 9]], axis=1) + 0.05 * rng.normal(size=(400, 2))
    res = lasso_one_to_many(x, y, alpha=0.01)
    assert np.all(res.r2 > 0.95)
    assert res.nonzero.tolist()[0] <= 6 and res.nonzero.tolist()[1] <= 8
    noise = lasso_one_to_many(x, rng.normal(size=(400, 2)), alpha=0.05)
    assert np.all(noise.r2 < 0.1)


def _labelled(n=600, d=16, seed=0):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    means = rng.normal(size=(3, d)) * 2.0
    return means[y] + rng.normal(size=(n, d)), y


def test_relative_representation_is_cosine_and_enables_zero_shot_stitching():
    a, y = _labelled()
    anchors = a[:5]
    ref = (a / np.linalg.norm(a, axis=1, keepdims=True)) @ (anchors / np.linalg.norm(anchors, axis=1)[:, None]).T
    assert np.allclose(relative_representation(a, anchors, "cpu").numpy(), ref, atol=1e-12)
    b = 3.0 * a @ ortho_group.rvs(16, random_state=2)  # another "model": rotated, rescaled latent space
    res = zero_shot_stitching(a, b, y, n_anchors=40, device="cpu")
    assert res["acc_a_to_b"] == pytest.approx(res["acc_a_to_a"], abs=1e-9)  # relative reps are identical
    assert res["acc_a_to_a"] > 0.9
    assert res["acc_abs_a_to_b"] < res["acc_a_to_b"] - 0.2  # the absolute space does not transfer


def test_linear_stitching_recovers_affine_and_orthogonal_maps():
    a, y = _labelled(seed=3)
    rng = np.random.default_rng(4)
    w = rng.normal(size=(16, 10))
    b_aff = a @ w + 7.0
    res = stitching_score(a, b_aff, y, kind="affine", device="cpu")
    assert res["r2"] > 0.999999
    assert res["acc_stitched"] == pytest.approx(res["acc_b"], abs=1e-9)
    q = ortho_group.rvs(16, random_state=5)
    b_rot = 2.5 * a @ q - 1.0
    st = LinearStitch("orthogonal", device="cpu").fit(a, b_rot)
    assert st.score(a, b_rot) > 0.999999
    assert np.allclose(st.weight_.numpy(), 2.5 * q, atol=1e-8)
    # a non-orthogonal map is fit worse by the orthogonal stitch than by the affine one
    r2_orth = LinearStitch("orthogonal", device="cpu").fit(a, b_aff[:, :10]).score(a, b_aff[:, :10])
    assert r2_orth < 0.99 < LinearStitch("affine", device="cpu").fit(a, b_aff).score(a, b_aff)
