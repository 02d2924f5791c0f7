"""SAP, the Separated Attribute Predictability score (Kumar et al. 2018)."""

from __future__ import annotations

from typing import Any

import numpy as np

from repscope.disentangle.inputs import as_latents, encode_factors, split_indices
from repscope.errors import ConfigError
from repscope.threads import limit_threads

SAP_MODES = ("r2", "classifier")


def sap_score_matrix(x: np.ndarray, codes: np.ndarray, *, mode: str = "r2", test_fraction: float = 1 / 3,
                     seed: int = 0) -> np.ndarray:
    """(d, k) predictability of factor j from latent i alone: `"r2"` = squared Pearson correlation
    cov(z_i, v_j)² / (var z_i · var v_j), 0 where var z_i ≤ 1e-12 (factor codes taken as ordinal, all rows);
    `"classifier"` = held-out accuracy of a 1-D linear SVM (C = 0.01, balanced classes), disentanglement_lib's
    discrete-factor path."""
    if mode == "r2":
        xc = x - x.mean(axis=0)
        vc = codes.astype(np.float64) - codes.mean(axis=0)
        n1 = len(x) - 1
        cov = xc.T @ vc / n1
        vx, vv = (xc**2).sum(axis=0) / n1, (vc**2).sum(axis=0) / n1
        with np.errstate(divide="ignore", invalid="ignore"):
            s = cov**2 / (vx[:, None] * vv[None, :])
        s[vx <= 1e-12, :] = 0.0
        return s
    if mode == "classifier":
        from sklearn.svm import LinearSVC

        tr, te = split_indices(len(x), test_fraction=test_fraction, seed=seed)
        s = np.zeros((x.shape[1], codes.shape[1]))
        with limit_threads(1):
            for i in range(x.shape[1]):
                for j in range(codes.shape[1]):
                    clf = LinearSVC(C=0.01, class_weight="balanced", random_state=seed)
                    clf.fit(x[tr, i : i + 1], codes[tr, j])
                    s[i, j] = np.mean(clf.predict(x[te, i : i + 1]) == codes[te, j])
        return s
    raise ConfigError(f"unknown SAP mode '{mode}'; choose one of {', '.join(SAP_MODES)}")


def sap_from_matrix(scores: np.ndarray) -> float:
    """SAP (Kumar et al. 2018): mean over factors of the gap between the two highest scores S₍₁₎j − S₍₂₎j."""
    s = np.sort(scores, axis=0)[::-1]
    second = s[1] if s.shape[0] > 1 else np.zeros(s.shape[1])
    return float((s[0] - second).mean())


def sap(latents: Any, factors: Any, *, mode: str = "r2", test_fraction: float = 1 / 3, seed: int = 0) -> float:
    """SAP (Kumar et al. 2018): (1/k) Σ_j (S₍₁₎j − S₍₂₎j) over the (d, k) single-latent predictability matrix S."""
    x = as_latents(latents)
    v, _ = encode_factors(factors, n_rows=len(x))
    return sap_from_matrix(sap_score_matrix(x, v, mode=mode, test_fraction=test_fraction, seed=seed))
