"""Analyses that stream a layer from disk chunk by chunk: memory bounded by the width, not by the number of rows.

Each function accumulates float64 sufficient statistics over store chunks (optionally restricted to sorted row
indices) and equals its in-memory counterpart up to rounding:

- `streaming_spectrum` / `streaming_participation_ratio`: covariance eigenvalues from Σx and ΣxxᵀT (Gao et al. 2017 PR);
- `streaming_mean_cosine`: anisotropy (Ethayarajh 2019), exact (‖Σûᵢ‖² − n)/(n(n−1)) over unit rows;
- `streaming_ridge`: `RidgeProbe` with one α (standardized normal equations instead of an SVD of X);
- `streaming_gaussian_probe`: `NaiveBayesProbe` (diag: naive Bayes, shared: LDA) from per-class moments;
- `streaming_score`: accuracy or R² of a fitted probe over rows read chunk by chunk.

Linear CKA streams already (`repscope.similarity.streaming.streaming_cka_matrix`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repscope.errors import DataError


def blocks(store, layer: str, rows: np.ndarray | None = None) -> Iterator[tuple[np.ndarray, Tensor]]:
    """Yield (positions into `rows` (or row numbers), float64 block) for a pooled layer, one storage chunk at a time."""
    sel = None if rows is None else np.asarray(rows, dtype=np.int64)
    if sel is not None and len(sel) > 1 and (np.diff(sel) <= 0).any():
        raise DataError("streaming needs sorted, distinct row indices")
    for start, x in store.iter_chunks(layer, dtype=torch.float32):
        x = x.reshape(x.shape[0], -1)
        if sel is None:
            yield np.arange(start, start + x.shape[0]), x.to(torch.float64)
            continue
        lo, hi = np.searchsorted(sel, [start, start + x.shape[0]])
        if hi > lo:
            yield np.arange(lo, hi), x[torch.as_tensor(sel[lo:hi] - start)].to(torch.float64)


@dataclass
class Moments:
    """Row count, column sums and the raw Gram matrix ΣxxᵀT (float64) of a layer (optionally per class)."""

    n: int
    sum: Tensor
    gram: Tensor

    @property
    def mean(self) -> Tensor:
        return self.sum / self.n

    def covariance(self, ddof: int = 1) -> Tensor:
        """(Σxxᵀ − n·μμᵀ)/(n − ddof)."""
        m = self.mean
        return (self.gram - self.n * torch.outer(m, m)) / max(self.n - ddof, 1)


def moments(store, layer: str, rows: np.ndarray | None = None) -> Moments:
    """Moments of a pooled layer over all rows or sorted `rows`, streamed chunk by chunk."""
    n, s, g = 0, None, None
    for _, x in blocks(store, layer, rows):
        s = x.sum(0) if s is None else s + x.sum(0)
        g = x.T @ x if g is None else g + x.T @ x
        n += x.shape[0]
    if s is None:
        raise DataError(f"no rows of layer '{layer}' selected")
    return Moments(n, s, g)


def streaming_spectrum(store, layer: str, rows: np.ndarray | None = None) -> Tensor:
    """Covariance eigenvalues (1/(n−1) XᶜᵀXᶜ), descending, min(n, d) of them, clipped at 0."""
    m = moments(store, layer, rows)
    lam = torch.linalg.eigvalsh(m.covariance()).flip(0).clamp_min(0)
    return lam[: min(m.n, lam.shape[0])]


def streaming_participation_ratio(store, layer: str, rows: np.ndarray | None = None) -> float:
    """Participation ratio (Gao et al. 2017): (Σλᵢ)²/Σλᵢ², computed as tr(C)²/‖C‖²_F without an eigensolver."""
    c = moments(store, layer, rows).covariance()
    s2 = float((c * c).sum())
    return float(torch.trace(c) ** 2 / s2) if s2 > 0 else 0.0


def streaming_mean_cosine(store, layer: str, rows: np.ndarray | None = None) -> float:
    """Anisotropy (Ethayarajh 2019): mean cosine over ordered pairs of distinct non-zero rows, exact."""
    n, col = 0, None
    for _, x in blocks(store, layer, rows):
        norms = torch.linalg.vector_norm(x, dim=1)
        u = x[norms > 0] / norms[norms > 0, None]
        col = u.sum(0) if col is None else col + u.sum(0)
        n += u.shape[0]
    if col is None or n < 2:
        raise DataError("anisotropy needs at least 2 non-zero rows; use more samples")
    return float(((col * col).sum() - n) / (n * (n - 1)))


def _targets(y: Any, pos: np.ndarray) -> Tensor:
    return torch.as_tensor(np.asarray(y, dtype=np.float64)[pos])


@dataclass
class StreamingRidge:
    """A fitted ridge probe (the same model as `RidgeProbe(alpha=…)`, standardization inside): ŷ = x·coef + b."""

    coef_: np.ndarray
    intercept_: float
    alpha_: float

    def predict(self, x: Tensor | np.ndarray) -> np.ndarray:
        """Predictions for an in-memory block."""
        xx = torch.as_tensor(np.asarray(x, dtype=np.float64))
        return (xx.reshape(xx.shape[0], -1) @ torch.as_tensor(self.coef_)).numpy() + self.intercept_


def streaming_ridge(store, layer: str, y: Any, rows: np.ndarray | None = None, *, alpha: float = 1.0,
                    standardize: bool = True) -> StreamingRidge:
    """Ridge (Hoerl & Kennard 1970) on z-scored features from streamed normal equations: (ZᶜᵀZᶜ + αI)w = Zᶜᵀyᶜ.

    `y` is indexed like `rows` (one value per selected row; all rows when `rows` is None).
    """
    n, sx, sxx, sxy, sy = 0, None, None, None, 0.0
    for pos, x in blocks(store, layer, rows):
        t = _targets(y, pos)
        sx = x.sum(0) if sx is None else sx + x.sum(0)
        sxx = x.T @ x if sxx is None else sxx + x.T @ x
        sxy = x.T @ t if sxy is None else sxy + x.T @ t
        sy += float(t.sum())
        n += x.shape[0]
    if sx is None or n < 2:
        raise DataError("ridge needs at least 2 rows")
    mean, ybar = sx / n, sy / n
    cov = sxx - n * torch.outer(mean, mean)  # XᶜᵀXᶜ
    xy = sxy - n * mean * ybar  # Xᶜᵀyᶜ
    scale = torch.ones_like(mean)
    if standardize:
        std = (torch.diagonal(cov) / n).clamp_min(0).sqrt()
        scale = torch.where(std > 0, std, torch.ones_like(std))
    g = cov / torch.outer(scale, scale)
    w = torch.linalg.solve(g + alpha * torch.eye(g.shape[0], dtype=g.dtype), xy / scale) / scale
    return StreamingRidge(w.numpy(), float(ybar - mean @ w), float(alpha))


def streaming_gaussian_probe(store, layer: str, y: Any, rows: np.ndarray | None = None, *,
                             covariance: str = "diag", var_smoothing: float = 1e-9, shrinkage: float = 1e-3):
    """A fitted `NaiveBayesProbe` (diag: Gaussian naive Bayes; shared: LDA) from per-class streamed moments."""
    from repscope.probe.naive_bayes import NaiveBayesProbe

    yy = np.asarray(y)
    classes = np.unique(yy)
    k = len(classes)
    n, d = 0, None
    cnt = torch.zeros(k, dtype=torch.float64)
    s1 = s2d = gram = tot1 = tot2 = None
    for pos, x in blocks(store, layer, rows):
        codes = torch.as_tensor(np.searchsorted(classes, yy[pos]))
        onehot = torch.nn.functional.one_hot(codes, k).to(torch.float64)
        if s1 is None:
            d = x.shape[1]
            s1, s2d = torch.zeros(k, d, dtype=torch.float64), torch.zeros(k, d, dtype=torch.float64)
            gram = torch.zeros(d, d, dtype=torch.float64)
            tot1, tot2 = torch.zeros(d, dtype=torch.float64), torch.zeros(d, dtype=torch.float64)
        cnt += onehot.sum(0)
        s1 += onehot.T @ x
        s2d += onehot.T @ (x * x)
        tot1 += x.sum(0)
        tot2 += (x * x).sum(0)
        if covariance == "shared":
            gram += x.T @ x
        n += x.shape[0]
    if s1 is None:
        raise DataError(f"no rows of layer '{layer}' selected")
    est = NaiveBayesProbe(covariance=covariance, var_smoothing=var_smoothing, shrinkage=shrinkage, device="cpu")
    means = s1 / cnt[:, None]
    prior = cnt / n
    est.classes_, est.n_features_in_ = classes, d
    est.class_prior_, est.class_count_, est.theta_ = prior.numpy(), cnt.numpy(), means.numpy()
    est._log_prior, est._means = torch.log(prior), means
    if covariance == "diag":
        var_all = (tot2 / n - (tot1 / n) ** 2).clamp_min(0)
        est.epsilon_ = float(var_smoothing * var_all.max())
        est._var = (s2d / cnt[:, None] - means * means).clamp_min(0) + est.epsilon_
        est.var_ = est._var.numpy()
    else:
        cov = (gram - (means.T * cnt) @ means) / n
        mu = torch.trace(cov) / d
        cov = (1 - shrinkage) * cov + shrinkage * mu * torch.eye(d, dtype=torch.float64)
        est.covariance_ = cov.numpy()
        est._coef = torch.linalg.solve(cov, means.T)
        est._bias = est._log_prior - 0.5 * (means.T * est._coef).sum(0)
    return est


def streaming_score(est, store, layer: str, y: Any, rows: np.ndarray | None = None) -> float:
    """Accuracy of a classifier (R² of a regressor with a 1-D `intercept_`) over rows streamed chunk by chunk."""
    yy = np.asarray(y)
    if hasattr(est, "classes_"):
        hits = total = 0
        for pos, x in blocks(store, layer, rows):
            hits += int((np.asarray(est.predict(x)) == yy[pos]).sum())
            total += len(pos)
        return hits / max(total, 1)
    sse = sy = syy = 0.0
    total = 0
    for pos, x in blocks(store, layer, rows):
        t = yy[pos].astype(np.float64)
        sse += float(((np.asarray(est.predict(x)) - t) ** 2).sum())
        sy, syy, total = sy + float(t.sum()), syy + float((t * t).sum()), total + len(pos)
    sst = syy - sy * sy / total
    return 1.0 - sse / sst if sst > 0 else float("nan")
