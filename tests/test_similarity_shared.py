"""Similarity on real MiniLM SST-2 embeddings (needs ../shared/data; skipped with the reason when absent)."""

from __future__ import annotations

import numpy as np
import pytest

from repscope.similarity import debiased_cka, linear_cka, zero_shot_stitching


@pytest.mark.shared
def test_minilm_embeddings_align_with_sentiment_labels(minilm_sst2):
    x, y = minilm_sst2["X_train"].astype(np.float64), minilm_sst2["y_train"]
    onehot = np.eye(int(y.max()) + 1)[y]
    shuffled = onehot[np.random.default_rng(0).permutation(len(y))]
    real, null = debiased_cka(x, onehot, "cpu"), debiased_cka(x, shuffled, "cpu")
    assert real > 0.05  # the embedding geometry carries sentiment
    assert abs(null) < 0.02  # the debiased estimator is ≈ 0 for unrelated labels …
    assert linear_cka(x, shuffled, "cpu") > abs(null)  # … where the biased one is not


@pytest.mark.shared
def test_relative_representation_transfers_across_an_isometric_model(minilm_sst2):
    from scipy.stats import ortho_group

    x, y = minilm_sst2["X_train"].astype(np.float64), minilm_sst2["y_train"]
    other = 0.5 * x @ ortho_group.rvs(x.shape[1], random_state=0)  # same geometry, different basis and scale
    res = zero_shot_stitching(x, other, y, n_anchors=128, device="cpu")
    assert res["acc_a_to_a"] > 0.7  # MiniLM mean-pooled embeddings separate SST-2 sentiment well above chance
    assert res["acc_a_to_b"] == pytest.approx(res["acc_a_to_a"], abs=1e-9)
    assert res["acc_abs_a_to_b"] < res["acc_a_to_b"] - 0.1
