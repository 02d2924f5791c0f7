"""Gaussian generative probes: naive Bayes (per-class diagonal covariance) and LDA (shared covariance), fitted in
memory or from streamed per-class sufficient statistics (`partial_fit`, `fit_blocks`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from repscope.errors import ConfigError, DataError
from repscope.kernels.estimator import ProbeClassifier, cpu_threads_for
from repscope.kernels.streaming import ClassSums
from repscope.validation import classification_labels, validate_input


class NaiveBayesProbe(ProbeClassifier):
    """Gaussian generative probe (Ng & Jordan 2001, "discriminative vs generative classifiers").

    covariance="diag": Gaussian naive Bayes, log p(c) − ½Σⱼ[log 2πσ²_cj + (xⱼ−μ_cj)²/σ²_cj], with
    σ² = class variance + var_smoothing·max_j Var(xⱼ) (scikit-learn's GaussianNB rule, float64).
    covariance="shared": LDA, one pooled within-class covariance Σ (shrunk towards (tr Σ/d)·I by `shrinkage`),
    score log p(c) + xᵀΣ⁻¹μ_c − ½μ_cᵀΣ⁻¹μ_c.

    Rows that do not fit in memory: `partial_fit` / `fit_blocks` estimate the same model from per-class float64
    sums on the CPU (`repscope.kernels.streaming.ClassSums`), equal to `fit` up to rounding.
    """

    def __init__(self, covariance: str = "diag", var_smoothing: float = 1e-9, shrinkage: float = 1e-3,
                 priors: Any = None, device: str = "auto"):
        self.covariance = covariance
        self.var_smoothing = var_smoothing
        self.shrinkage = shrinkage
        self.priors = priors
        self.device = device

    def _check_params(self) -> None:
        if self.covariance not in ("diag", "shared"):
            raise ConfigError(f"covariance '{self.covariance}' unknown; use 'diag' (naive Bayes) or 'shared' (LDA)")
        if not 0.0 <= self.shrinkage <= 1.0:
            raise ConfigError(f"shrinkage must be in [0, 1], got {self.shrinkage}")

    def fit(self, X: Any, y: Any) -> NaiveBayesProbe:
        """Estimate class priors, means and (diagonal or pooled) covariance in float64."""
        self._check_params()
        self._sums = None  # a fit starts over: partial_fit statistics are dropped
        dev = self._device()
        x, codes_np = self._fit_input(X, y, torch.float64, dev)
        with cpu_threads_for(float(x.shape[0] * x.shape[1]) * 10, dev):
            return self._fit(x, codes_np, dev)

    def _fit(self, x: torch.Tensor, codes_np: np.ndarray, dev: torch.device) -> NaiveBayesProbe:
        k, n = len(self.classes_), x.shape[0]
        codes = torch.as_tensor(codes_np, device=dev)
        counts = torch.bincount(codes, minlength=k).to(torch.float64)
        onehot = torch.zeros(n, k, dtype=torch.float64, device=dev)
        onehot[torch.arange(n, device=dev), codes] = 1.0
        means = (onehot.T @ x) / counts[:, None]
        resid = x - means[codes]  # exact two-pass moments
        if self.covariance == "diag":
            class_var = (onehot.T @ (resid * resid)) / counts[:, None]
            self._set_gaussian(counts, means, n, class_var=class_var, feature_var=x.var(0, unbiased=False))
        else:
            self._set_gaussian(counts, means, n, pooled=(resid.T @ resid) / n)
        return self

    def _set_gaussian(self, counts: torch.Tensor, means: torch.Tensor, n: int, *, class_var: torch.Tensor | None = None,
                      feature_var: torch.Tensor | None = None, pooled: torch.Tensor | None = None) -> None:
        """The fitted model from class counts and means and, for naive Bayes, the class variances and the feature
        variances over all rows (for the smoothing ε), for LDA the pooled within-class scatter / n (all ddof 0)."""
        k, d = means.shape
        dev = means.device
        if self.priors is None:
            prior = counts / n
        else:
            prior = torch.as_tensor(np.asarray(self.priors, dtype=np.float64), device=dev)
            if prior.shape != (k,) or abs(float(prior.sum()) - 1.0) > 1e-6 or bool((prior < 0).any()):
                raise ConfigError(f"priors must be {k} non-negative numbers summing to 1")
        self.class_prior_ = prior.cpu().numpy()
        self.class_count_ = counts.cpu().numpy()
        self.theta_ = means.cpu().numpy()
        self._log_prior = torch.log(prior)
        self._means = means
        if self.covariance == "diag":
            self.epsilon_ = float(self.var_smoothing * feature_var.max())
            var = class_var + self.epsilon_
            self._var = var
            self.var_ = var.cpu().numpy()
        else:
            mu = torch.trace(pooled) / d
            cov = (1 - self.shrinkage) * pooled + self.shrinkage * mu * torch.eye(d, dtype=torch.float64, device=dev)
            self.covariance_ = cov.cpu().numpy()
            prec_means = torch.linalg.solve(cov, means.T)  # (d, k)
            self._coef = prec_means
            self._bias = self._log_prior - 0.5 * (means.T * prec_means).sum(0)

    # ---- streamed rows: per-class float64 sums on the CPU -------------------------------------------------------
    def _add_block(self, X: Any, y: Any, classes: Any, first: bool) -> None:
        """Validate one block and add it to `_sums` (a new one, with `classes_` set, when `first`)."""
        x, y_np = validate_input(self, X, y, reset=first, device=torch.device("cpu"), dtype=torch.float64)
        y_np = np.asarray(y_np).reshape(-1)
        if first:
            self.classes_ = classification_labels(y_np if classes is None else classes)[0]
            self._sums = ClassSums(len(self.classes_))
        codes = np.searchsorted(self.classes_, y_np).clip(0, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y_np
        if unknown.any():
            raise DataError(f"label {y_np[unknown][0]!r} is not one of the classes of the first block "
                            f"({', '.join(map(repr, self.classes_))}); pass every class as `classes=` on the first "
                            "partial_fit call")
        self._sums.add(x, codes)

    def _fit_sums(self) -> NaiveBayesProbe:
        counts, means, class_var, feature_var, pooled = self._sums.moments()
        n = self._sums.x.n
        if self.covariance == "diag":
            self._set_gaussian(counts, means, n, class_var=class_var, feature_var=feature_var)
        else:
            self._set_gaussian(counts, means, n, pooled=pooled)
        return self

    def partial_fit(self, X: Any, y: Any, classes: Any = None) -> NaiveBayesProbe:
        """Add one block of rows X (b, d) with labels y (b,) to the running per-class sums and refit from every block
        seen since the last `fit`. `classes`: every label the blocks hold, needed on the first call unless that
        block has them all (later blocks may not bring new ones)."""
        first = getattr(self, "_sums", None) is None
        if first:
            self._check_params()
        self._add_block(X, y, classes, first)
        return self._fit_sums()

    def fit_blocks(self, blocks: Callable[[], Iterable[tuple[Any, Any]]], classes: Any = None) -> NaiveBayesProbe:
        """Fit from rows read block by block, in one pass: `blocks()` yields (X (b, d), y (b,)) blocks of the
        training rows; `classes` as in `partial_fit`. Memory O(k·d + d²) whatever the number of rows."""
        self._check_params()
        self._sums = None
        for i, (X, y) in enumerate(blocks()):
            self._add_block(X, y, classes, i == 0)
        if self._sums is None:
            raise DataError("no rows were added; pass at least one block of rows")
        self._fit_sums()
        self._sums = None
        return self

    def _jll(self, X: Any) -> torch.Tensor:
        x = self._input(X, self._means.device if hasattr(self, "_means") else self._device(), torch.float64)
        with cpu_threads_for(float(x.shape[0] * x.shape[1]) * len(self.classes_), x.device):
            return self._jll_impl(x)

    def _jll_impl(self, x: torch.Tensor) -> torch.Tensor:
        if self.covariance == "diag":
            var = self._var
            const = -0.5 * torch.log(2.0 * math.pi * var).sum(1)  # (k,)
            # exact squared deviations per class, summed in the same order as scikit-learn (no expansion)
            out = torch.empty(x.shape[0], var.shape[0], dtype=torch.float64, device=x.device)
            for c in range(var.shape[0]):
                out[:, c] = self._log_prior[c] + (const[c] - 0.5 * (((x - self._means[c]) ** 2) / var[c]).sum(1))
            return out
        return x @ self._coef + self._bias

    def decision_function(self, X: Any) -> np.ndarray:
        """Joint log-likelihood log p(c) + log p(x | c) per class (n, k), up to a shared constant for LDA; for two
        classes the log-odds jll₁ − jll₀, shape (n,) (scikit-learn's binary convention)."""
        return self._margin(self._jll(X).cpu().numpy())

    def predict_log_proba(self, X: Any) -> np.ndarray:
        """Log posterior (n, k)."""
        j = self._jll(X)
        return (j - torch.logsumexp(j, 1, keepdim=True)).cpu().numpy()

    def predict_proba(self, X: Any) -> np.ndarray:
        """Posterior class probabilities (n, k)."""
        return np.exp(self.predict_log_proba(X))
