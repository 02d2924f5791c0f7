"""k-nearest-neighbour probe (cosine or L2), majority or DINO temperature-weighted vote, chunked over queries."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from repscope.errors import ConfigError
from repscope.kernels.estimator import ProbeClassifier
from repscope.kernels.knn import METRICS, knn_search
from repscope.kernels.logistic import _dtype

# knn_search lives in repscope.kernels.knn (the one engine's entry point); repscope.probe re-exports it from here


class KNNProbe(ProbeClassifier):
    """k-NN probe as used in self-supervised evaluation, on repscope's one exact kNN engine (`knn_search`).

    Neighbours: the k nearest training rows by (float64 distance, training-row index), so at equal distance the
    earlier training row is the neighbour. weights="uniform": majority vote of the k nearest training points (vote
    ties → first class in `classes_`, as scikit-learn).
    weights="temperature": DINO's weighted vote (Caron et al. 2021), class score Σ_{i∈kNN} exp(sᵢ/T)·[yᵢ = c] with
    sᵢ the cosine similarity (−distance for L2). weights="distance": 1/d weights (scikit-learn's "distance").
    """

    def __init__(self, n_neighbors: int = 5, metric: str = "cosine", weights: str = "uniform",
                 temperature: float = 0.07, chunk_size: int = 2048, dtype: str = "float32", device: str = "auto"):
        self.n_neighbors = n_neighbors
        self.metric = metric
        self.weights = weights
        self.temperature = temperature
        self.chunk_size = chunk_size
        self.dtype = dtype
        self.device = device

    def fit(self, X: Any, y: Any) -> KNNProbe:
        """Store the training features and labels (on the probe's device)."""
        if self.metric not in METRICS:
            raise ConfigError(f"metric '{self.metric}' unknown; use one of {', '.join(METRICS)}")
        if self.weights not in ("uniform", "temperature", "distance"):
            raise ConfigError(f"weights '{self.weights}' unknown; use uniform, temperature or distance")
        if self.weights == "temperature" and self.temperature <= 0:
            raise ConfigError(f"temperature must be > 0, got {self.temperature}")
        x, codes = self._fit_input(X, y, _dtype(self.dtype))
        if self.n_neighbors > x.shape[0]:
            raise ConfigError(f"n_neighbors={self.n_neighbors} exceeds the {x.shape[0]} training samples")
        self._x = x
        self._codes = torch.as_tensor(codes, device=x.device)
        self.n_samples_fit_ = x.shape[0]
        return self

    def kneighbors(self, X: Any, n_neighbors: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices) of the nearest training points for each row of X (tie rule: see `knn_search`)."""
        q = self._input(X, self._device(), _dtype(self.dtype))
        d, i = knn_search(q, self._x, n_neighbors or self.n_neighbors, self.metric, self.chunk_size)
        return d.cpu().numpy(), i.cpu().numpy()

    def _votes(self, X: Any) -> torch.Tensor:
        q = self._input(X, self._device(), _dtype(self.dtype))
        d, i = knn_search(q, self._x, self.n_neighbors, self.metric, self.chunk_size)
        labels = self._codes[i]
        if self.weights == "uniform":
            w = torch.ones_like(d, dtype=torch.float64)
        elif self.weights == "distance":
            d64 = d.to(torch.float64)
            zero = d64 == 0
            w = torch.where(zero.any(1, keepdim=True), zero.to(torch.float64), 1.0 / d64.clamp_min(1e-300))
        else:
            s = (1.0 - d) if self.metric == "cosine" else -d
            w = torch.exp((s.to(torch.float64) - s.max(1, keepdim=True).values) / self.temperature)
        votes = torch.zeros(q.shape[0], len(self.classes_), dtype=torch.float64, device=q.device)
        votes.scatter_add_(1, labels, w)
        return votes

    def decision_function(self, X: Any) -> np.ndarray:
        """Vote share per class (n, k), summing to 1; for two classes the margin p₁ − p₀, shape (n,)."""
        return self._margin(self.predict_proba(X))

    def predict_proba(self, X: Any) -> np.ndarray:
        """Fraction of (weighted) votes per class."""
        v = self._votes(X)
        return (v / v.sum(1, keepdim=True)).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Majority (or weighted) vote; ties go to the first class in `classes_`."""
        v = self._votes(X).cpu().numpy()
        return self.classes_[np.argmax(v, axis=1)]
