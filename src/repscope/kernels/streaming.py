"""Streaming statistics: a layer read from disk chunk by chunk, memory bounded by the width, not by the number of rows.

Each accumulator sums float64 sufficient statistics over store chunks (optionally restricted to sorted row indices)
and equals its in-memory counterpart up to rounding. Sums are taken around a shift (the first chunk's mean) so that
one-pass variances do not cancel catastrophically when the mean is large.

- `layer_stats`: one pass for the geometry measures (moments + sums of unit rows); `LayerStats.eigenvalues`
  (covariance spectrum) and `LayerStats.cosine_contributions` (Timkey & van Schijndel 2021);
- `streaming_spectrum` / `streaming_participation_ratio`: covariance eigenvalues from Σx and ΣxxᵀT (Gao et al. 2017 PR);
- `streaming_mean_cosine`: anisotropy (Ethayarajh 2019), exact (‖Σûᵢ‖² − n)/(n(n−1)) over unit rows;
- `RidgeSums` / `RidgeSystem`: the statistics and normal equations behind `RidgeProbe.partial_fit` and
  `RidgeProbe.fit_blocks` (standardized normal equations instead of an SVD of X; with several `alphas`, α by exact
  leave-one-out error from a second pass, as `RidgeProbe.fit` chooses it);
- `ClassSums`: the per-class moments behind `NaiveBayesProbe.partial_fit` / `fit_blocks` (naive Bayes and LDA);
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


class MomentSum:
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
    acc = MomentSum()
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
    acc, n_unit, col, sq = MomentSum(), 0, None, None
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


class RidgeSums:
    """First-pass sufficient statistics of ridge regression on one target, block by block: the rows' `MomentSum`
    and Σ(x − s)(y − y₀), Σ(y − y₀), with s the first block's row mean and y₀ its target mean (float64)."""

    def __init__(self) -> None:
        self.x, self.xy, self.y, self.y0 = MomentSum(), None, 0.0, None

    @property
    def n(self) -> int:
        return self.x.n

    def add(self, x: Tensor, t: Tensor) -> None:
        """Add a float64 block of rows `x` (b, d) and their targets `t` (b,)."""
        if not torch.isfinite(t).all():
            raise DataError("targets contain NaN or Inf; drop those rows first")
        self.y0 = float(t.mean()) if self.y0 is None else self.y0
        xs = self.x.add(x)
        self.xy = xs.T @ (t - self.y0) if self.xy is None else self.xy + xs.T @ (t - self.y0)
        self.y += float((t - self.y0).sum())

    def system(self, standardize: bool = True) -> RidgeSystem:
        """The standardized, centred normal equations of the rows added so far, in their eigenbasis."""
        if self.n < 2:
            raise DataError("ridge needs at least 2 rows")
        n, m = self.n, self.x.result("ridge")
        ms, ys = m.sum / n, self.y / n  # means of the shifted rows and targets
        cov = m.scatter()  # XᶜᵀXᶜ
        xy = self.xy - n * ms * ys  # Xᶜᵀyᶜ
        scale = torch.ones_like(ms)
        if standardize:
            std = (torch.diagonal(cov) / n).clamp_min(0).sqrt()
            scale = torch.where(std > 0, std, torch.ones_like(std))
        g, b = cov / torch.outer(scale, scale), xy / scale
        eig, vec = torch.linalg.eigh(g)
        return RidgeSystem(n, m.mean, self.y0 + ys, self.y0, ys, scale, eig.clamp_min(0), vec, vec.T @ b)


@dataclass
class RidgeSystem:
    """Ridge (Hoerl & Kennard 1970) on z-scored features as normal equations (ZᶜᵀZᶜ + αI)w = Zᶜᵀyᶜ, with
    ZᶜᵀZᶜ = V diag(λ) Vᵀ: w(α) = V diag(1/(λ + α)) Vᵀ Zᶜᵀyᶜ. Built by `RidgeSums.system`."""

    n: int
    mean: Tensor  # row mean
    y_mean: float  # target mean (y₀ + mean of y − y₀)
    y0: float
    y_shift_mean: float
    scale: Tensor  # feature std (1 where constant or not standardized)
    eig: Tensor
    vec: Tensor
    vtb: Tensor  # Vᵀ Zᶜᵀyᶜ

    def inverse(self, alpha: float) -> Tensor:
        """1/(λ + α), 0 where λ + α = 0."""
        den = self.eig + alpha
        return torch.where(den > 0, 1.0 / torch.where(den > 0, den, torch.ones_like(den)), torch.zeros_like(den))

    def coef(self, alpha: float) -> Tensor:
        """Weights on the raw features for penalty α."""
        return self.vec @ (self.vtb * self.inverse(alpha)) / self.scale

    def intercept(self, w: Tensor) -> float:
        """The intercept that goes with raw-feature weights `w`."""
        return float(self.y_mean - self.mean @ w)

    def loo_sse(self, x: Tensor, t: Tensor, alphas: Sequence[float]) -> Tensor:
        """One block's Σᵢ(eᵢ/(1 − hᵢᵢ))² per α (exact leave-one-out residuals, hᵢᵢ = zᵢᵀ(ZᶜᵀZᶜ + αI)⁻¹zᵢ + 1/n):
        summed over all rows and divided by n, the leave-one-out error `RidgeProbe` chooses α by."""
        inv = torch.stack([self.inverse(a) for a in alphas], 1)  # (d, A)
        coef_p = self.vtb[:, None] * inv  # each α's weights in the eigenbasis
        p = ((x - self.mean) / self.scale) @ self.vec
        resid = (t - self.y0 - self.y_shift_mean)[:, None] - p @ coef_p
        h = (p * p) @ inv + 1.0 / self.n
        return ((resid / (1.0 - h)) ** 2).sum(0)


class ClassSums:
    """Per-class sufficient statistics of the Gaussian generative probes, block by block: the rows' `MomentSum`, and
    per class the count, Σ(x − s) and Σ(x − s)² (s the first block's mean), plus Σ(x − s)² over all rows (float64)."""

    def __init__(self, n_classes: int) -> None:
        self.k, self.x = n_classes, MomentSum()
        self.count = torch.zeros(n_classes, dtype=torch.float64)
        self.s1 = self.s2 = self.total2 = None

    def add(self, x: Tensor, codes: np.ndarray) -> None:
        """Add a float64 block of rows `x` (b, d) with their class codes (b,) in 0..k−1."""
        xs = self.x.add(x)
        onehot = torch.nn.functional.one_hot(torch.as_tensor(codes), self.k).to(torch.float64)
        if self.s1 is None:
            d = x.shape[1]
            self.s1 = torch.zeros(self.k, d, dtype=torch.float64)
            self.s2 = torch.zeros(self.k, d, dtype=torch.float64)
            self.total2 = torch.zeros(d, dtype=torch.float64)
        self.count += onehot.sum(0)
        self.s1 += onehot.T @ xs
        self.s2 += onehot.T @ (xs * xs)
        self.total2 += (xs * xs).sum(0)

    def moments(self) -> tuple[Tensor, Tensor, Tensor, Tensor, Tensor]:
        """(class counts, class means, class variances (ddof 0), feature variances over all rows (ddof 0), pooled
        within-class scatter / n); a class without rows has mean 0 and variance 0."""
        if self.x.n == 0:
            raise DataError("no rows were added; pass at least one block of rows")
        m = self.x.result("")
        n = m.n
        ms = self.s1 / self.count.clamp_min(1)[:, None]  # class means of the shifted rows
        class_var = (self.s2 / self.count.clamp_min(1)[:, None] - ms * ms).clamp_min(0)
        feature_var = (self.total2 / n - (m.sum / n) ** 2).clamp_min(0)
        pooled = (m.gram - (ms.T * self.count) @ ms) / n
        return self.count, ms + m.shift, class_var, feature_var, pooled


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
