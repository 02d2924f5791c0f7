"""Analyses that stream a layer from disk chunk by chunk: memory bounded by the width, not by the number of rows.

Each function accumulates float64 sufficient statistics over store chunks (optionally restricted to sorted row
indices) and equals its in-memory counterpart up to rounding. Sums are taken around a shift (the first chunk's mean)
so that one-pass variances do not cancel catastrophically when the mean is large.

- `layer_stats`: one pass for the geometry measures (moments + sums of unit rows); `LayerStats.eigenvalues`
  (covariance spectrum) and `LayerStats.cosine_contributions` (Timkey & van Schijndel 2021);
- `streaming_spectrum` / `streaming_participation_ratio`: covariance eigenvalues from Σx and ΣxxᵀT (Gao et al. 2017 PR);
- `streaming_mean_cosine`: anisotropy (Ethayarajh 2019), exact (‖Σûᵢ‖² − n)/(n(n−1)) over unit rows;
- `streaming_ridge`: `RidgeProbe` (standardized normal equations instead of an SVD of X; with several `alphas`, α
  by exact leave-one-out error from a second pass, as `RidgeProbe` chooses it);
- `streaming_gaussian_probe`: `NaiveBayesProbe` (diag: naive Bayes, shared: LDA) from per-class moments;
- `streaming_predict` / `streaming_score`: predictions, accuracy or R² of a fitted probe over rows read chunk by chunk.

Linear CKA streams too (`repscope.similarity.streaming.streaming_cka_matrix`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repscope.errors import ConfigError, DataError


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
    """Row count, column sums and Gram matrix of the shifted rows x − shift (float64; shift None = 0)."""

    n: int
    sum: Tensor
    gram: Tensor
    shift: Tensor | None = None

    @property
    def mean(self) -> Tensor:
        m = self.sum / self.n
        return m if self.shift is None else m + self.shift

    def scatter(self) -> Tensor:
        """XᶜᵀXᶜ = Σ(x − s)(x − s)ᵀ − n·m′m′ᵀ, m′ the mean of the shifted rows (translation invariant)."""
        m = self.sum / self.n
        return self.gram - self.n * torch.outer(m, m)

    def covariance(self, ddof: int = 1) -> Tensor:
        """XᶜᵀXᶜ/(n − ddof)."""
        return self.scatter() / max(self.n - ddof, 1)


class _MomentSum:
    """Accumulates Σ(x − s) and Σ(x − s)(x − s)ᵀ, s = the first block's mean."""

    def __init__(self) -> None:
        self.n, self.shift, self.sum, self.gram = 0, None, None, None

    def add(self, x: Tensor) -> Tensor:
        """Add a float64 block; returns the shifted block."""
        if self.shift is None:
            self.shift = x.mean(0)
            self.sum = torch.zeros_like(self.shift)
            self.gram = torch.zeros(x.shape[1], x.shape[1], dtype=x.dtype)
        xs = x - self.shift
        self.sum += xs.sum(0)
        self.gram += xs.T @ xs
        self.n += x.shape[0]
        return xs

    def result(self, layer: str) -> Moments:
        if self.shift is None:
            raise DataError(f"no rows of layer '{layer}' selected")
        return Moments(self.n, self.sum, self.gram, self.shift)


def moments(store, layer: str, rows: np.ndarray | None = None) -> Moments:
    """Moments of a pooled layer over all rows or sorted `rows`, streamed chunk by chunk."""
    acc = _MomentSum()
    for _, x in blocks(store, layer, rows):
        acc.add(x)
    return acc.result(layer)


def _eigenvalues(m: Moments) -> Tensor:
    lam = torch.linalg.eigvalsh(m.covariance()).flip(0).clamp_min(0)
    return lam[: min(m.n, lam.shape[0])]


@dataclass
class LayerStats:
    """One streamed pass over a layer: its moments and the column sums of its unit rows (zero rows skipped)."""

    moments: Moments
    unit_n: int
    unit_sum: Tensor
    unit_sq: Tensor

    @property
    def n(self) -> int:
        return self.moments.n

    def eigenvalues(self) -> Tensor:
        """Sample-covariance eigenvalues, descending, min(n, d) of them, clipped at 0 (as `covariance_eigenvalues`)."""
        return _eigenvalues(self.moments)

    def cosine_contributions(self) -> Tensor:
        """Per-dimension terms of the expected cosine over distinct pairs, ((Σûₖ)² − Σûₖ²)/(n(n−1))."""
        n = self.unit_n
        if n < 2:
            raise DataError("anisotropy needs at least 2 non-zero rows; use more samples")
        return (self.unit_sum * self.unit_sum - self.unit_sq) / (n * (n - 1))


def layer_stats(store, layer: str, rows: np.ndarray | None = None) -> LayerStats:
    """`LayerStats` of a pooled layer over all rows or sorted `rows`, in one pass chunk by chunk."""
    acc, n_unit, col, sq = _MomentSum(), 0, None, None
    for _, x in blocks(store, layer, rows):
        acc.add(x)
        norms = torch.linalg.vector_norm(x, dim=1)
        u = x[norms > 0] / norms[norms > 0, None]
        col = u.sum(0) if col is None else col + u.sum(0)
        sq = (u * u).sum(0) if sq is None else sq + (u * u).sum(0)
        n_unit += u.shape[0]
    return LayerStats(acc.result(layer), n_unit, col, sq)


def streaming_spectrum(store, layer: str, rows: np.ndarray | None = None) -> Tensor:
    """Covariance eigenvalues (1/(n−1) XᶜᵀXᶜ), descending, min(n, d) of them, clipped at 0."""
    return _eigenvalues(moments(store, layer, rows))


def participation_ratio_of(cov: Tensor) -> float:
    """Participation ratio (Gao et al. 2017): (Σλᵢ)²/Σλᵢ² = tr(C)²/‖C‖²_F, without an eigensolver."""
    s2 = float((cov * cov).sum())
    return float(torch.trace(cov) ** 2 / s2) if s2 > 0 else 0.0


def streaming_participation_ratio(store, layer: str, rows: np.ndarray | None = None) -> float:
    """Participation ratio (Gao et al. 2017) of a streamed layer."""
    return participation_ratio_of(moments(store, layer, rows).covariance())


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
    """A fitted ridge probe (the same model as `RidgeProbe`, standardization inside): ŷ = x·coef + b.

    `coef_` is on the raw features (`RidgeProbe.coef_` divided by the feature std); `loo_errors_` {α: mean squared
    leave-one-out error} when α was chosen among several.
    """

    coef_: np.ndarray
    intercept_: float
    alpha_: float
    loo_errors_: dict[float, float] | None = None

    def predict(self, x: Tensor | np.ndarray) -> np.ndarray:
        """Predictions for an in-memory block."""
        xx = torch.as_tensor(np.asarray(x, dtype=np.float64))
        return (xx.reshape(xx.shape[0], -1) @ torch.as_tensor(self.coef_)).numpy() + self.intercept_


def streaming_ridge(store, layer: str, y: Any, rows: np.ndarray | None = None, *, alpha: float = 1.0,
                    alphas: Sequence[float] | None = None, standardize: bool = True) -> StreamingRidge:
    """Ridge (Hoerl & Kennard 1970) on z-scored features from streamed normal equations: (ZᶜᵀZᶜ + αI)w = Zᶜᵀyᶜ.

    With several `alphas`, α minimizes the exact leave-one-out error Σᵢ(eᵢ/(1 − hᵢᵢ))²/n, hᵢᵢ = zᵢᵀ(ZᶜᵀZᶜ + αI)⁻¹zᵢ +
    1/n, from an eigendecomposition of ZᶜᵀZᶜ and a second pass over the rows (`RidgeProbe`'s rule, ties to the first).
    `y` is indexed like `rows` (one value per selected row; all rows when `rows` is None).
    """
    cands = [float(a) for a in alphas] if alphas else [float(alpha)]
    if min(cands) < 0:
        raise ConfigError(f"ridge alpha must be >= 0, got {min(cands)}")
    acc, sxy, sy, y0 = _MomentSum(), None, 0.0, None
    for pos, x in blocks(store, layer, rows):
        t = _targets(y, pos)
        if not torch.isfinite(t).all():
            raise DataError("targets contain NaN or Inf; drop those rows first")
        y0 = float(t.mean()) if y0 is None else y0
        xs = acc.add(x)
        sxy = xs.T @ (t - y0) if sxy is None else sxy + xs.T @ (t - y0)
        sy += float((t - y0).sum())
    if acc.n < 2:
        raise DataError("ridge needs at least 2 rows")
    n, m = acc.n, acc.result(layer)
    ms, ys = m.sum / n, sy / n  # means of the shifted rows and targets
    cov = m.scatter()  # XᶜᵀXᶜ
    xy = sxy - n * ms * ys  # Xᶜᵀyᶜ
    scale = torch.ones_like(ms)
    if standardize:
        std = (torch.diagonal(cov) / n).clamp_min(0).sqrt()
        scale = torch.where(std > 0, std, torch.ones_like(std))
    g, b = cov / torch.outer(scale, scale), xy / scale
    eig, vec = torch.linalg.eigh(g)
    eig = eig.clamp_min(0)
    vtb = vec.T @ b

    def inverse(a: float) -> Tensor:
        den = eig + a
        return torch.where(den > 0, 1.0 / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(den))

    loo: dict[float, float] | None = None
    best = cands[0]
    if len(cands) > 1:
        inv = torch.stack([inverse(a) for a in cands], 1)  # (d, A)
        coef_p = vtb[:, None] * inv  # each α's weights in the eigenbasis
        sse = torch.zeros(len(cands), dtype=torch.float64)
        for pos, x in blocks(store, layer, rows):
            p = ((x - m.mean) / scale) @ vec
            resid = (_targets(y, pos) - y0 - ys)[:, None] - p @ coef_p
            h = (p * p) @ inv + 1.0 / n
            sse += ((resid / (1.0 - h)) ** 2).sum(0)
        loo = {a: float(v) / n for a, v in zip(cands, sse, strict=True)}
        best = min(cands, key=lambda a: loo[a])
    w = vec @ (vtb * inverse(best)) / scale
    return StreamingRidge(w.numpy(), float(y0 + ys - m.mean @ w), best, loo)


def streaming_gaussian_probe(store, layer: str, y: Any, rows: np.ndarray | None = None, *,
                             covariance: str = "diag", var_smoothing: float = 1e-9, shrinkage: float = 1e-3,
                             priors: Any = None):
    """A fitted `NaiveBayesProbe` (diag: Gaussian naive Bayes; shared: LDA) from per-class streamed moments."""
    from repscope.probe.naive_bayes import NaiveBayesProbe
    from repscope.validation import classification_labels

    if covariance not in ("diag", "shared"):
        raise ConfigError(f"covariance '{covariance}' unknown; use 'diag' (naive Bayes) or 'shared' (LDA)")
    if not 0.0 <= shrinkage <= 1.0:
        raise ConfigError(f"shrinkage must be in [0, 1], got {shrinkage}")
    yy = np.asarray(y)
    classes, codes_all = classification_labels(yy)
    k = len(classes)
    acc = _MomentSum()
    cnt = torch.zeros(k, dtype=torch.float64)
    s1 = s2d = tot2 = None
    for pos, x in blocks(store, layer, rows):
        xs = acc.add(x)
        onehot = torch.nn.functional.one_hot(torch.as_tensor(codes_all[pos]), k).to(torch.float64)
        if s1 is None:
            d = x.shape[1]
            s1, s2d = torch.zeros(k, d, dtype=torch.float64), torch.zeros(k, d, dtype=torch.float64)
            tot2 = torch.zeros(d, dtype=torch.float64)
        cnt += onehot.sum(0)
        s1 += onehot.T @ xs
        s2d += onehot.T @ (xs * xs)
        tot2 += (xs * xs).sum(0)
    m = acc.result(layer)
    n, d = m.n, m.sum.shape[0]
    est = NaiveBayesProbe(covariance=covariance, var_smoothing=var_smoothing, shrinkage=shrinkage, priors=priors,
                          device="cpu")
    ms = s1 / cnt[:, None]  # class means of the shifted rows
    means = ms + m.shift
    if priors is None:
        prior = cnt / n
    else:
        prior = torch.as_tensor(np.asarray(priors, dtype=np.float64))
        if prior.shape != (k,) or abs(float(prior.sum()) - 1.0) > 1e-6 or bool((prior < 0).any()):
            raise ConfigError(f"priors must be {k} non-negative numbers summing to 1")
    est.classes_, est.n_features_in_ = classes, d
    est.class_prior_, est.class_count_, est.theta_ = prior.numpy(), cnt.numpy(), means.numpy()
    est._log_prior, est._means = torch.log(prior), means
    if covariance == "diag":
        var_all = (tot2 / n - (m.sum / n) ** 2).clamp_min(0)
        est.epsilon_ = float(var_smoothing * var_all.max())
        est._var = (s2d / cnt[:, None] - ms * ms).clamp_min(0) + est.epsilon_
        est.var_ = est._var.numpy()
    else:
        cov = (m.gram - (ms.T * cnt) @ ms) / n
        mu = torch.trace(cov) / d
        cov = (1 - shrinkage) * cov + shrinkage * mu * torch.eye(d, dtype=torch.float64)
        est.covariance_ = cov.numpy()
        est._coef = torch.linalg.solve(cov, means.T)
        est._bias = est._log_prior - 0.5 * (means.T * est._coef).sum(0)
    return est


def streaming_predict(est, store, layer: str, rows: np.ndarray | None = None) -> np.ndarray:
    """`est.predict` over the (sorted) `rows` of a layer, read chunk by chunk; one prediction per selected row."""
    out = [np.asarray(est.predict(x)) for _, x in blocks(store, layer, rows)]
    if not out:
        raise DataError(f"no rows of layer '{layer}' selected")
    return np.concatenate(out)


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
