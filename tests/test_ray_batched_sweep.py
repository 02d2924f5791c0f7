"""Batched probe sweeps (issue 15 part 4; no Ray needed): every fold × C of a layer fitted as one batched problem
gives the per-fit accuracies of scikit-learn's loop (StandardScaler + LogisticRegression(lbfgs)) within 0.5 pt."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import load_breast_cancer, load_digits
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from repscope.distributed.batched_probe import logistic_sweep

CS = (0.01, 0.1, 1.0)


def sklearn_loop(x, y, folds, cs) -> np.ndarray:
    acc = np.zeros((len(folds), len(cs)))
    for f, (tr, te) in enumerate(folds):
        sc = StandardScaler().fit(x[tr])
        for j, c in enumerate(cs):
            m = LogisticRegression(C=c, max_iter=5000, tol=1e-6).fit(sc.transform(x[tr]), y[tr])
            acc[f, j] = m.score(sc.transform(x[te]), y[te])
    return acc


@pytest.mark.parametrize("name", ["breast_cancer", "digits"])
def test_batched_sweep_matches_per_fit_sklearn(name):
    x, y = (load_breast_cancer if name == "breast_cancer" else load_digits)(return_X_y=True)
    x, y = x[:500], y[:500]
    folds = list(StratifiedKFold(4, shuffle=True, random_state=0).split(x, y))
    got = logistic_sweep(x, y, folds, CS, device="cpu", tol=1e-6)
    ref = sklearn_loop(x, y, folds, CS)
    assert got.shape == (4, len(CS))
    assert np.abs(got - ref).max() <= 0.005 + 1e-12, (got, ref)
    assert got.mean() > 0.85  # the probes learned something: a wrong solver would sit near chance


def test_batched_sweep_rejects_bad_c():
    from repscope.errors import ConfigError

    with pytest.raises(ConfigError, match="C must be > 0"):
        logistic_sweep(np.zeros((4, 2)), np.array([0, 1, 0, 1]), [(np.arange(2), np.arange(2, 4))], [0.0])
