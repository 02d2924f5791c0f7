"""k-sparse probe: rank single neurons, keep k, fit a logistic probe on them (Gurnee et al. 2023, "Finding Neurons in a
Haystack")."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from repscope.errors import ConfigError
from repscope.kernels.estimator import ProbeClassifier, Standardizer, cpu_threads_for
from repscope.kernels.logistic import LogisticProbe, _dtype


def mean_difference_scores(x: torch.Tensor, codes: torch.Tensor, n_classes: int) -> torch.Tensor:
    """Per-feature score maxₖ |μ_c − μ_¬c| on standardized features (binary: |μ₁ − μ₀|), a one-vs-rest effect size."""
    scores = torch.zeros(x.shape[1], dtype=torch.float64, device=x.device)
    classes = [1] if n_classes == 2 else range(n_classes)
    for c in classes:
        m = codes == c
        diff = (x[m].to(torch.float64).mean(0) - x[~m].to(torch.float64).mean(0)).abs()
        scores = torch.maximum(scores, diff)
    return scores


def l1_path_order(x: torch.Tensor, codes: torch.Tensor, n_classes: int, k: int, n_lambdas: int = 40,
                  ratio: float = 0.85, inner_iter: int = 50, tol: float = 1e-6) -> tuple[list[int], torch.Tensor]:
    """Order in which features enter an L1-regularised logistic path (Tibshirani 1996 lasso; FISTA, Beck & Teboulle
    2009): minimise mean CE + λ‖W‖₁ for λ = λ_max·ratioᵗ, warm-started, until ≥ k features are non-zero.

    Returns (entry order, |W| max over classes at the last λ). Features entering at the same λ are ranked by weight.
    """
    n, d = x.shape
    kk = 1 if n_classes == 2 else n_classes
    x = x.to(torch.float64)
    yf = codes.to(torch.float64)[:, None] if kk == 1 else None
    w = torch.zeros(d, kk, dtype=torch.float64, device=x.device)
    counts = torch.bincount(codes, minlength=n_classes).to(torch.float64)
    p = (counts / n).clamp(1e-12, 1 - 1e-12)
    b = torch.log(p[1] / p[0]).reshape(1) if kk == 1 else torch.log(p)

    def grad(wt: torch.Tensor, bt: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = x @ wt + bt
        if kk == 1:
            r = torch.sigmoid(z) - yf
        else:
            r = torch.softmax(z, 1)
            r[torch.arange(n, device=x.device), codes] -= 1.0
        return x.T @ r / n, r.mean(0)

    lip = float(torch.linalg.matrix_norm(x, ord=2) ** 2) / n * (0.25 if kk == 1 else 0.5) + 1e-12
    step = 1.0 / lip
    g0, _ = grad(w, b)
    lam = float(g0.abs().max())
    order: list[int] = []
    active = torch.zeros(d, dtype=torch.bool, device=x.device)
    for _ in range(n_lambdas):
        lam *= ratio
        v_w, v_b, t = w.clone(), b.clone(), 1.0
        for _ in range(inner_iter):
            gw, gb = grad(v_w, v_b)
            w_new = v_w - step * gw
            w_new = torch.sign(w_new) * (w_new.abs() - step * lam).clamp_min(0.0)
            b_new = v_b - step * gb
            t_new = (1 + (1 + 4 * t * t) ** 0.5) / 2
            mom = (t - 1) / t_new
            v_w = w_new + mom * (w_new - w)
            v_b = b_new + mom * (b_new - b)
            delta = float((w_new - w).abs().max())
            w, b, t = w_new, b_new, t_new
            if delta < tol:
                break
        mag = w.abs().max(1).values
        new = (mag > 0) & ~active
        if bool(new.any()):
            idx = new.nonzero().squeeze(1)
            ranked = idx[torch.argsort(-mag[idx], stable=True)]
            order.extend(int(i) for i in ranked)
            active |= new
        if len(order) >= k:
            break
    return order, w.abs().max(1).values


class SparseProbe(ProbeClassifier):
    """k-sparse probe: rank features by `method` ("mean_diff" effect size or "l1" path entry), keep the top `k`,
    fit a `LogisticProbe` (same C, standardization inside) on them. `features_` lists the chosen neurons by rank."""

    def __init__(self, k: int = 1, method: str = "mean_diff", C: float = 1.0, standardize: bool = True,
                 max_iter: int = 500, tol: float = 1e-4, dtype: str = "float32", device: str = "auto"):
        self.k = k
        self.method = method
        self.C = C
        self.standardize = standardize
        self.max_iter = max_iter
        self.tol = tol
        self.dtype = dtype
        self.device = device

    def fit(self, X: Any, y: Any) -> SparseProbe:
        """Rank features, keep k, fit the logistic probe on the kept columns."""
        if self.method not in ("mean_diff", "l1"):
            raise ConfigError(f"method '{self.method}' unknown; use mean_diff or l1")
        dev = self._device()
        x, codes_np = self._fit_input(X, y, _dtype(self.dtype), dev)
        d = x.shape[1]
        if not 1 <= int(self.k) <= d:
            raise ConfigError(f"k must be between 1 and the number of features ({d}), got {self.k}")
        codes = torch.as_tensor(codes_np, device=dev)
        xs = Standardizer(True).fit(x).transform(x)
        nc = len(self.classes_)
        scores = mean_difference_scores(xs, codes, nc)
        if self.method == "mean_diff":
            ranking = [int(i) for i in torch.argsort(-scores, stable=True)]
        else:
            with cpu_threads_for(float(xs.shape[0] * xs.shape[1] * nc), dev):
                order, mag = l1_path_order(xs, codes, nc, int(self.k))
            rest = [int(i) for i in torch.argsort(-scores, stable=True) if int(i) not in set(order)]
            ranking = order + rest
            scores = mag
        self.feature_scores_ = scores.cpu().numpy()
        self.features_ = np.asarray(ranking[: int(self.k)], dtype=np.int64)
        self._cols = np.sort(self.features_)
        self.probe_ = LogisticProbe(C=self.C, standardize=self.standardize, max_iter=self.max_iter, tol=self.tol,
                                    dtype=self.dtype, device=self.device)
        self.probe_.fit(x[:, torch.as_tensor(self._cols, device=dev)], codes_np)
        self.probe_.classes_ = self.classes_
        self.n_iter_ = self.probe_.n_iter_
        coef = np.zeros((self.probe_.coef_.shape[0], d))
        coef[:, self._cols] = self.probe_.coef_
        self.coef_ = coef
        return self

    def _sub(self, X: Any) -> torch.Tensor:
        x = self._input(X, self._device(), _dtype(self.dtype))
        return x[:, torch.as_tensor(self._cols, device=x.device)]

    def decision_function(self, X: Any) -> np.ndarray:
        """Logits of the logistic probe on the kept features."""
        self._check_fitted()
        return self.probe_.decision_function(self._sub(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Class probabilities of the logistic probe on the kept features."""
        self._check_fitted()
        return self.probe_.predict_proba(self._sub(X))

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        # by design it reads k (default 1) neurons, so it may score below scikit-learn's generic accuracy bar
        tags.classifier_tags.poor_score = True
        return tags

