"""Modularity and explicitness (Ridgeway & Mozer 2018)."""

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
from repscope.disentangle.mi import mutual_info_codes
from repscope.threads import limit_threads


def modularity_from_mi(mi: np.ndarray) -> tuple[float, np.ndarray]:
    """Modularity (Ridgeway & Mozer 2018): per latent 1 − (Σ_j m_ij² − θ_i²) / (θ_i² (k − 1)), θ_i = max_j m_ij,
    0 for a latent with no information; returns (mean over latents, per-latent scores). One factor gives 1."""
    d, k = mi.shape
    sq = mi**2
    top = sq.max(axis=1)
    if k == 1:
        return 1.0, np.where(top > 0, 1.0, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        per = 1.0 - (sq.sum(axis=1) - top) / (top * (k - 1))
    per = np.where(top > 0, per, 0.0)
    return float(per.mean()), per


def modularity(latents: Any, factors: Any, *, bins: int = 20) -> float:
    """Modularity (Ridgeway & Mozer 2018) over the binned mutual-information matrix m_ij = I(z_i; v_j)."""
    x = as_latents(latents)
    v, _ = encode_factors(factors, n_rows=len(x))
    return modularity_from_mi(mutual_info_codes(bin_equal_width(x, bins), v))[0]


def roc_auc_ovr(y: np.ndarray, proba: np.ndarray, classes: np.ndarray) -> float:
    """Macro one-vs-rest ROC AUC (Mann–Whitney U with mid-ranks) over the classes present and absent in `y`."""
    from scipy.stats import rankdata

    aucs = []
    for c, cls in enumerate(classes):
        pos = y == cls
        n_pos, n_neg = int(pos.sum()), int((~pos).sum())
        if n_pos == 0 or n_neg == 0:
            continue
        r = rankdata(proba[:, c])
        aucs.append((r[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))
    return float(np.mean(aucs)) if aucs else float("nan")


def explicitness_from_split(x_train: np.ndarray, codes_train: np.ndarray, x_test: np.ndarray,
                            codes_test: np.ndarray, *, C: float = 1.0) -> tuple[float, np.ndarray]:
    """Explicitness (Ridgeway & Mozer 2018): mean over factors of the held-out macro one-vs-rest ROC AUC of an
    L2 logistic regression (C, lbfgs) on latents standardised with the train mean/std; returns (mean, per factor)."""
    from sklearn.linear_model import LogisticRegression

    check_train_codes(codes_train)
    xtr, xte = standardize_by_train(x_train, x_test)
    per = np.zeros(codes_train.shape[1])
    with limit_threads(1):
        for j in range(codes_train.shape[1]):
            m = LogisticRegression(C=C, max_iter=1000).fit(xtr, codes_train[:, j])
            per[j] = roc_auc_ovr(codes_test[:, j], m.predict_proba(xte), m.classes_)
    return float(np.nanmean(per)), per


def explicitness(latents: Any, factors: Any, *, test_fraction: float = 1 / 3, seed: int = 0, C: float = 1.0) -> float:
    """Explicitness (Ridgeway & Mozer 2018): (1/k) Σ_j macro-AUC of a logistic readout of v_j from z, held out."""
    x = as_latents(latents)
    v, _ = encode_factors(factors, n_rows=len(x))
    tr, te = split_indices(len(x), test_fraction=test_fraction, seed=seed)
    return explicitness_from_split(x[tr], v[tr], x[te], v[te], C=C)[0]
