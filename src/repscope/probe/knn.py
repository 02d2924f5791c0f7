"""k-nearest-neighbour probe (cosine or L2), majority or DINO temperature-weighted vote, chunked over queries."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from repscope.errors import ConfigError
from repscope.probe.base import ProbeClassifier, cpu_threads_for, encode_labels, to_2d
from repscope.probe.logistic import _dtype
from repscope.selection import smallest_k

METRICS = ("cosine", "euclidean")


def knn_search(queries: torch.Tensor, gallery: torch.Tensor, k: int, metric: str = "cosine",
               chunk_size: int = 2048, exclude_self: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Exact k-NN: (distances (m, k), indices (m, k)), ascending; equal distances are broken by lower gallery index.

    Memory is O(chunk_size × n_gallery). Distances are cosine distances or Euclidean (not squared) distances.
    `exclude_self` drops gallery item i for query i (queries and gallery must then be the same rows).
    """
    work = float(min(queries.shape[0], chunk_size)) * gallery.shape[0] * gallery.shape[1]
    with cpu_threads_for(work, gallery.device):
        return _knn_search(queries, gallery, k, metric, chunk_size, exclude_self)


def _knn_search(queries: torch.Tensor, gallery: torch.Tensor, k: int, metric: str, chunk_size: int,
                exclude_self: bool) -> tuple[torch.Tensor, torch.Tensor]:
    if metric not in METRICS:
        raise ConfigError(f"metric '{metric}' unknown; use one of {', '.join(METRICS)}")
    n = gallery.shape[0]
    if k < 1 or k > n - int(exclude_self):
        raise ConfigError(f"k={k} neighbours requested but the gallery has {n - int(exclude_self)} candidates")
    cosine = metric == "cosine"
    if cosine:  # rank by similarity q̂·ĝ (largest first); distance = 1 − similarity
        gallery = torch.nn.functional.normalize(gallery, dim=1)
        queries = torch.nn.functional.normalize(queries, dim=1)
        g_sq = None
    else:  # rank by the per-row shifted key ‖g‖² − 2q·g (smallest first); ‖q‖² is added back after
        g_sq = (gallery * gallery).sum(1)
    m = queries.shape[0]
    # one reusable score block of at most ~32 MB: a fresh (m × n) buffer per call costs more in page faults than
    # the selection, and taller blocks keep the matmul near peak
    block = max(1, min(chunk_size, m, (1 << 23) // n))
    buf = torch.empty(block, n, dtype=gallery.dtype, device=gallery.device)
    gal_t = gallery.T
    out_d = torch.empty(m, k, dtype=gallery.dtype, device=gallery.device)
    out_i = torch.empty(m, k, dtype=torch.long, device=gallery.device)
    kk = min(k + 1, n)  # one extra neighbour reveals ties at the k-th place
    for s in range(0, m, block):
        q = queries[s : s + block]
        key = buf[: q.shape[0]]
        if cosine:
            torch.mm(q, gal_t, out=key)
        else:
            torch.addmm(g_sq[None, :], q, gal_t, alpha=-2.0, out=key)
        if exclude_self:
            rows = torch.arange(q.shape[0], device=key.device)
            key[rows, rows + s] = float("-inf") if cosine else float("inf")
        vals, idx = smallest_k(key, kk, largest=cosine)
        order = torch.sort(vals, dim=1, descending=cosine).indices
        vals, idx = vals.gather(1, order), idx.gather(1, order)
        if kk > k:
            tied = vals[:, k] == vals[:, k - 1]
            vals, idx = vals[:, :k], idx[:, :k]
            if bool(tied.any()):  # exact ties at the k-th key: stable sort those rows so lower indices win
                rows = tied.nonzero().squeeze(1)
                srt = torch.sort(key[rows], dim=1, descending=cosine, stable=True)
                vals[rows], idx[rows] = srt.values[:, :k], srt.indices[:, :k]
        if cosine:
            vals = 1.0 - vals
        else:
            vals = (vals + (q * q).sum(1, keepdim=True)).clamp_min_(0.0)
        # order equal distances inside the top k by gallery index (deterministic output)
        by_idx = torch.argsort(idx, dim=1)
        vals, idx = vals.gather(1, by_idx), idx.gather(1, by_idx)
        by_val = torch.sort(vals, dim=1, stable=True).indices
        vals, idx = vals.gather(1, by_val), idx.gather(1, by_val)
        out_d[s : s + block] = vals if cosine else vals.sqrt()
        out_i[s : s + block] = idx
    return out_d, out_i


class KNNProbe(ProbeClassifier):
    """k-NN probe as used in self-supervised evaluation.

    weights="uniform": majority vote of the k nearest training points (ties → first class, as scikit-learn).
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
        x = to_2d(X, self._device(), _dtype(self.dtype))
        self.classes_, codes = encode_labels(y)
        if len(codes) != x.shape[0]:
            raise ConfigError(f"X has {x.shape[0]} rows but y has {len(codes)}; pass one label per row")
        if self.n_neighbors > x.shape[0]:
            raise ConfigError(f"n_neighbors={self.n_neighbors} exceeds the {x.shape[0]} training samples")
        self._x = x
        self._codes = torch.as_tensor(codes, device=x.device)
        self.n_features_in_ = x.shape[1]
        self.n_samples_fit_ = x.shape[0]
        return self

    def kneighbors(self, X: Any, n_neighbors: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(distances, indices) of the nearest training points for each row of X."""
        self._check_fitted()
        q = to_2d(X, self._x.device, self._x.dtype)
        d, i = knn_search(q, self._x, n_neighbors or self.n_neighbors, self.metric, self.chunk_size)
        return d.cpu().numpy(), i.cpu().numpy()

    def _votes(self, X: Any) -> torch.Tensor:
        self._check_fitted()
        q = to_2d(X, self._x.device, self._x.dtype)
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
        """Vote mass per class (n, k), normalised to sum to 1."""
        return self.predict_proba(X)

    def predict_proba(self, X: Any) -> np.ndarray:
        """Fraction of (weighted) votes per class."""
        v = self._votes(X)
        return (v / v.sum(1, keepdim=True)).cpu().numpy()

    def predict(self, X: Any) -> np.ndarray:
        """Majority (or weighted) vote; ties go to the first class in `classes_`."""
        v = self._votes(X).cpu().numpy()
        return self.classes_[np.argmax(v, axis=1)]
