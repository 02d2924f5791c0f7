"""InfoMEC (Hsu et al. 2023, "Disentanglement via Latent Quantization"): InfoM (modularity), InfoE (explicitness)
and InfoC (compactness) from the normalised mutual information NMI_ij = I(z_i; s_j) / H(s_j)."""

from __future__ import annotations

from typing import Any

import numpy as np

from repscope.disentangle.inputs import (
    as_latents,
    bin_equal_width,
    check_train_codes,
    encode_factors,
    split_indices,
    standardize_by_train,
)
from repscope.disentangle.mi import entropy_codes, mutual_info_codes
from repscope.errors import ConfigError
from repscope.threads import limit_threads

MI_ESTIMATORS = ("histogram", "ksg")


def normalized_mi(x: np.ndarray, codes: np.ndarray, *, bins: int = 20, estimator: str = "histogram",
                  seed: int = 0) -> np.ndarray:
    """(d, k) NMI_ij = I(z_i; s_j) / H(s_j): `"histogram"` = `bins` equal-width latent bins (plug-in, default);
    `"ksg"` = the k-NN estimator (10 neighbours) on standardised latents, the QLAE code's continuous path."""
    h = entropy_codes(codes)
    if estimator == "histogram":
        mi = mutual_info_codes(bin_equal_width(x, bins), codes)
    elif estimator == "ksg":
        from sklearn.feature_selection import mutual_info_classif

        sd = x.std(axis=0)
        xs = (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        with limit_threads(1):
            mi = np.stack([mutual_info_classif(xs, codes[:, j], discrete_features=False, n_neighbors=10,
                                               random_state=seed) for j in range(codes.shape[1])], axis=1)
    else:
        raise ConfigError(f"unknown MI estimator '{estimator}'; choose one of {', '.join(MI_ESTIMATORS)}")
    return mi / h[None, :]


def active_latents(x: np.ndarray) -> np.ndarray:
    """Latents whose range exceeds 1/20 of the largest latent range (the QLAE code's pruning rule)."""
    rng = x.max(axis=0) - x.min(axis=0)
    return rng > rng.max() / 20 if rng.max() > 0 else np.zeros(x.shape[1], dtype=bool)


def infom_infoc(nmi: np.ndarray, active: np.ndarray) -> tuple[float, float]:
    """InfoM = ((1/d') Σ_i max_j NMI_ij / Σ_j NMI_ij − 1/k) / (1 − 1/k) and InfoC = ((1/k) Σ_j max_i NMI_ij /
    Σ_i NMI_ij − 1/d') / (1 − 1/d') over the d' active latents (Hsu et al. 2023); empty rows/columns count as chance."""
    p = nmi[active]
    d, k = p.shape
    if d == 0:
        return 0.0, 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        row = np.where(p.sum(axis=1) > 0, p.max(axis=1) / p.sum(axis=1), 1.0 / k)
        col = np.where(p.sum(axis=0) > 0, p.max(axis=0) / p.sum(axis=0), 1.0 / d)
    infom = (row.mean() - 1 / k) / (1 - 1 / k) if k > 1 else 1.0
    infoc = (col.mean() - 1 / d) / (1 - 1 / d) if d > 1 else 1.0
    return float(infom), float(infoc)


def _log_loss(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    col = np.searchsorted(classes, y)
    ok = (col < len(classes)) & (classes[np.minimum(col, len(classes) - 1)] == y)
    p = np.where(ok, proba[np.arange(len(y)), np.minimum(col, len(classes) - 1)], 0.0)
    return float(-np.mean(np.log(np.clip(p, 1e-15, 1.0))))


INFOE_SPLITS = ("test", "train")


def infoe(x: np.ndarray, codes: np.ndarray, *, split: str = "test", test_fraction: float = 1 / 3, seed: int = 0,
          C: float | None = None) -> tuple[float, np.ndarray]:
    """InfoE (Hsu et al. 2023): (1/k) Σ_j (CE₀ − CE_j) / CE₀, the fraction of the factor's cross-entropy a multinomial
    logistic readout of standardised latents removes.

    `split="test"` (default): fit on the training rows with an L2 penalty (C, default 1), score held-out rows; CE₀
    predicts the training class frequencies. `split="train"`: the QLAE code's in-sample variant (its
    `compute_infoe`): standardise on all rows, fit and score all rows, unpenalised (C default ∞), class-balanced
    weights, lbfgs for at most 100 iterations; CE₀ is that recipe's null readout on all-zero features, which with
    balanced weights predicts the uniform distribution, so CE₀ = log K. Returns (InfoE, per-factor values)."""
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    if split == "test":
        tr, te = split_indices(len(x), test_fraction=test_fraction, seed=seed)
    elif split == "train":
        tr = te = np.arange(len(x))
    else:
        raise ConfigError(f"unknown InfoE split '{split}'; choose one of {', '.join(INFOE_SPLITS)}")
    reference = split == "train"
    c = (np.inf if reference else 1.0) if C is None else float(C)
    check_train_codes(codes[tr])
    xtr, xte = standardize_by_train(x[tr], x[te])
    per = np.zeros(codes.shape[1])
    with limit_threads(1), warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)  # the reference's 100 lbfgs steps need not converge
        for j in range(codes.shape[1]):
            classes, counts = np.unique(codes[tr, j], return_counts=True)
            if reference:
                ce0 = float(np.log(len(classes)))
                m = LogisticRegression(C=c, class_weight="balanced", max_iter=100, tol=1e-4)
            else:
                prior = np.broadcast_to(counts / counts.sum(), (len(te), len(classes)))
                ce0 = _log_loss(codes[te, j], prior, classes)
                m = LogisticRegression(C=c, max_iter=1000)
            m.fit(xtr, codes[tr, j])
            ce = _log_loss(codes[te, j], m.predict_proba(xte), m.classes_)
            per[j] = (ce0 - ce) / ce0 if ce0 > 0 else 0.0
    return float(per.mean()), per


def infomec(latents: Any, factors: Any, *, bins: int = 20, estimator: str = "histogram", infoe_split: str = "test",
            test_fraction: float = 1 / 3, seed: int = 0) -> dict[str, Any]:
    """InfoMEC (Hsu et al. 2023): {infom, infoe, infoc, nmi (d, k), active (d,)} over NMI_ij = I(z_i; s_j)/H(s_j).

    repscope's defaults: NMI from a 20-bin histogram (`estimator="histogram"`) and held-out InfoE
    (`infoe_split="test"`); `estimator="ksg", infoe_split="train"` is the QLAE reference code's setting for
    continuous latents (they can differ by ~0.2 in InfoM)."""
    x = as_latents(latents)
    v, _ = encode_factors(factors, n_rows=len(x))
    nmi = normalized_mi(x, v, bins=bins, estimator=estimator, seed=seed)
    act = active_latents(x)
    im, ic = infom_infoc(nmi, act)
    ie, _ = infoe(x, v, split=infoe_split, test_fraction=test_fraction, seed=seed)
    return {"infom": im, "infoe": ie, "infoc": ic, "nmi": nmi, "active": act}
