"""Ridge-regression probe for continuous targets (R² and Spearman), closed form in float64 via SVD, or from
streamed sufficient statistics (`partial_fit`, `fit_blocks`) when the rows come block by block."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, RegressorMixin

from repscope.device import resolve_device
from repscope.errors import ConfigError, DataError
from repscope.kernels.estimator import Standardizer
from repscope.kernels.metrics import spearman
from repscope.kernels.streaming import RidgeSums, RidgeSystem
from repscope.validation import require_fitted, validate_input

# spearman lives in repscope.kernels.metrics; repscope.probe re-exports it from here


class RidgeProbe(RegressorMixin, BaseEstimator):
    """Ridge probe: W = argmin ‖Y − XW − b‖² + α‖W‖² (Hoerl & Kennard 1970), standardization inside.

    With `alphas` given, α is chosen by exact leave-one-out error from one SVD of the centred X
    (LOO residual eᵢ/(1 − Hᵢᵢ), H = U diag(s²/(s²+α)) Uᵀ + 11ᵀ/n), stored in `alpha_`.

    Rows that do not fit in memory: `partial_fit` (one block at a time, one α) and `fit_blocks` (re-readable blocks;
    several α by the same leave-one-out rule, from a second pass) solve the same model from float64 sufficient
    statistics on the CPU (`repscope.kernels.streaming.RidgeSums`), equal to `fit` up to rounding.
    """

    def __init__(self, alpha: float = 1.0, alphas: Sequence[float] | None = None, standardize: bool = True,
                 device: str = "auto"):
        self.alpha = alpha
        self.alphas = alphas
        self.standardize = standardize
        self.device = device

    def _alphas(self) -> list[float]:
        alphas = [float(a) for a in self.alphas] if self.alphas else [float(self.alpha)]
        if min(alphas) < 0:
            raise ConfigError(f"ridge alpha must be >= 0, got {min(alphas)}")
        return alphas

    def fit(self, X: Any, y: Any) -> RidgeProbe:
        """Fit on features X (n, d) and continuous targets y (n,) or (n, t)."""
        self._sums = None  # a fit starts over: partial_fit statistics are dropped
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
        alphas = self._alphas()
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

    # ---- streamed rows: float64 sufficient statistics (normal equations) on the CPU ----------------------------
    def _block(self, X: Any, y: Any, reset: bool) -> tuple[torch.Tensor, torch.Tensor]:
        x, y_np = validate_input(self, X, y, reset=reset, device=torch.device("cpu"), dtype=torch.float64,
                                 y_numeric=True)
        t = np.asarray(y_np, dtype=np.float64)
        if t.ndim != 1:
            raise DataError(f"partial_fit and fit_blocks take one target column, got y of shape {t.shape}; fit "
                            "takes several")
        return x, torch.as_tensor(t)

    def _set_streamed(self, system: RidgeSystem, alpha: float, loo: dict[float, float] | None) -> None:
        """Fitted state from normal equations: weights on the raw features (no scaler at predict time); `coef_` and
        `intercept_` in the units `fit` reports them (z-scored features when `standardize`)."""
        w = system.coef(alpha)
        self.alpha_, self.loo_errors_ = alpha, loo or {}
        self._scaler, self._1d = Standardizer(False), True
        self._w, self._b = w, system.intercept(w)
        self.coef_ = (w * system.scale).numpy()
        self.intercept_ = float(system.y_mean) if self.standardize else self._b

    def partial_fit(self, X: Any, y: Any) -> RidgeProbe:
        """Add one block of rows X (b, d) with one target y (b,) to the running sufficient statistics and refit from
        every block seen since the last `fit` (normal equations, (ZᶜᵀZᶜ + αI)w = Zᶜᵀyᶜ on z-scored features).
        One penalty, `alpha`: choosing among `alphas` by leave-one-out error needs a second pass (`fit_blocks`)."""
        alphas = self._alphas()
        if len(alphas) > 1:
            raise ConfigError("partial_fit fits one alpha; choosing among alphas by leave-one-out error needs a "
                              "second pass over the rows: use fit_blocks, or set alpha")
        first = getattr(self, "_sums", None) is None
        x, t = self._block(X, y, reset=first)
        sums = RidgeSums() if first else self._sums
        sums.add(x, t)
        self._sums = sums
        self._set_streamed(sums.system(self.standardize), alphas[0], None)
        return self

    def fit_blocks(self, blocks: Callable[[], Iterable[tuple[Any, Any]]]) -> RidgeProbe:
        """Fit from rows read block by block: each call `blocks()` yields (X (b, d), y (b,)) blocks of the training
        rows, in the same order each time. One pass accumulates the sufficient statistics; with several `alphas`, a
        second pass sums each α's exact leave-one-out errors Σᵢ(eᵢ/(1 − hᵢᵢ))²/n and the smallest wins (ties to the
        first), as `fit` chooses. Memory O(d²) whatever the number of rows; equals `fit` up to rounding."""
        alphas = self._alphas()
        self._sums = None
        sums = RidgeSums()
        for i, (X, y) in enumerate(blocks()):
            sums.add(*self._block(X, y, reset=i == 0))
        system = sums.system(self.standardize)
        loo, best = None, alphas[0]
        if len(alphas) > 1:
            sse = torch.zeros(len(alphas), dtype=torch.float64)
            for X, y in blocks():
                sse += system.loo_sse(*self._block(X, y, reset=False), alphas)
            loo = {a: float(v) / system.n for a, v in zip(alphas, sse, strict=True)}
            best = min(alphas, key=lambda a: loo[a])
        self._set_streamed(system, best, loo)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predicted targets."""
        require_fitted(self, "_w")
        x = self._scaler.transform(validate_input(self, X, reset=False, device=self._w.device, dtype=torch.float64,
                                                  purpose="predicting"))
        out = (x @ self._w + self._b).cpu().numpy()
        return out[:, 0] if self._1d and out.ndim == 2 else out

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
