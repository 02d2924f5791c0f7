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


@pytest.mark.parametrize("k", [2, 3, 5])
@pytest.mark.parametrize("ties", [False, True])
def test_matches_sklearn_gradient_boosting(k: int, ties: bool) -> None:
    """Bit-for-bit scikit-learn, on continuous and on tied float32 features (tied samples are ordered as
    scikit-learn's introsort leaves them)."""
    x, y = _planted(300, k, seed=k, ties=ties)
    x_test, _ = _planted(200, k, seed=100 + k, ties=ties)
    ours = ExactGBTClassifier().fit(x, y)
    ref = GradientBoostingClassifier(random_state=0).fit(x, y)
    assert ours.n_trees_per_iteration_ == (1 if k == 2 else k)
    assert ours.feature_importances_[:2].sum() > 0.5  # the planted features carry the label
    _assert_same_model(ours, ref, x_test)
    np.testing.assert_array_equal(ours.predict_proba(x), ref.predict_proba(x))


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


@pytest.mark.parametrize("params", [dict(min_samples_split=40, min_samples_leaf=7, n_estimators=30),
                                    dict(max_depth=5, learning_rate=0.3, n_estimators=20)])
def test_other_tree_settings_match_sklearn(params: dict) -> None:
    """Tied float32 features, other tree settings (large leaves; deep trees, whose small nodes decide splits within
    rounding): bit-for-bit scikit-learn."""
    x, y = _planted(300, 2, seed=5, ties=True)
    x_test, _ = _planted(200, 2, seed=105, ties=True)
    ours = ExactGBTClassifier(**params).fit(x, y)
    ref = GradientBoostingClassifier(random_state=0, **params).fit(x, y)
    _assert_same_model(ours, ref, x_test)


def test_string_labels_and_tiny_data() -> None:
    x = np.array([[0.0, 1.0], [1.0, 0.0], [2.0, 1.0], [3.0, 0.0]])
    y = np.array(["b", "a", "b", "a"])
    ours = ExactGBTClassifier().fit(x, y)
    ref = GradientBoostingClassifier(random_state=0).fit(x, y)
    assert list(ours.classes_) == ["a", "b"]
    _assert_same_model(ours, ref, x)


@pytest.mark.parametrize("ties", [False, True])
def test_dci_gbt_equals_sklearn_reference(ties: bool) -> None:
    """DCI from the default engine equals DCI from scikit-learn's estimator exactly, with one latent rounded to 0.1
    (tied float32 values) too."""
    rng = np.random.default_rng(4)
    f = np.stack([rng.integers(0, c, 450) for c in (2, 3, 5)], axis=1)
    z = np.column_stack([f + 0.4 * rng.normal(size=f.shape), rng.normal(size=(450, 2))])
    if ties:
        z[:, 3] = np.round(z[:, 3], 1)
    ours = dci(z, f, importance="gbt")
    ref = dci(z, f, importance="gbt-sklearn")
    np.testing.assert_array_equal(ours["importance"], ref["importance"])
    for key in ("disentanglement", "completeness", "informativeness", "informativeness_train"):
        assert ours[key] == ref[key]
    assert ours["disentanglement"] > 0.5 and ours["informativeness"] > 0.6


def _tied_latents(n: int, seed: int, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Latents mixing three factors plus noise, then tied: rounded to 0.1 or to integers, or quantised to 10
    levels per latent."""
    rng = np.random.default_rng(seed)
    f = np.stack([rng.integers(0, c, n) for c in (3, 4, 5)], axis=1)
    z = f @ (rng.normal(size=(3, 8)) * (rng.random((3, 8)) < 0.5)) + 0.5 * rng.normal(size=(n, 8))
    if kind == "round1":
        return np.round(z, 1), f
    if kind == "round0":
        return np.round(z), f
    lo, hi = z.min(0), z.max(0)
    return np.floor((z - lo) / (hi - lo) * 9.999), f


@pytest.mark.parametrize("kind", ["round1", "round0", "q10"])
def test_dci_on_tied_latents_equals_sklearn_over_seeds(kind: str) -> None:
    """The README's promise for tied (rounded, quantised) latents, measured over several seeds: the default engine's
    importances and D, C, I equal scikit-learn's `GradientBoostingClassifier` exactly (before tied samples were
    ordered as scikit-learn orders them, these cases differed by up to 4.7e-4 in D and 1.4e-3 in importances, and
    held-out predictions flipped)."""
    for seed in range(3):
        z, f = _tied_latents(600, seed, kind)
        assert (np.diff(np.sort(z, axis=0), axis=0) == 0).mean() > 0.5  # heavily tied
        ours, ref = dci(z, f, importance="gbt"), dci(z, f, importance="gbt-sklearn")
        np.testing.assert_array_equal(ours["importance"], ref["importance"])
        for key in ("disentanglement", "completeness", "informativeness", "informativeness_train"):
            assert ours[key] == ref[key], (kind, seed, key)


def _musser_killer(n: int) -> np.ndarray:
    """Musser's (1997) median-of-3 killer sequence, which exhausts introsort's depth budget (heapsort path)."""
    k = n // 2
    a = np.zeros(n)
    for i in range(1, k + 1):
        if i % 2 == 1:
            a[i - 1], a[i] = i, k + i
        a[k + i - 1] = 2 * i
    return a


def test_tie_order_sort_equals_sklearns_sort() -> None:
    """The engine's sort leaves equal values in exactly the order scikit-learn's tree sort (`simultaneous_sort` with
    3-way partitioning) leaves them, on random tied keys, organ pipes, rare ties and the heapsort path."""
    from sklearn.utils._sorting import _py_simultaneous_sort

    from repscope.disentangle.gbt import _tie_order_sort

    def ours(v: np.ndarray) -> np.ndarray:
        v = v.astype(np.float32)
        ref_order = np.argsort(v, kind="stable").astype(np.int32)
        sv = v[ref_order]
        tp = np.concatenate([[0], np.cumsum(sv[1:] == sv[:-1])]).astype(np.int64)
        idx = np.arange(len(v), dtype=np.int32)
        _tie_order_sort(v.copy(), idx, 0, len(v), ref_order, tp)
        return idx

    def sklearn_order(v: np.ndarray) -> np.ndarray:
        idx = np.arange(len(v), dtype=np.intp)
        _py_simultaneous_sort(v.astype(np.float32), idx, len(v), use_three_way_partition=True)
        return idx

    rng = np.random.default_rng(0)
    cases = [_musser_killer(n) // div for n in (1000, 2000) for div in (1, 2, 3)]
    for t in range(600):
        n = int(rng.integers(2, 400))
        v = [rng.integers(0, rng.integers(1, 20), n).astype(float), np.round(rng.normal(size=n), 1),
             np.concatenate([np.arange(n // 2), np.arange(n - n // 2)[::-1]]).astype(float),
             np.where(rng.random(n) < 0.05, 1.0, rng.normal(size=n))][t % 4]
        cases.append(v)
    for v in cases:
        got, want = ours(v), sklearn_order(v)
        assert np.array_equal(got, want)
        assert np.all(np.diff(v.astype(np.float32)[got]) >= 0)


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
