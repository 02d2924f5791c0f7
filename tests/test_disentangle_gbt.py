"""repscope's exact gradient boosting (repscope.disentangle.gbt) against scikit-learn's GradientBoostingClassifier."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import GradientBoostingClassifier

from repscope.disentangle import dci
from repscope.disentangle.gbt import ExactGBTClassifier
from repscope.errors import ConfigError, DataError


def _planted(n: int, k: int, seed: int, *, ties: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Six continuous features, the label a noisy threshold code of features 0 and 1 (k classes); with `ties`:
    feature 3 rounded to 0.1 (heavy ties), feature 4 with some duplicated values, feature 5 near-duplicate pairs
    closer than scikit-learn's 1e-7 tie tolerance, feature 2 half zeros (rectified)."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 6))
    y = np.digitize(x[:, 0] + 0.6 * x[:, 1] + 0.5 * rng.normal(size=n), np.quantile(x[:, 0], np.arange(1, k) / k))
    if ties:
        x[:, 3] = np.round(x[:, 3], 1)
        x[: n // 10, 4] = x[n // 10: 2 * (n // 10), 4]
        base = np.float32(0.3) + np.float32(0.01) * rng.integers(0, n // 4, n).astype(np.float32)
        x[:, 5] = base + np.where(rng.random(n) < 0.5, 0, np.spacing(np.float32(0.3)))
        x[:, 2] = np.maximum(x[:, 2], 0.0)
    return x, y


def _assert_same_model(ours: ExactGBTClassifier, ref: GradientBoostingClassifier, x_test: np.ndarray) -> None:
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.predict_proba(x_test), ref.predict_proba(x_test), rtol=0, atol=1e-6)
    np.testing.assert_allclose(ours.decision_function(x_test), ref.decision_function(x_test), rtol=0, atol=1e-6)
    assert np.array_equal(ours.predict(x_test), ref.predict(x_test))


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("ties", [False, True])
def test_matches_sklearn_gradient_boosting(k: int, ties: bool) -> None:
    x, y = _planted(300, k, seed=k, ties=ties)
    x_test, _ = _planted(200, k, seed=100 + k, ties=ties)
    ours = ExactGBTClassifier().fit(x, y)
    ref = GradientBoostingClassifier(random_state=0).fit(x, y)
    assert ours.n_trees_per_iteration_ == (1 if k == 2 else k)
    assert ours.feature_importances_[:2].sum() > 0.5  # the planted features carry the label
    _assert_same_model(ours, ref, x_test)


def test_duplicated_column_breaks_ties_as_sklearn() -> None:
    """Two identical columns give exactly tied splits; the engine visits features in scikit-learn's seeded order."""
    x, y = _planted(250, 3, seed=7)
    x = np.column_stack([x, x[:, 0]])
    for seed in (0, 3):
        ours = ExactGBTClassifier(random_state=seed).fit(x, y)
        ref = GradientBoostingClassifier(random_state=seed).fit(x, y)
        assert ref.feature_importances_[0] > 0 and ref.feature_importances_[6] > 0  # both copies get used
        _assert_same_model(ours, ref, x)


def test_constant_feature_gets_no_importance() -> None:
    x, y = _planted(200, 3, seed=11)
    x[:, 2] = 1.5
    ours = ExactGBTClassifier().fit(x, y)
    ref = GradientBoostingClassifier(random_state=0).fit(x, y)
    assert ours.feature_importances_[2] == 0.0
    _assert_same_model(ours, ref, x)


def test_fewer_samples_than_min_split_keeps_the_prior() -> None:
    x, y = _planted(30, 3, seed=2)
    ours = ExactGBTClassifier(min_samples_split=40).fit(x, y)
    ref = GradientBoostingClassifier(min_samples_split=40, random_state=0).fit(x, y)
    assert np.all(ours.feature_importances_ == 0)
    prior = np.bincount(y, minlength=3) / len(y)
    np.testing.assert_allclose(ours.predict_proba(x[:3]), np.tile(prior, (3, 1)), atol=1e-12)
    _assert_same_model(ours, ref, x)


@pytest.mark.parametrize("params", [dict(min_samples_split=40, min_samples_leaf=7, n_estimators=30),
                                    dict(max_depth=5, learning_rate=0.3, n_estimators=20)])
def test_other_tree_settings_match_sklearn(params: dict) -> None:
    x, y = _planted(300, 2, seed=5, ties=True)
    ours = ExactGBTClassifier(**params).fit(x, y)
    ref = GradientBoostingClassifier(random_state=0, **params).fit(x, y)
    _assert_same_model(ours, ref, x)


def test_string_labels_and_tiny_data() -> None:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    y = np.array(["b", "a", "b", "a"])
    ours = ExactGBTClassifier().fit(x, y)
    ref = GradientBoostingClassifier(random_state=0).fit(x, y)
    assert list(ours.classes_) == ["a", "b"]
    _assert_same_model(ours, ref, x)


def test_dci_gbt_equals_sklearn_reference() -> None:
    rng = np.random.default_rng(4)
    f = np.stack([rng.integers(0, c, 450) for c in (2, 3, 5)], axis=1)
    z = np.column_stack([f + 0.4 * rng.normal(size=f.shape), rng.normal(size=(450, 2))])
    z[:, 3] = np.round(z[:, 3], 1)
    ours = dci(z, f, importance="gbt")
    ref = dci(z, f, importance="gbt-sklearn")
    np.testing.assert_allclose(ours["importance"], ref["importance"], rtol=0, atol=1e-6)
    for key in ("disentanglement", "completeness", "informativeness", "informativeness_train"):
        assert ours[key] == pytest.approx(ref[key], abs=1e-6)
    assert ours["disentanglement"] > 0.5 and ours["informativeness"] > 0.6


def test_bad_input_is_refused() -> None:
    x, y = _planted(50, 2, seed=1)
    with pytest.raises(DataError, match="single value"):
        ExactGBTClassifier().fit(x, np.zeros(50))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(DataError, match="NaN"):
        ExactGBTClassifier().fit(bad, y)
    with pytest.raises(DataError, match="one label per row"):
        ExactGBTClassifier().fit(x, y[:-1])
    with pytest.raises(ConfigError, match="max_depth"):
        ExactGBTClassifier(max_depth=0)
    m = ExactGBTClassifier(n_estimators=3).fit(x, y)
    with pytest.raises(DataError, match="columns"):
        m.predict(x[:, :3])
