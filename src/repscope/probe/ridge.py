"""Ridge-regression probe for continuous targets (R² and Spearman), closed form in float64 via SVD."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin

from repscope.device import resolve_device
from repscope.errors import ConfigError, DataError
from repscope.probe.base import Standardizer
from repscope.validation import require_fitted, validate_input


def spearman(a: Any, b: Any) -> float:
    """Spearman's ρ: Pearson correlation of the (average-tie) ranks of a and b."""
    from scipy.stats import rankdata

    ra, rb = rankdata(np.asarray(a, dtype=np.float64)), rankdata(np.asarray(b, dtype=np.float64))
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(np.sqrt((ra * ra).sum() * (rb * rb).sum()))
    return float((ra * rb).sum() / den) if den > 0 else float("nan")


class RidgeProbe(RegressorMixin, BaseEstimator):
    """Ridge probe: W = argmin ‖Y − XW − b‖² + α‖W‖² (Hoerl & Kennard 1970), standardization inside.

    With `alphas` given, α is chosen by exact leave-one-out error from one SVD of the centred X
    (LOO residual eᵢ/(1 − Hᵢᵢ), H = U diag(s²/(s²+α)) Uᵀ + 11ᵀ/n), stored in `alpha_`.
    """

    def __init__(self, alpha: float = 1.0, alphas: Sequence[float] | None = None, standardize: bool = True,
                 device: str = "auto"):
        self.alpha = alpha
        self.alphas = alphas
        self.standardize = standardize
        self.device = device

    def fit(self, X: Any, y: Any) -> RidgeProbe:
        """Fit on features X (n, d) and continuous targets y (n,) or (n, t)."""
        dev = resolve_device(self.device)
        x, y_np = validate_input(self, X, y, reset=True, device=dev, dtype=torch.float64, min_samples=2,
                                 y_numeric=True, multi_output=True)
        yt = torch.as_tensor(np.asarray(y_np, dtype=np.float64), device=dev)
        self._1d = yt.ndim == 1
        yt = yt[:, None] if self._1d else yt
        if not torch.isfinite(yt).all():
            raise DataError("targets contain NaN or Inf; drop those rows first")
        self._scaler = Standardizer(self.standardize).fit(x)
        xs = self._scaler.transform(x)
        xm, ym = xs.mean(0), yt.mean(0)
        xc, yc = xs - xm, yt - ym
        u, s, vt = torch.linalg.svd(xc, full_matrices=False)
        uty = u.T @ yc
        alphas = [float(a) for a in self.alphas] if self.alphas else [float(self.alpha)]
        if min(alphas) < 0:
            raise ConfigError(f"ridge alpha must be >= 0, got {min(alphas)}")
        self.loo_errors_ = {}
        if len(alphas) > 1:
            n = x.shape[0]
            for a in alphas:
                f = s * s / (s * s + a)
                fit = u @ (f[:, None] * uty)
                h = (u * u) @ f + 1.0 / n
                loo = (yc - fit) / (1.0 - h)[:, None]
                self.loo_errors_[a] = float((loo * loo).mean())
            self.alpha_ = min(alphas, key=lambda a: self.loo_errors_[a])
        else:
            self.alpha_ = alphas[0]
        sinv = s / (s * s + self.alpha_)
        w = vt.T @ (sinv[:, None] * uty)
        self._w, self._b = w, ym - xm @ w
        self.coef_ = w.T.cpu().numpy()
        self.intercept_ = self._b.cpu().numpy()
        if self._1d:
            self.coef_, self.intercept_ = self.coef_[0], float(self.intercept_[0])
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets."""
        require_fitted(self, "_w")
        x = self._scaler.transform(validate_input(self, X, reset=False, device=self._w.device, dtype=torch.float64,
                                                  purpose="predicting"))
        out = (x @ self._w + self._b).cpu().numpy()
        return out[:, 0] if self._1d else out

    def spearman(self, X: Any, y: Any) -> float:
        """Spearman ρ between predictions and targets (first target column if several)."""
        p = self.predict(X)
        yy = np.asarray(y, dtype=np.float64)
        return spearman(p if p.ndim == 1 else p[:, 0], yy if yy.ndim == 1 else yy[:, 0])

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # dense features only: sparse input is refused with a one-line DataError
        tags.target_tags.multi_output = True  # y may be (n, t): one ridge solution per target column
        return tags
