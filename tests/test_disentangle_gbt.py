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


def _assert_same_model(ours: ExactGBTClassifier, ref: GradientBoostingClassifier, x_test: np.ndarray, *,
                       atol: float = 0.0) -> None:
    """Importances, probabilities and raw predictions within atol (default 0: bit-for-bit), the same labels."""
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, rtol=0, atol=atol)
    np.testing.assert_allclose(ours.predict_proba(x_test), ref.predict_proba(x_test), rtol=0, atol=atol)
    np.testing.assert_allclose(ours.decision_function(x_test), ref.decision_function(x_test), rtol=0, atol=atol)
    assert np.array_equal(ours.predict(x_test), ref.predict(x_test))


def _assert_close_model(ours: ExactGBTClassifier, ref: GradientBoostingClassifier, x: np.ndarray,
                        x_test: np.ndarray) -> None:
    """The agreement on tied float32 features, where tied samples keep the stable presorted order instead of the order
    scikit-learn's unstable introsort gives them, so sums over them can round differently in their last bit and flip
    a split that two candidates win within rounding. Measured on this file's tied cases: |Δ importance| ≤ 2.9e-4,
    training probabilities bit-for-bit equal, held-out |Δ predict_proba| ≤ 4.3e-2 on a few rows (≤ 6 of 200; mean
    ≤ 3.4e-4) and the same labels; on 2000 × 10 latents quantised to 10 levels (3 seeds, 3 and 5 classes)
    |Δ importance| ≤ 2.1e-4, held-out |Δ predict_proba| ≤ 5.3e-2. Bounds: 1e-3 on importances, bit-for-bit training
    probabilities, held-out probabilities within 0.1 (mean within 1e-3), the same held-out labels."""
    np.testing.assert_allclose(ours.feature_importances_, ref.feature_importances_, rtol=0, atol=1e-3)
    np.testing.assert_array_equal(ours.predict_proba(x), ref.predict_proba(x))
    diff = np.abs(ours.predict_proba(x_test) - ref.predict_proba(x_test))
    assert diff.max() <= 0.1 and diff.mean() <= 1e-3
    assert np.array_equal(ours.predict(x_test), ref.predict(x_test))


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("ties", [False, True])
def test_matches_sklearn_gradient_boosting(k: int, ties: bool) -> None:
    """Continuous features: bit-for-bit scikit-learn. Tied float32 features: within the bounds of `_assert_close_model`
    (measured there), since tied samples keep the stable presorted order."""
    x, y = _planted(300, k, seed=k, ties=ties)
    x_test, _ = _planted(200, k, seed=100 + k, ties=ties)
    ours = ExactGBTClassifier().fit(x, y)
    ref = GradientBoostingClassifier(random_state=0).fit(x, y)
    assert ours.n_trees_per_iteration_ == (1 if k == 2 else k)
    assert ours.feature_importances_[:2].sum() > 0.5  # the planted features carry the label
    if ties:
        _assert_close_model(ours, ref, x, x_test)
    else:
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
    """A constant column leaves each node's sample order as it was (sorting by an all-equal key): bit-for-bit."""
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


@pytest.mark.parametrize(("params", "rounding_flips"),
                         [(dict(min_samples_split=40, min_samples_leaf=7, n_estimators=30), False),
                          (dict(max_depth=5, learning_rate=0.3, n_estimators=20), True)])
def test_other_tree_settings_match_sklearn(params: dict, rounding_flips: bool) -> None:
    """Tied float32 features. With leaves of ≥ 7 samples no split is decided within rounding (measured 1e-16, kept
    at 1e-6); the deep fit has such splits, so it is held to the measured bounds of `_assert_close_model`."""
    x, y = _planted(300, 2, seed=5, ties=True)
    x_test, _ = _planted(200, 2, seed=105, ties=True)
    ours = ExactGBTClassifier(**params).fit(x, y)
    ref = GradientBoostingClassifier(random_state=0, **params).fit(x, y)
    if rounding_flips:
        _assert_close_model(ours, ref, x, x_test)
    else:
        _assert_same_model(ours, ref, x_test, atol=1e-6)


def test_string_labels_and_tiny_data() -> None:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    y = np.array(["b", "a", "b", "a"])
    ours = ExactGBTClassifier().fit(x, y)
    ref = GradientBoostingClassifier(random_state=0).fit(x, y)
    assert list(ours.classes_) == ["a", "b"]
    _assert_same_model(ours, ref, x)


@pytest.mark.parametrize("ties", [False, True])
def test_dci_gbt_equals_sklearn_reference(ties: bool) -> None:
    """Continuous latents: DCI equal to 1e-6 (bit-for-bit fits). With one latent rounded to 0.1 (tied float32
    values): importances, D and C within 1e-3 (measured here |ΔR| 2.4e-5, |ΔD| 1.8e-5, |ΔC| 1.7e-6; on 2000 × 10
    latents quantised to 10 levels |ΔR| ≤ 2.1e-4, |ΔD| ≤ 3.4e-4, |ΔC| ≤ 3.2e-5), informativeness equal (measured
    0: the same held-out labels)."""
    rng = np.random.default_rng(4)
    f = np.stack([rng.integers(0, c, 450) for c in (2, 3, 5)], axis=1)
    z = np.column_stack([f + 0.4 * rng.normal(size=f.shape), rng.normal(size=(450, 2))])
    if ties:
        z[:, 3] = np.round(z[:, 3], 1)
    ours = dci(z, f, importance="gbt")
    ref = dci(z, f, importance="gbt-sklearn")
    tol = 1e-3 if ties else 1e-6
    np.testing.assert_allclose(ours["importance"], ref["importance"], rtol=0, atol=tol)
    for key in ("disentanglement", "completeness"):
        assert ours[key] == pytest.approx(ref[key], abs=tol)
    for key in ("informativeness", "informativeness_train"):
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
