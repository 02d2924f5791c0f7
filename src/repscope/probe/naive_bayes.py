"""Gaussian generative probes: naive Bayes (per-class diagonal covariance) and LDA (shared covariance)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from repscope.errors import ConfigError
from repscope.probe.base import ProbeClassifier, cpu_threads_for


class NaiveBayesProbe(ProbeClassifier):
    """Gaussian generative probe (Ng & Jordan 2001, "discriminative vs generative classifiers").

    covariance="diag": Gaussian naive Bayes, log p(c) − ½Σⱼ[log 2πσ²_cj + (xⱼ−μ_cj)²/σ²_cj], with
    σ² = class variance + var_smoothing·max_j Var(xⱼ) (scikit-learn's GaussianNB rule, float64).
    covariance="shared": LDA, one pooled within-class covariance Σ (shrunk towards (tr Σ/d)·I by `shrinkage`),
    score log p(c) + xᵀΣ⁻¹μ_c − ½μ_cᵀΣ⁻¹μ_c.
    """

    def __init__(self, covariance: str = "diag", var_smoothing: float = 1e-9, shrinkage: float = 1e-3,
                 priors: Any = None, device: str = "auto"):
        self.covariance = covariance
        self.var_smoothing = var_smoothing
        self.shrinkage = shrinkage
        self.priors = priors
        self.device = device

    def fit(self, X: Any, y: Any) -> NaiveBayesProbe:
        """Estimate class priors, means and (diagonal or pooled) covariance in float64."""
        if self.covariance not in ("diag", "shared"):
            raise ConfigError(f"covariance '{self.covariance}' unknown; use 'diag' (naive Bayes) or 'shared' (LDA)")
        if not 0.0 <= self.shrinkage <= 1.0:
            raise ConfigError(f"shrinkage must be in [0, 1], got {self.shrinkage}")
        dev = self._device()
        x, codes_np = self._fit_input(X, y, torch.float64, dev)
        with cpu_threads_for(float(x.shape[0] * x.shape[1]) * 10, dev):
            return self._fit(x, codes_np, dev)

    def _fit(self, x: torch.Tensor, codes_np: np.ndarray, dev: torch.device) -> NaiveBayesProbe:
        k, (n, d) = len(self.classes_), x.shape
        codes = torch.as_tensor(codes_np, device=dev)
        counts = torch.bincount(codes, minlength=k).to(torch.float64)
        onehot = torch.zeros(n, k, dtype=torch.float64, device=dev)
        onehot[torch.arange(n, device=dev), codes] = 1.0
        means = (onehot.T @ x) / counts[:, None]
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
        resid = x - means[codes]
        if self.covariance == "diag":
            self.epsilon_ = float(self.var_smoothing * x.var(0, unbiased=False).max())
            var = (onehot.T @ (resid * resid)) / counts[:, None] + self.epsilon_
            self._var = var
            self.var_ = var.cpu().numpy()
        else:
            cov = (resid.T @ resid) / n
            mu = torch.trace(cov) / d
            cov = (1 - self.shrinkage) * cov + self.shrinkage * mu * torch.eye(d, dtype=torch.float64, device=dev)
            self.covariance_ = cov.cpu().numpy()
            prec_means = torch.linalg.solve(cov, means.T)  # (d, k)
            self._coef = prec_means
            self._bias = self._log_prior - 0.5 * (means.T * prec_means).sum(0)
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
