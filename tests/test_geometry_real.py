"""Geometry on real representations: MiniLM SST-2 embeddings and scikit-learn digits (references: skdim, sklearn)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from repscope.geometry.anisotropy import mean_cosine
from repscope.geometry.clusters import calinski_harabasz_score, davies_bouldin_score, silhouette_score
from repscope.geometry.intrinsic import mle_dimension, twonn_dimension


@pytest.mark.shared
def test_minilm_sst2_twonn_matches_skdim_and_clusters_match_sklearn(minilm_sst2):
    skdim = pytest.importorskip("skdim")
    x, y = minilm_sst2["X_train"].astype(np.float64), minilm_sst2["y_train"]
    ours = twonn_dimension(x, device="cpu")
    assert ours == pytest.approx(skdim.id.TwoNN().fit(x).dimension_, rel=0.02)
    assert 2 < ours < 100  # far below the 384 ambient dimensions
    assert silhouette_score(x, y, device="cpu") == pytest.approx(metrics.silhouette_score(x, y), rel=1e-6)
    assert davies_bouldin_score(x, y, device="cpu") == pytest.approx(metrics.davies_bouldin_score(x, y), rel=1e-6)
    assert 0.0 < mean_cosine(x, device="cpu") < 1.0


def test_digits_dimension_and_cluster_scores(digits_xy):
    skdim = pytest.importorskip("skdim")
    x, y = digits_xy
    x = x.astype(np.float64) + np.random.default_rng(0).normal(0, 1e-3, x.shape)  # break exact duplicates
    assert twonn_dimension(x, device="cpu") == pytest.approx(skdim.id.TwoNN().fit(x).dimension_, rel=0.02)
    assert 5 < mle_dimension(x, device="cpu") < 30
    assert calinski_harabasz_score(x, y, device="cpu") == pytest.approx(
        metrics.calinski_harabasz_score(x, y), rel=1e-9)
