"""Rank and spectra: singular values, covariance eigenvalues, effective / stable / numerical rank, power-law α."""

from __future__ import annotations

import math
from contextlib import AbstractContextManager, nullcontext
from contextvars import ContextVar, Token

import torch
from torch import Tensor

from repscope.device import as_matrix as shared_as_matrix
from repscope.threads import limit_threads


def as_matrix(x, device: str | torch.device | None = "auto", dtype: torch.dtype = torch.float64) -> Tensor:
    """2-D tensor on `device` for a geometry measure (see `repscope.device.as_matrix`)."""
    return shared_as_matrix(x, device, dtype, name="representation", purpose="measuring geometry")


def lapack_single_thread(t: Tensor) -> AbstractContextManager[None]:
    """Run a CPU LAPACK call on one thread (through `repscope.threads.limit_threads`, which restores the count).

    MKL's threaded SVD/eigh slows down 10–100× when the cores are oversubscribed (measured: 1000×384 svdvals, 0.1 s
    on one thread vs 5–10 s on two busy ones), while for the matrices here one thread is about as fast anyway.
    """
    if t.device.type != "cpu" or torch.get_num_threads() == 1:
        return nullcontext()
    return limit_threads(1, blas=False)


_ACTIVE: ContextVar[SpectrumCache | None] = ContextVar("repscope_spectrum_cache", default=None)


class SpectrumCache:
    """Share one SVD of one matrix between several spectral measures, explicitly and only inside a `with` block.

    `with SpectrumCache(x):` declares that, in the block, calls on the tensor `x` (or a view of the same memory with
    the same shape, dtype and device; the caller promises not to modify it in place) reuse its singular values; the
    explicit key is (that tensor, center).
    Nothing is cached outside the block, and leaving it restores whatever cache was active before. Usage::

        cache = SpectrumCache(x)
        with cache:
            effective_rank(x, center=True); stable_rank(x, center=True)  # one SVD
    """

    def __init__(self, x: Tensor):
        self.x = x
        self.values: dict[bool, Tensor] = {}
        self._tokens: list[Token] = []

    def _same(self, t: Tensor) -> bool:
        x = self.x
        return t is x or (isinstance(x, Tensor) and t.data_ptr() == x.data_ptr() and t.shape == x.shape
                          and t.stride() == x.stride() and t.dtype == x.dtype and t.device == x.device)

    def lookup(self, t: Tensor, center: bool) -> Tensor | None:
        """Cached singular values of `t` (only when `t` is this cache's tensor), else None."""
        return self.values.get(center) if self._same(t) else None

    def store(self, t: Tensor, center: bool, sv: Tensor) -> None:
        """Keep the singular values of `t` when it is this cache's tensor."""
        if self._same(t):
            self.values[center] = sv

    def __enter__(self) -> SpectrumCache:
        self._tokens.append(_ACTIVE.set(self))
        return self

    def __exit__(self, *exc: object) -> None:
        _ACTIVE.reset(self._tokens.pop())


def singular_values(x, center: bool = False, device: str = "auto") -> Tensor:
    """Singular values of X (rows = samples), descending, in float64; `center` subtracts the column means first.

    Inside `with SpectrumCache(x):` (same tensor object) the SVD is computed once and shared; nowhere else.
    """
    t = as_matrix(x, device)
    cache = _ACTIVE.get()
    hit = cache.lookup(t, center) if cache is not None else None
    if hit is not None:
        return hit
    src = t
    if center:
        t = t - t.mean(0, keepdim=True)
    with lapack_single_thread(t):
        sv = torch.linalg.svdvals(t)
    if cache is not None:
        cache.store(src, center, sv)
    return sv


def covariance_eigenvalues(x, device: str = "auto") -> Tensor:
    """Eigenvalues of the sample covariance (1/(n−1)) XᶜᵀXᶜ, descending (min(n, d) of them), from the SVD."""
    t = as_matrix(x, device)
    n = t.shape[0]
    s = singular_values(t, center=True, device=t.device)
    return s * s / max(n - 1, 1)


def effective_rank(x, center: bool = False, device: str = "auto") -> float:
    """Effective rank (Roy & Vetterli 2007): exp(H(p)), pᵢ = σᵢ/Σσⱼ, H the Shannon entropy (nats)."""
    s = singular_values(x, center=center, device=device)
    tot = s.sum()
    if tot <= 0:
        return 0.0
    p = s / tot
    p = p[p > 0]
    return float(torch.exp(-(p * p.log()).sum()))


def stable_rank(x, center: bool = False, device: str = "auto") -> float:
    """Stable rank (Rudelson & Vershynin 2007): ‖X‖_F² / ‖X‖₂² = Σσᵢ² / σ₁²."""
    s = singular_values(x, center=center, device=device)
    return float((s * s).sum() / (s[0] * s[0])) if s[0] > 0 else 0.0


def numerical_rank(x, tol: float | None = None, rtol: float | None = None, center: bool = False,
                   device: str = "auto") -> int:
    """Numerical rank: #{σᵢ > τ}, τ = tol, or rtol·σ₁, or by default max(n, d)·eps·σ₁ (as numpy.linalg.matrix_rank)."""
    t = as_matrix(x, device)
    s = singular_values(t, center=center, device=t.device)
    if s.numel() == 0 or s[0] == 0:
        return 0
    if tol is None:
        r = rtol if rtol is not None else max(t.shape) * torch.finfo(torch.float64).eps
        tol = float(s[0]) * r
    return int((s > tol).sum())


def powerlaw_alpha(eigenvalues, fit_range: tuple[int, int] = (5, 100)) -> float:
    """Eigenspectrum decay α (α-ReQ, Agrawal et al. 2022): least-squares slope of log λᵢ = c − α log i, i in fit_range.

    `fit_range` = (first, last) 1-based ranks, inclusive, clipped to the positive eigenvalues; NaN if < 3 remain.
    """
    lam = torch.as_tensor(eigenvalues, dtype=torch.float64).flatten()
    lam = torch.sort(lam, descending=True).values
    lo, hi = fit_range
    hi = min(hi, int((lam > 0).sum()))
    lo = max(1, lo)
    if hi - lo + 1 < 3:
        return math.nan
    ranks = torch.arange(lo, hi + 1, dtype=torch.float64, device=lam.device)
    lx = ranks.log()
    ly = lam[lo - 1 : hi].log()
    lxc = lx - lx.mean()
    slope = (lxc * (ly - ly.mean())).sum() / (lxc * lxc).sum()
    return float(-slope)


def spectrum(x, device: str = "auto", normalize: bool = True) -> list[float]:
    """Covariance eigenvalues, descending, for plotting; divided by their sum when `normalize` (variance fractions)."""
    lam = covariance_eigenvalues(x, device=device)
    if normalize and lam.sum() > 0:
        lam = lam / lam.sum()
    return [float(v) for v in lam.cpu()]
