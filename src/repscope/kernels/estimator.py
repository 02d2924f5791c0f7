"""Shared plumbing for the torch-backed estimators: input conversion, label encoding, standardization, the classifier
base class and the thread limit for small CPU problems."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from repscope.device import as_matrix, resolve_device
from repscope.threads import limit_threads
from repscope.validation import classification_labels, require_fitted, validate_input


def to_2d(x: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Features as a 2-D tensor (n, d) on `device` (see `repscope.device.as_matrix`); 1-D input is refused."""
    return as_matrix(x, device, dtype, allow_1d=False, purpose="probing")


def encode_labels(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return (classes_, codes) with classes sorted as np.unique sorts them (like scikit-learn)."""
    return classification_labels(y)


SMALL_WORK = 2e7  # multiply-adds per matmul below which one CPU thread beats several (thread wake-ups dominate)


@contextmanager
def cpu_threads_for(work: float, device: torch.device) -> Iterator[None]:
    """Run small CPU problems on one thread: OpenMP barriers cost more than the matmuls, badly so on shared cores."""
    small = device.type == "cpu" and work < SMALL_WORK and torch.get_num_threads() > 1
    with limit_threads(1 if small else None, blas=False):  # torch's pool only: BLAS here is torch's own
        yield


class Standardizer:
    """Column z-scoring (mean 0, std 1, ddof=0) fitted once and applied on-device; constant columns are left at 0."""

    def __init__(self, enabled: bool = True):
        self.enabled = enabled
        self.mean: torch.Tensor | None = None
        self.scale: torch.Tensor | None = None

    @staticmethod
    def _rows(x: torch.Tensor) -> int:
        """Rows per ~2 MB float64 block: the float64 work stays in cache instead of a full float64 copy of x."""
        return max(1, (1 << 18) // max(1, x.shape[1]))

    def fit(self, x: torch.Tensor) -> Standardizer:
        if self.enabled:
            n, bs = x.shape[0], self._rows(x)
            self.mean = x.sum(0, dtype=torch.float64) / n
            ss = torch.zeros_like(self.mean)
            for s in range(0, n, bs):  # two-pass variance in float64, one cache-sized block at a time
                c = x[s : s + bs].to(torch.float64) - self.mean
                ss += (c * c).sum(0)
            std = (ss / n).sqrt()
            self.scale = torch.where(std > 0, std, torch.ones_like(std))
        return self

    def transform(self, x: torch.Tensor) -> torch.Tensor:
        if not self.enabled or self.mean is None:
            return x
        if x.dtype == torch.float64:
            return (x - self.mean) / self.scale
        out = torch.empty_like(x)
        bs = self._rows(x)
        for s in range(0, x.shape[0], bs):  # float64 arithmetic (as before), blockwise
            out[s : s + bs] = (x[s : s + bs].to(torch.float64) - self.mean) / self.scale
        return out


class ProbeClassifier(ClassifierMixin, BaseEstimator):
    """Base for torch-backed classifier probes: input validation (`repscope.validation`), label handling, `predict`,
    `score` (accuracy) and device choice. Binary `decision_function` is a margin of shape (n,), > 0 for classes_[1]."""

    def _device(self) -> torch.device:
        return resolve_device(getattr(self, "device", "auto"))

    def _check_fitted(self) -> None:
        require_fitted(self, "classes_")

    def _fit_input(self, X: Any, y: Any, dtype: torch.dtype,
                   device: torch.device | None = None) -> tuple[torch.Tensor, np.ndarray]:
        """Validated training features (tensor) and label codes; sets n_features_in_ and classes_."""
        x, y = validate_input(self, X, y, reset=True, device=device or self._device(), dtype=dtype, min_samples=2)
        self.classes_, codes = encode_labels(y)
        return x, codes

    def _input(self, X: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
        """Validated features for prediction (width checked against n_features_in_)."""
        self._check_fitted()
        return validate_input(self, X, reset=False, device=device, dtype=dtype, purpose="predicting")

    @staticmethod
    def _margin(scores: np.ndarray) -> np.ndarray:
        """scikit-learn's binary convention: (n, 2) class scores become the margin score₁ − score₀, shape (n,)."""
        return scores[:, 1] - scores[:, 0] if scores.ndim == 2 and scores.shape[1] == 2 else scores

    def decision_function(self, X: Any) -> np.ndarray:  # pragma: no cover - overridden
        raise NotImplementedError

    def predict(self, X: Any) -> np.ndarray:
        """Class with the highest score; exact ties go to the first class in `classes_` (as numpy's argmax)."""
        scores = np.asarray(self.decision_function(X))
        if scores.ndim == 1:  # binary margin
            return self.classes_[(scores > 0).astype(int)]
        return self.classes_[np.argmax(scores, axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = False
        tags.input_tags.sparse = False  # dense features only: sparse input is refused with a one-line DataError
        tags.input_tags.allow_nan = False
        return tags
