"""Cluster separation: equality with scikit-learn, and hand computations for Dunn and Xie–Beni."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics

from repscope.errors import DataError
from repscope.geometry.clusters import (
    calinski_harabasz_score,
    davies_bouldin_score,
    dunn_index,
    silhouette_score,
    xie_beni_index,
)


@pytest.fixture(scope="module")
def blobs():
    from sklearn.datasets import make_blobs

    x, y = make_blobs(n_samples=300, centers=4, n_features=7, cluster_std=2.5, random_state=0)
    return x + 100.0, y  # far from the origin, to exercise centring


@pytest.mark.parametrize("chunk", [None, 37])
def test_silhouette_equals_sklearn(blobs, chunk):
    x, y = blobs
    assert silhouette_score(x, y, device="cpu", chunk_rows=chunk) == pytest.approx(
        metrics.silhouette_score(x, y), rel=1e-9)


def test_silhouette_with_singleton_cluster_and_string_labels():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((30, 3))
    y = np.array(["a"] * 14 + ["b"] * 15 + ["c"])
    assert silhouette_score(x, y, device="cpu") == pytest.approx(metrics.silhouette_score(x, y), rel=1e-9)


def test_davies_bouldin_and_calinski_harabasz_equal_sklearn(blobs):
    x, y = blobs
    assert davies_bouldin_score(x, y, device="cpu") == pytest.approx(metrics.davies_bouldin_score(x, y), rel=1e-9)
    assert calinski_harabasz_score(x, y, device="cpu") == pytest.approx(
        metrics.calinski_harabasz_score(x, y), rel=1e-9)


def test_dunn_and_xie_beni_by_hand():
    # 1-D: cluster A = {0, 1}, cluster B = {4, 6}
    x = np.array([[0.0], [1.0], [4.0], [6.0]])
    y = np.array([0, 0, 1, 1])
    # Dunn: closest points of different clusters 1 and 4 → 3; largest diameter: B, 6 − 4 = 2
    assert dunn_index(x, y, device="cpu") == pytest.approx(3 / 2)
    # Xie–Beni: centroids 0.5, 5; Σ‖x − c‖² = 0.25 + 0.25 + 1 + 1 = 2.5; n = 4; min ‖cᵢ − cⱼ‖² = 4.5² = 20.25
    assert xie_beni_index(x, y, device="cpu") == pytest.approx(2.5 / (4 * 20.25))


def test_dunn_and_xie_beni_2d_by_hand():
    # three 2-D clusters on a right triangle
    x = np.array([[0, 0], [0, 1], [10, 0], [10, 2], [0, 8], [1, 8]], dtype=float)
    y = np.array([0, 0, 1, 1, 2, 2])
    # inter-cluster minimum: (0,1)–(0,8) = 7; diameters 1, 2, 1
    assert dunn_index(x, y, device="cpu", chunk_rows=2) == pytest.approx(7 / 2)
    # centroids (0,.5), (10,1), (.5,8); compactness .25·2 + 1·2 + .25·2 = 3
    c = np.array([[0, 0.5], [10, 1], [0.5, 8]])
    sep = min(((c[i] - c[j]) ** 2).sum() for i in range(3) for j in range(3) if i != j)
    assert sep == pytest.approx(0.25 + 56.25)
    assert xie_beni_index(x, y, device="cpu") == pytest.approx(3 / (6 * sep))


def test_separation_orders_well_and_badly_separated():
    from sklearn.datasets import make_blobs

    tight, y1 = make_blobs(400, centers=3, n_features=5, cluster_std=0.5, random_state=1)
    loose, y2 = make_blobs(400, centers=3, n_features=5, cluster_std=6.0, random_state=1)
    assert dunn_index(tight, y1, device="cpu") > dunn_index(loose, y2, device="cpu")
    assert xie_beni_index(tight, y1, device="cpu") < xie_beni_index(loose, y2, device="cpu")


def test_one_label_is_rejected():
    with pytest.raises(DataError):
        silhouette_score(np.zeros((5, 2)), np.zeros(5))


def test_cluster_scores_bundle_matches_single_functions(blobs):
    from repscope.geometry.clusters import cluster_scores

    x, y = blobs
    got = cluster_scores(x, y, device="cpu")
    assert got["silhouette"] == pytest.approx(metrics.silhouette_score(x, y), rel=1e-9)
    assert got["dunn"] == pytest.approx(dunn_index(x, y, device="cpu", chunk_rows=50), rel=1e-12)
    assert got["xie_beni"] == pytest.approx(xie_beni_index(x, y, device="cpu"), rel=1e-12)
