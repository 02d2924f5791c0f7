"""Shared plumbing for the probe estimators: input conversion, label encoding, standardization."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, ClassifierMixin

from repscope.device import as_matrix, resolve_device
from repscope.errors import DataError


def to_2d(x: Any, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Features as a 2-D tensor (n, d) on `device` (see `repscope.device.as_matrix`); 1-D input is refused."""
    return as_matrix(x, device, dtype, allow_1d=False, purpose="probing")


def encode_labels(y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Return (classes_, codes) with classes sorted as np.unique sorts them (like scikit-learn)."""
    y = np.asarray(y.cpu() if isinstance(y, torch.Tensor) else y)
    if y.ndim != 1:
        y = y.reshape(-1)
    classes, codes = np.unique(y, return_inverse=True)
    if len(classes) < 2:
        raise DataError(f"a classifier probe needs at least 2 classes, got {len(classes)}; check the target column")
    return classes, codes


SMALL_WORK = 2e7  # multiply-adds per matmul below which one CPU thread beats several (thread wake-ups dominate)


@contextmanager
def cpu_threads_for(work: float, device: torch.device) -> Iterator[None]:
    """Run small CPU problems on one thread: OpenMP barriers cost more than the matmuls, badly so on shared cores."""
    if device.type != "cpu" or work >= SMALL_WORK or torch.get_num_threads() == 1:
        yield
        return
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(prev)


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
    """Base for torch-backed classifier probes: label handling, `predict`, `score` (accuracy) and device choice."""

    def _device(self) -> torch.device:
        return resolve_device(getattr(self, "device", "auto"))

    def _check_fitted(self) -> None:
        if not hasattr(self, "classes_"):
            from sklearn.exceptions import NotFittedError

            raise NotFittedError(f"{type(self).__name__} is not fitted yet; call fit(X, y) first")

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
        return tags
