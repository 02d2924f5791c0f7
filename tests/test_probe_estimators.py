"""Probe estimators against independent references (scikit-learn), planted structure and sklearn compatibility."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
from sklearn.linear_model import LogisticRegression, Ridge, RidgeCV
from sklearn.model_selection import cross_val_score, train_test_split
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from repscope.errors import ConfigError, DataError, NonFiniteError
from repscope.probe import KNNProbe, LogisticProbe, NaiveBayesProbe, RidgeProbe, SparseProbe, knn_search


@pytest.fixture(scope="module")
def digits_split(digits_xy):
    X, y = digits_xy
    return train_test_split(X, y, test_size=0.3, random_state=0, stratify=y)


def _sst2(minilm_sst2):
    d = minilm_sst2
    return d["X_train"], d["X_test"], d["y_train"], d["y_test"]


# ---- logistic ---------------------------------------------------------------------------------------------------
def _check_logistic(Xtr, Xte, ytr, yte, C):
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=C, max_iter=5000)).fit(Xtr, ytr)
    probe = LogisticProbe(C=C, device="cpu").fit(Xtr, ytr)
    a_ref, a = ref.score(Xte, yte), probe.score(Xte, yte)
    assert abs(a - a_ref) <= 0.005, (C, a, a_ref)
    return probe, ref


@pytest.mark.parametrize("C", [0.05, 1.0])
def test_logistic_matches_sklearn_digits(digits_split, C):
    probe, ref = _check_logistic(*digits_split, C)
    # same objective → same optimum: coefficients agree closely (strongly convex problem)
    scale = np.abs(ref[-1].coef_).max()
    assert np.abs(probe.coef_ - ref[-1].coef_).max() < 0.05 * scale


@pytest.mark.shared
@pytest.mark.parametrize("C", [0.1, 1.0])
def test_logistic_matches_sklearn_sst2(minilm_sst2, C):
    _check_logistic(*_sst2(minilm_sst2), C)


def test_logistic_binary_uses_sklearn_binomial_objective(digits_split):
    Xtr, Xte, ytr, yte = digits_split
    mtr, mte = ytr < 2, yte < 2
    ref = make_pipeline(StandardScaler(), LogisticRegression(C=0.01, max_iter=5000)).fit(Xtr[mtr], ytr[mtr])
    probe = LogisticProbe(C=0.01, tol=1e-7, device="cpu").fit(Xtr[mtr], ytr[mtr])
    assert probe.coef_.shape == ref[-1].coef_.shape == (1, 64)
    np.testing.assert_allclose(probe.coef_, ref[-1].coef_, atol=2e-3 * np.abs(ref[-1].coef_).max())
    np.testing.assert_allclose(probe.predict_proba(Xte[mte]), ref.predict_proba(Xte[mte]), atol=1e-3)


def test_logistic_internal_cv_picks_from_grid(digits_split):
    Xtr, Xte, ytr, yte = digits_split
    grid = [1e-4, 1e-2, 1.0]
    p = LogisticProbe(Cs=grid, cv=3, device="cpu").fit(Xtr, ytr)
    assert p.C_ in grid and set(p.cv_scores_) == set(grid)
    # 1e-4 underfits badly on digits; CV must not choose it
    assert p.C_ != 1e-4 and p.cv_scores_[1e-4] < p.cv_scores_[p.C_]


# ---- naive Bayes / LDA ------------------------------------------------------------------------------------------
def _check_nb(Xtr, Xte, ytr, yte):
    probe = NaiveBayesProbe(device="cpu").fit(Xtr, ytr)
    ref32 = GaussianNB().fit(Xtr, ytr)  # sklearn keeps float32 input in float32
    np.testing.assert_array_equal(probe.predict(Xte), ref32.predict(Xte))
    ref = GaussianNB().fit(Xtr.astype(np.float64), ytr)
    np.testing.assert_array_equal(probe.predict(Xte), ref.predict(Xte.astype(np.float64)))
    np.testing.assert_allclose(probe.var_, ref.var_, rtol=1e-10)
    np.testing.assert_allclose(probe.predict_proba(Xte), ref.predict_proba(Xte.astype(np.float64)), atol=1e-9)


def test_nb_identical_to_gaussiannb_digits(digits_split):
    _check_nb(*digits_split)


@pytest.mark.shared
def test_nb_identical_to_gaussiannb_sst2(minilm_sst2):
    _check_nb(*_sst2(minilm_sst2))


def test_lda_variant_matches_sklearn_lda(digits_split):
    Xtr, Xte, ytr, _ = digits_split
    ref = LinearDiscriminantAnalysis(solver="lsqr", shrinkage=0.01).fit(Xtr, ytr)
    probe = NaiveBayesProbe(covariance="shared", shrinkage=0.01, device="cpu").fit(Xtr, ytr)
    np.testing.assert_array_equal(probe.predict(Xte), ref.predict(Xte))


# ---- kNN --------------------------------------------------------------------------------------------------------
def _check_knn(Xtr, Xte, ytr, metric, k, weights="uniform"):
    ref = KNeighborsClassifier(n_neighbors=k, metric=metric, weights=weights).fit(Xtr, ytr)
    probe = KNNProbe(n_neighbors=k, metric=metric, weights=weights, chunk_size=97, device="cpu").fit(Xtr, ytr)
    np.testing.assert_array_equal(probe.predict(Xte), ref.predict(Xte))
    d_ref, _ = ref.kneighbors(Xte[:50])
    d, _ = probe.kneighbors(Xte[:50])
    np.testing.assert_allclose(d, d_ref, atol=1e-3 * max(1.0, d_ref.max()))


@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
@pytest.mark.parametrize("k", [1, 4, 10])
def test_knn_identical_to_sklearn_digits(digits_split, metric, k):
    Xtr, Xte, ytr, _ = digits_split
    _check_knn(Xtr, Xte, ytr, metric, k)


def test_knn_distance_weights_identical_to_sklearn(digits_split):
    Xtr, Xte, ytr, _ = digits_split
    _check_knn(Xtr, Xte, ytr, "euclidean", 7, weights="distance")


@pytest.mark.shared
@pytest.mark.parametrize("metric", ["euclidean", "cosine"])
def test_knn_identical_to_sklearn_sst2(minilm_sst2, metric):
    Xtr, Xte, ytr, _ = _sst2(minilm_sst2)
    _check_knn(Xtr, Xte, ytr, metric, 10)


def test_knn_tie_break_prefers_lower_index():
    g = np.array([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0], [0.0, -1.0]], dtype=np.float32)  # all at distance 1
    import torch

    d, i = knn_search(torch.zeros(1, 2), torch.as_tensor(g), k=2, metric="euclidean")
    assert i.tolist() == [[0, 1]] and np.allclose(d.numpy(), 1.0)


def test_knn_temperature_vote_matches_formula(digits_split):
    Xtr, Xte, ytr, _ = digits_split
    k, T = 10, 0.07
    probe = KNNProbe(n_neighbors=k, metric="cosine", weights="temperature", temperature=T, device="cpu",
                     dtype="float64").fit(Xtr, ytr)
    # straightforward reference: cosine similarities, top-k, Σ exp(s/T) per class
    a = Xte.astype(np.float64) / np.linalg.norm(Xte.astype(np.float64), axis=1, keepdims=True)
    b = Xtr.astype(np.float64) / np.linalg.norm(Xtr.astype(np.float64), axis=1, keepdims=True)
    s = a @ b.T
    top = np.argsort(-s, axis=1, kind="stable")[:, :k]
    votes = np.zeros((len(Xte), 10))
    for r in range(len(Xte)):
        for j in top[r]:
            votes[r, ytr[j]] += np.exp(s[r, j] / T)
    np.testing.assert_allclose(probe.predict_proba(Xte), votes / votes.sum(1, keepdims=True), atol=1e-8)


# ---- sparse -----------------------------------------------------------------------------------------------------
def test_sparse_k_equals_d_is_dense_probe(digits_split):
    Xtr, Xte, ytr, _ = digits_split
    sp = SparseProbe(k=64, C=0.5, device="cpu").fit(Xtr, ytr)
    dense = LogisticProbe(C=0.5, device="cpu").fit(Xtr, ytr)
    assert sorted(sp.features_.tolist()) == list(range(64))
    np.testing.assert_array_equal(sp.predict(Xte), dense.predict(Xte))
    np.testing.assert_allclose(sp.coef_, dense.coef_, atol=1e-6)


@pytest.mark.parametrize("method", ["mean_diff", "l1"])
def test_sparse_k1_finds_planted_neuron(method):
    rng = np.random.default_rng(3)
    n, d, planted = 400, 501, 137
    y = rng.integers(0, 2, n)
    X = rng.normal(size=(n, d))
    X[:, planted] += 1.2 * (2 * y - 1)
    p = SparseProbe(k=1, method=method, device="cpu").fit(X, y)
    assert p.features_.tolist() == [planted]
    assert p.score(X, y) > 0.8


def test_sparse_multiclass_planted_neuron():
    rng = np.random.default_rng(4)
    y = rng.integers(0, 3, 450)
    X = rng.normal(size=(450, 500))
    X[:, 42] += 1.5 * y
    assert SparseProbe(k=1, device="cpu").fit(X, y).features_.tolist() == [42]


# ---- ridge ------------------------------------------------------------------------------------------------------
def test_ridge_matches_sklearn_and_loo_alpha():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(200, 30)) * rng.uniform(0.5, 3, size=30)
    y = X[:, :5] @ rng.normal(size=5) + 0.5 * rng.normal(size=200)
    ref = make_pipeline(StandardScaler(), Ridge(alpha=3.0)).fit(X, y)
    probe = RidgeProbe(alpha=3.0, device="cpu").fit(X, y)
    np.testing.assert_allclose(probe.coef_, ref[-1].coef_, rtol=1e-8, atol=1e-10)
    np.testing.assert_allclose(probe.predict(X[:7]), ref.predict(X[:7]), rtol=1e-8)
    assert abs(probe.score(X, y) - ref.score(X, y)) < 1e-10
    alphas = [0.01, 1.0, 30.0, 1000.0]
    cv = make_pipeline(StandardScaler(), RidgeCV(alphas=alphas)).fit(X, y)
    assert RidgeProbe(alphas=alphas, device="cpu").fit(X, y).alpha_ == cv[-1].alpha_
    from scipy.stats import spearmanr

    assert abs(probe.spearman(X, y) - spearmanr(probe.predict(X), y).statistic) < 1e-12


# ---- sklearn compatibility --------------------------------------------------------------------------------------
ESTIMATORS = [
    LogisticProbe(C=0.5, device="cpu"),
    NaiveBayesProbe(device="cpu"),
    NaiveBayesProbe(covariance="shared", device="cpu"),
    KNNProbe(n_neighbors=3, device="cpu"),
    SparseProbe(k=5, device="cpu"),
]


@pytest.mark.parametrize("est", ESTIMATORS, ids=lambda e: type(e).__name__ + getattr(e, "covariance", ""))
def test_clone_pipeline_cross_val(digits_xy, est):
    X, y = digits_xy
    X, y = X[:600], y[:600]
    c = clone(est)
    assert c.get_params() == est.get_params() and c is not est
    c.set_params(device="cpu")
    scores = cross_val_score(make_pipeline(StandardScaler(), clone(est)), X, y, cv=3)
    assert scores.shape == (3,) and scores.min() > 0.3  # 10 classes: chance is 0.1
    with pytest.raises(Exception, match="not fitted"):
        clone(est).predict(X)


def test_ridge_pipeline_cross_val():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 10))
    y = X[:, 0] * 2 + 0.1 * rng.normal(size=120)
    s = cross_val_score(make_pipeline(StandardScaler(), RidgeProbe(alpha=0.1, device="cpu")), X, y, cv=3)
    assert s.min() > 0.9


def test_bad_inputs_raise_one_line_errors():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(DataError):
        LogisticProbe(device="cpu").fit(X, np.zeros(20))
    with pytest.raises(ConfigError):
        KNNProbe(metric="manhattan", device="cpu").fit(X, np.arange(20) % 2)
    with pytest.raises(ConfigError):
        SparseProbe(k=10, device="cpu").fit(X, np.arange(20) % 2)
    Xn = X.copy()
    Xn[0, 0] = np.nan
    with pytest.raises(NonFiniteError):
        NaiveBayesProbe(device="cpu").fit(Xn, np.arange(20) % 2)


# ---- the one kNN engine (geometry/knn.py) behind KNNProbe -------------------------------------------------------
def _reference_knn(q: np.ndarray, g: np.ndarray, k: int, exclude_self: bool = False):
    """Float64 brute force ordered by (distance, gallery index): a stable argsort of exact integer distances."""
    d2 = ((q[:, None, :].astype(np.float64) - g[None, :, :]) ** 2).sum(-1)
    if exclude_self:
        np.fill_diagonal(d2, np.inf)
    order = np.argsort(d2, axis=1, kind="stable")[:, :k]
    return np.sqrt(np.take_along_axis(d2, order, 1)), order


@pytest.mark.parametrize("exclude_self", [False, True])
def test_knn_ties_go_to_lower_gallery_index_on_a_lattice(exclude_self):
    import torch

    rng = np.random.default_rng(7)
    g = rng.integers(-3, 4, size=(300, 5)).astype(np.float32)  # integer lattice: many exact ties, exact d²
    g = np.concatenate([g, np.repeat(g[:3], 10, axis=0)])  # 10 duplicates: ties across the candidate boundary
    q = g if exclude_self else rng.integers(-3, 4, size=(80, 5)).astype(np.float32)
    for k in (1, 4, 12):
        d, i = knn_search(torch.as_tensor(q), torch.as_tensor(g), k, metric="euclidean", chunk_size=37,
                          exclude_self=exclude_self)
        d_ref, i_ref = _reference_knn(q, g, k, exclude_self)
        np.testing.assert_array_equal(i.numpy(), i_ref)
        np.testing.assert_allclose(d.numpy(), d_ref, rtol=1e-12)


def test_knn_cosine_zero_rows_follow_sklearn():
    import torch
    from sklearn.metrics.pairwise import cosine_distances

    g = np.array([[1, 0, 0], [0, 0, 0], [0, 2, 0], [0, 0, 0], [3, 3, 0], [0, 0, -1]], dtype=np.float64)
    q = np.array([[0, 0, 0], [1, 1, 0], [0, 0, 5]], dtype=np.float64)
    ref = cosine_distances(q, g)  # a zero row is at distance 1 from everything
    order = np.argsort(ref, axis=1, kind="stable")
    d, i = knn_search(torch.as_tensor(q), torch.as_tensor(g), 6, metric="cosine")
    np.testing.assert_allclose(d.numpy(), np.take_along_axis(ref, order, 1), atol=1e-12)
    # equal distances: lower gallery index first (the rounding of 1 − cos may reorder values equal up to 1e-16)
    np.testing.assert_array_equal(i.numpy()[0], np.arange(6))


def test_knn_probe_and_geometry_share_one_engine(digits_split):
    import torch

    from repscope.geometry.knn import knn_distances

    Xtr = digits_split[0][:600]
    d_geo, i_geo = knn_distances(Xtr, 5, device="cpu", return_indices=True)
    d, i = knn_search(torch.as_tensor(Xtr), torch.as_tensor(Xtr), 5, metric="euclidean", exclude_self=True)
    np.testing.assert_array_equal(i.numpy(), i_geo.numpy())
    np.testing.assert_allclose(d.numpy(), d_geo.numpy(), rtol=1e-12)


def test_fit_predict_leave_torch_threads_unchanged(digits_split):
    import torch

    Xtr, Xte, ytr, _ = digits_split
    before = torch.get_num_threads()
    for est in (LogisticProbe(device="cpu"), NaiveBayesProbe(device="cpu"), KNNProbe(device="cpu")):
        est.fit(Xtr[:200], ytr[:200]).predict(Xte[:20])
        assert torch.get_num_threads() == before


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_knn_exact_on_a_narrow_cone(metric):
    """Anisotropic embeddings (all rows within a few degrees, as sentence embeddings often are): float32 ranking
    alone mis-orders neighbours here; the certified engine must match a float64 brute force."""
    import torch

    rng = np.random.default_rng(11)
    X = (30.0 * rng.normal(size=64) + rng.normal(size=(1500, 64))).astype(np.float32)
    q, g = X[:200].astype(np.float64), X[200:].astype(np.float64)
    if metric == "cosine":
        qn, gn = q / np.linalg.norm(q, axis=1, keepdims=True), g / np.linalg.norm(g, axis=1, keepdims=True)
        ref = 1.0 - qn @ gn.T
    else:
        ref = np.sqrt(((q[:, None, :] - g[None]) ** 2).sum(-1))
    order = np.argsort(ref, axis=1, kind="stable")[:, :7]
    d, i = knn_search(torch.as_tensor(X[:200]), torch.as_tensor(X[200:]), 7, metric=metric)
    np.testing.assert_array_equal(i.numpy(), order)
    np.testing.assert_allclose(d.numpy(), np.take_along_axis(ref, order, 1), rtol=1e-9, atol=1e-13)
