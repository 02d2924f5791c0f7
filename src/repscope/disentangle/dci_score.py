"""DCI (Eastwood & Williams 2018): disentanglement, completeness and informativeness from an importance matrix.

Importances R (d latents × k factors) come from one classifier per factor, selectable:
- `"gbt"` (default): disentanglement_lib's estimator, scikit-learn's `GradientBoostingClassifier()` with default
  settings (100 rounds, learning rate 0.1, depth 3, log loss) and impurity-decrease importances, reproduced exactly
  by repscope's own engine (`repscope.disentangle.gbt`: features sorted once per fit, scikit-learn's split search
  and seeded feature order, tied values ordered as its sort leaves them; ~8× faster on continuous latents, ~1.4× on
  heavily tied ones): bit-for-bit the same importances and predictions, on continuous and on tied (discrete,
  rounded, quantised) latents;
- `"gbt-sklearn"` (alias `"gbt-exact"`): scikit-learn's `GradientBoostingClassifier` itself, the reference;
- `"gbt-hist"`: histogram GBT (scikit-learn's `HistGradientBoostingClassifier`, same rounds, rate and depth);
  importance of a latent = the total split gain of its splits (the GBT importance of XGBoost/LightGBM); close to,
  not equal to, the exact estimator's;
- `"lasso"`: an L1-penalised linear model on standardised latents (Eastwood & Williams' own choice), in its
  classification form: L1 multinomial logistic regression (C = 0.1, saga); importance = Σ_classes |coefficient|.
Informativeness is the mean held-out accuracy of those classifiers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from repscope.disentangle.inputs import (
    as_latents,
    check_train_codes,
    encode_factors,
    split_indices,
    standardize_by_train,
)
from repscope.registry import Registry
from repscope.threads import limit_threads


def _entropy_base(p: np.ndarray, base: int, axis: int) -> np.ndarray:
    """Shannon entropy of p normalised along `axis`, in log base `base` (scipy.stats.entropy's convention)."""
    q = p / p.sum(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(q > 0, q * np.log(q), 0.0)
    return -t.sum(axis=axis) / np.log(base)


def dci_from_importance(importance: np.ndarray) -> tuple[float, float, np.ndarray, np.ndarray]:
    """DCI (Eastwood & Williams 2018): D = Σ_i ρ_i (1 − H_k(P_i·)), C = Σ_j ρ̃_j (1 − H_d(P̃·j)) with P rows (P̃ columns)
    of R + 1e-11 normalised, ρ_i = Σ_j R_ij / Σ R, ρ̃_j = Σ_i R_ij / Σ R (disentanglement_lib's weights).

    Returns (D, C, per-latent disentanglement, per-factor completeness). One factor gives D = 0; one latent C = 0."""
    r = np.abs(np.asarray(importance, dtype=np.float64))
    d, k = r.shape
    per_code = 1.0 - _entropy_base(r + 1e-11, k, axis=1) if k > 1 else np.zeros(d)
    per_factor = 1.0 - _entropy_base(r + 1e-11, d, axis=0) if d > 1 else np.zeros(k)
    total = r.sum()
    code_w = r.sum(axis=1) / total if total > 0 else np.ones(d) / d
    factor_w = r.sum(axis=0) / total if total > 0 else np.ones(k) / k
    return float((per_code * code_w).sum()), float((per_factor * factor_w).sum()), per_code, per_factor


def _hgb_importance(model: Any, d: int) -> np.ndarray:
    imp = np.zeros(d)
    for trees in model._predictors:  # one TreePredictor per class (one for binary) per boosting round
        for tree in trees:
            nodes = tree.nodes
            split = ~nodes["is_leaf"].astype(bool)
            np.add.at(imp, nodes["feature_idx"][split].astype(np.int64), nodes["gain"][split])
    s = imp.sum()
    return imp / s if s > 0 else imp


# An engine: engine(x_train, y_train, x_test, *, seed, **options) -> (importance (d,), train predictions, test
# predictions), options being the keywords of `factor_importance` (`lasso_C`), ignored by engines that take none.
DciEngine = Callable[..., tuple[np.ndarray, np.ndarray, np.ndarray]]


def _exact_gbt(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, seed: int = 0,
               **_: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """repscope's exact GBT (`repscope.disentangle.gbt`): scikit-learn's defaults, impurity importances."""
    from repscope.disentangle.gbt import ExactGBTClassifier

    m = ExactGBTClassifier(random_state=seed).fit(x_train, y_train)
    return np.abs(m.feature_importances_), m.predict(x_train), m.predict(x_test)


def _sklearn_gbt(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, seed: int = 0,
                 **_: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """scikit-learn's `GradientBoostingClassifier` with its defaults (the reference)."""
    from sklearn.ensemble import GradientBoostingClassifier

    m = GradientBoostingClassifier(random_state=seed).fit(x_train, y_train)
    return np.abs(m.feature_importances_), m.predict(x_train), m.predict(x_test)


def _hist_gbt(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, seed: int = 0,
              **_: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Histogram GBT (same rounds, rate, depth); importance = total split gain per latent."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    m = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, max_depth=3, max_leaf_nodes=8,
                                       early_stopping=False, random_state=seed).fit(x_train, y_train)
    return _hgb_importance(m, x_train.shape[1]), m.predict(x_train), m.predict(x_test)


def _lasso(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, *, seed: int = 0, lasso_C: float = 0.1,
           **_: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """L1 multinomial logistic regression (C = `lasso_C`, saga) on standardised latents; importance = Σ |coef|."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    xtr, xte = standardize_by_train(x_train, x_test)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        m = LogisticRegression(l1_ratio=1.0, C=lasso_C, solver="saga", max_iter=300, tol=1e-3,
                               random_state=seed).fit(xtr, y_train)
    return np.abs(m.coef_).sum(axis=0), m.predict(xtr), m.predict(xte)


DCI_ENGINES: Registry[DciEngine] = Registry("DCI importance")
DCI_ENGINES.register("gbt", _exact_gbt, default=True, exact=True,
                     paper="Friedman 2001; disentanglement_lib's estimator, repscope's exact engine")
DCI_ENGINES.register("gbt-sklearn", _sklearn_gbt, aliases=("gbt-exact",), exact=True,
                     paper="Friedman 2001; scikit-learn GradientBoostingClassifier (reference)")
DCI_ENGINES.register("gbt-hist", _hist_gbt, exact=False, paper="histogram GBT (LightGBM-style split-gain importance)")
DCI_ENGINES.register("lasso", _lasso, exact=False, paper="Eastwood & Williams 2018 (L1 linear model)")
IMPORTANCES = (*DCI_ENGINES.names(), *DCI_ENGINES.aliases())  # the built-in names and aliases; the registry is live


def factor_importance(x_train: np.ndarray, y_train: np.ndarray, x_test: np.ndarray, y_test: np.ndarray, *,
                      importance: str = "gbt", seed: int = 0, lasso_C: float = 0.1,
                      threads: int | None = 1) -> tuple[np.ndarray, float, float]:
    """(importance (d,), train accuracy, test accuracy) of one classifier predicting one factor's codes, fitted by
    the `DCI_ENGINES` entry `importance`."""
    engine = DCI_ENGINES.get(importance)
    with limit_threads(threads):
        imp, pred_tr, pred_te = engine(x_train, y_train, x_test, seed=seed, lasso_C=lasso_C)
    return imp, float(np.mean(pred_tr == y_train)), float(np.mean(pred_te == y_test))


def importance_matrix(x: np.ndarray, codes: np.ndarray, *, importance: str = "gbt", test_fraction: float = 1 / 3,
                      seed: int = 0, threads: int | None = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(R (d, k), train accuracy (k,), test accuracy (k,)) over one seeded train/test split of the rows."""
    tr, te = split_indices(len(x), test_fraction=test_fraction, seed=seed)
    check_train_codes(codes[tr])
    r = np.zeros((x.shape[1], codes.shape[1]))
    acc_tr, acc_te = np.zeros(codes.shape[1]), np.zeros(codes.shape[1])
    for j in range(codes.shape[1]):
        r[:, j], acc_tr[j], acc_te[j] = factor_importance(x[tr], codes[tr, j], x[te], codes[te, j],
                                                          importance=importance, seed=seed, threads=threads)
    return r, acc_tr, acc_te


def dci(latents: Any, factors: Any, *, importance: str = "gbt", test_fraction: float = 1 / 3, seed: int = 0,
        threads: int | None = 1) -> dict[str, Any]:
    """DCI (Eastwood & Williams 2018): {disentanglement, completeness, informativeness (mean test accuracy),
    informativeness_train, importance (d, k)}; see the module docstring for the importance choices."""
    DCI_ENGINES.resolve(importance)  # one-line error listing the engines when unknown
    x = as_latents(latents)
    v, _ = encode_factors(factors, n_rows=len(x))
    r, acc_tr, acc_te = importance_matrix(x, v, importance=importance, test_fraction=test_fraction, seed=seed,
                                          threads=threads)
    dis, comp, _, _ = dci_from_importance(r)
    return {"disentanglement": dis, "completeness": comp, "informativeness": float(acc_te.mean()),
            "informativeness_train": float(acc_tr.mean()), "importance": r}
