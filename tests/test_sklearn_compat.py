"""scikit-learn compatibility of every repscope estimator: scikit-learn's own estimator checks, and use inside
Pipeline / GridSearchCV / cross_val_score / clone against scikit-learn's reference estimators on real data."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import sparse
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression, Ridge
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_val_score
from sklearn.naive_bayes import GaussianNB
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils.estimator_checks import parametrize_with_checks

from repscope.dictionary.quantize import (
    BinaryQuantizer,
    KMeansQuantizer,
    ProductQuantizer,
    ResidualVQ,
    ScalarQuantizer,
    VectorQuantizer,
)
from repscope.dictionary.sae import SAE
from repscope.errors import DataError
from repscope.probe import KNNProbe, LogisticProbe, NaiveBayesProbe, RidgeProbe, SparseProbe

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # the checks fit on tiny arrays: one thread is faster

CLASSIFIERS = [
    LogisticProbe(device="cpu"),
    NaiveBayesProbe(device="cpu"),
    NaiveBayesProbe(covariance="shared", device="cpu"),  # the LDA probe
    KNNProbe(device="cpu"),
    SparseProbe(device="cpu"),
]
TRANSFORMERS = [
    SAE(device="cpu"),
    KMeansQuantizer(device="cpu"),
    VectorQuantizer(device="cpu"),
    ResidualVQ(device="cpu"),
    ProductQuantizer(device="cpu"),
    ScalarQuantizer(device="cpu"),
    BinaryQuantizer(device="cpu"),
]


def _registered_estimators() -> list:
    """An estimator of every registered probe and quantizer whose class the lists above do not hold, so that an entry
    added to a registry (CONTRIBUTING.md) gets the checks with no edit here."""
    from repscope.dictionary.quantize import METHODS, make_quantizer
    from repscope.probe.registry import PROBES, make_probe

    covered = {type(e) for e in [*CLASSIFIERS, RidgeProbe(device="cpu"), *TRANSFORMERS]}
    extra = []
    for est in [*(make_probe(n, device="cpu") for n in PROBES.names()),
                *(make_quantizer(n, dim=16, device="cpu") for n in METHODS.names())]:
        if type(est) not in covered:
            covered.add(type(est))
            extra.append(est)
    return extra


ALL = [*CLASSIFIERS, RidgeProbe(device="cpu"), *TRANSFORMERS, *_registered_estimators()]


# No expected_failed_checks: every check applies or is left out by the estimator's own declared tags
# (input_tags.sparse=False, transformer_tags.preserves_dtype=["float32"], SparseProbe's classifier_tags.poor_score).
@parametrize_with_checks(ALL)
def test_sklearn_estimator_checks(estimator, check, monkeypatch):
    # scikit-learn's numpy-namespace array-API check skips itself unless this variable is set; it only reads it
    # (scipy is already imported, so nothing else changes): set it so that check runs instead of skipping
    monkeypatch.setenv("SCIPY_ARRAY_API", "1")
    check(estimator)


def _name(est) -> str:
    return type(est).__name__ + getattr(est, "covariance", "")


# ---- GridSearchCV / cross_val_score against scikit-learn's own estimators on digits -----------------------------
@pytest.fixture(scope="module")
def digits(digits_xy):
    X, y = digits_xy
    return X[:900], y[:900]


CV = StratifiedKFold(3, shuffle=True, random_state=0)


def test_gridsearch_logistic_C_matches_sklearn(digits):
    X, y = digits[0][:600], digits[1][:600]
    grid = {"clf__C": [0.01, 0.1, 1.0]}
    ours = GridSearchCV(Pipeline([("sc", StandardScaler()), ("clf", LogisticProbe(device="cpu"))]), grid, cv=CV)
    ref = GridSearchCV(Pipeline([("sc", StandardScaler()), ("clf", LogisticRegression(max_iter=5000))]), grid, cv=CV)
    ours.fit(X, y)
    ref.fit(X, y)
    assert abs(ours.best_score_ - ref.best_score_) < 0.01, (ours.best_score_, ref.best_score_)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"], atol=0.015)
    assert ours.best_estimator_[-1].n_features_in_ == 64


def test_gridsearch_knn_identical_to_sklearn(digits):
    X, y = digits
    grid = {"n_neighbors": [1, 3, 8]}
    ours = GridSearchCV(KNNProbe(metric="euclidean", device="cpu"), grid, cv=CV).fit(X, y)
    ref = GridSearchCV(KNeighborsClassifier(), grid, cv=CV).fit(X, y)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"], atol=1e-12)
    assert ours.best_params_ == ref.best_params_


def test_cross_val_nb_identical_to_gaussiannb(digits):
    X, y = digits
    ours = cross_val_score(NaiveBayesProbe(device="cpu"), X, y, cv=CV)
    ref = cross_val_score(GaussianNB(), X, y, cv=CV)
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_gridsearch_ridge_alpha_matches_sklearn():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(150, 20)) * rng.uniform(0.5, 3, size=20)
    y = X[:, :4] @ rng.normal(size=4) + rng.normal(size=150)
    grid = {"alpha": [0.1, 10.0, 300.0]}
    ours = GridSearchCV(RidgeProbe(device="cpu"), grid, cv=3).fit(X, y)
    ref = GridSearchCV(make_pipeline(StandardScaler(), Ridge()), {"ridge__alpha": grid["alpha"]}, cv=3).fit(X, y)
    np.testing.assert_allclose(ours.cv_results_["mean_test_score"], ref.cv_results_["mean_test_score"], rtol=1e-8)


def test_pipeline_sae_then_probe(digits):
    X, y = digits
    pipe = Pipeline([("sc", StandardScaler()), ("sae", SAE(k=8, expansion=2, n_steps=150, batch_size=256,
                                                             device="cpu")),
                     ("clf", LogisticProbe(device="cpu"))])
    scores = cross_val_score(pipe, X, y, cv=CV)
    assert scores.min() > 0.8, scores  # 8-sparse codes of 128 latents keep digit identity (chance 0.1)
    fitted = clone(pipe).fit(X, y)
    assert fitted.named_steps["sae"].transform(StandardScaler().fit_transform(X)[:5]).shape == (5, 128)


def test_quantizer_score_in_gridsearch_planted_clusters():
    """8 planted tight clusters: k-means with 8 codes explains nearly all variance, 2 codes cannot."""
    rng = np.random.default_rng(2)
    centres = rng.normal(scale=5, size=(8, 6))
    X = (centres[rng.integers(0, 8, 400)] + 0.05 * rng.normal(size=(400, 6))).astype(np.float32)
    gs = GridSearchCV(KMeansQuantizer(n_iter=30, device="cpu"), {"n_codes": [2, 8]}, cv=3).fit(X)
    assert gs.best_params_ == {"n_codes": 8}
    assert gs.cv_results_["mean_test_score"][1] > 0.99 > 0.9 > gs.cv_results_["mean_test_score"][0]


@pytest.mark.parametrize("est", ALL, ids=_name)
def test_clone_gives_unfitted_copy_with_same_params(digits, est):
    X, y = digits
    fitted = clone(est).set_params(**({"n_steps": 5} if isinstance(est, SAE) else {})).fit(X[:200], y[:200])
    c = clone(fitted)
    assert c.get_params() == fitted.get_params() and c is not fitted
    assert not hasattr(c, "n_features_in_") and fitted.n_features_in_ == 64


# ---- behaviour the checks only sample: widths, sparse and tensor input, binary decision shape -------------------
@pytest.mark.parametrize("est", ALL, ids=_name)
@pytest.mark.parametrize("as_tensor", [False, True])
def test_wrong_width_names_both_widths(digits, est, as_tensor):
    X, y = digits
    est = clone(est).set_params(**({"n_steps": 5} if isinstance(est, SAE) else {})).fit(X[:200], y[:200])
    bad = X[:10, :40]
    bad = torch.as_tensor(bad) if as_tensor else bad
    method = getattr(est, "predict", None) or est.transform
    with pytest.raises(DataError, match="X has 40 features, but .* is expecting 64 features"):
        method(bad)


@pytest.mark.parametrize("est", ALL, ids=_name)
def test_sparse_input_is_refused_in_one_line(digits, est):
    X, y = digits
    with pytest.raises(DataError, match="sparse") as err:
        clone(est).fit(sparse.csr_matrix(X[:100]), y[:100])
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("est", CLASSIFIERS, ids=_name)
def test_binary_decision_function_is_a_margin(digits, est):
    X, y = digits
    m = y < 2
    e = clone(est).fit(X[m], y[m])
    dec = e.decision_function(X[m][:60])
    assert dec.shape == (60,)
    np.testing.assert_array_equal(e.predict(X[m][:60]), e.classes_[(dec > 0).astype(int)])


def test_nb_binary_margin_is_the_log_odds_of_gaussiannb(digits):
    X, y = digits
    m = y < 2
    ref = GaussianNB().fit(X[m].astype(np.float64), y[m])
    lp = ref.predict_log_proba(X[m].astype(np.float64))
    dec = NaiveBayesProbe(device="cpu").fit(X[m], y[m]).decision_function(X[m])
    np.testing.assert_allclose(dec, lp[:, 1] - lp[:, 0], rtol=1e-9, atol=1e-6)


def test_string_labels_and_one_class(digits):
    X, y = digits
    names = np.array(["zero", "one", "two"])[y % 3]
    p = LogisticProbe(device="cpu").fit(X, names)
    assert set(p.predict(X[:50])) <= set(names) and p.score(X, names) > 0.5
    with pytest.raises(DataError, match="1 class"):
        LogisticProbe(device="cpu").fit(X, np.full(len(X), "a"))
    with pytest.raises(DataError, match="Unknown label type"):
        KNNProbe(device="cpu").fit(X, np.linspace(0, 1, len(X)))


def test_every_registered_estimator_is_in_the_check_suite():
    """A probe or quantizer added to its registry must also be covered by the checks above (no silent gaps)."""
    from repscope.dictionary.quantize import METHODS, make_quantizer
    from repscope.probe.registry import PROBES, make_probe

    checked = {type(e) for e in ALL}
    for name in PROBES.names():
        assert type(make_probe(name, device="cpu")) in checked, name
    for name in METHODS.names():
        assert type(make_quantizer(name, dim=16, device="cpu")) in checked, name
