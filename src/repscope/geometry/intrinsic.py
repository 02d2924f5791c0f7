"""Intrinsic dimension: TwoNN, Levina–Bickel MLE, PCA variance counts and participation ratio."""

from __future__ import annotations

from collections.abc import Sequence

import torch

from repscope.errors import ConfigError, DataError
from repscope.geometry.spectrum import covariance_eigenvalues
from repscope.kernels.knn import knn_distances


def twonn_dimension(x, discard_fraction: float = 0.1, method: str = "linear", device: str = "auto",
                    block_rows: int = 2048) -> float:
    """TwoNN (Facco et al. 2017): μᵢ = r₂/r₁ ~ Pareto(d); d = slope through 0 of −log(1−F(μ)) on log μ.

    The largest `discard_fraction` of the ratios (the standard 10%) are dropped before the fit; F(μ₍ᵢ₎) = i/N is the
    empirical CDF over all N ratios. With `discard_fraction=0` the linear fit also leaves out the largest ratio, whose
    F = 1 puts it at −log(1−F) = ∞ (the value scikit-dimension gives when it keeps N−1 of N ratios). `method="mle"`
    gives the censored closed form (k−1)/(Σᵢ≤ₖ log μ₍ᵢ₎ + (N−k) log μ₍ₖ₎), finite for every fraction.
    Points with r₁ = 0 (duplicates) are dropped.
    """
    if not 0.0 <= discard_fraction < 1.0:
        raise ConfigError(f"discard_fraction must be in [0, 1), got {discard_fraction}")
    if method not in ("linear", "mle"):
        raise ConfigError(f"TwoNN method must be 'linear' or 'mle', got '{method}'")
    r = knn_distances(x, 2, device=device, block_rows=block_rows)
    mu = r[:, 1] / r[:, 0]
    mu = mu[torch.isfinite(mu)]
    n = mu.numel()
    keep = int(n * (1.0 - discard_fraction))
    if keep < 2:
        raise DataError(f"TwoNN needs at least 2 distinct points after discarding, got {keep}; use more samples")
    log_mu = torch.sort(mu).values[:keep].log()
    if method == "mle":
        return float((keep - 1) / (log_mu.sum() + (n - keep) * log_mu[-1]))
    if keep == n:  # F = 1 at the largest ratio: −log(1−F) = ∞ carries no slope information
        keep = n - 1
        log_mu = log_mu[:keep]
    f = torch.arange(1, keep + 1, dtype=torch.float64, device=log_mu.device) / n
    y = -torch.log1p(-f)
    return float((log_mu * y).sum() / (log_mu * log_mu).sum())


def mle_dimension(x, k1: int = 10, k2: int = 20, device: str = "auto", block_rows: int = 2048) -> float:
    """Levina–Bickel (2004) MLE, MacKay–Ghahramani (2005) averaging: d_k = [mean_x m̂_k(x)⁻¹]⁻¹, averaged over k1..k2.

    m̂_k(x)⁻¹ = (1/(k−1)) Σ_{j<k} log(T_k(x)/T_j(x)) with T_j the distance to the j-th neighbour. Averaging the
    inverses (not the per-point estimates) is MacKay and Ghahramani's correction. Points with T_1 = 0 are dropped.
    """
    if not 2 <= k1 <= k2:
        raise ConfigError(f"MLE needs 2 <= k1 <= k2, got k1={k1}, k2={k2}")
    t = knn_distances(x, k2, device=device, block_rows=block_rows)
    t = t[t[:, 0] > 0]
    if t.shape[0] < 2:
        raise DataError("MLE needs at least 2 points with distinct nearest neighbours; use more samples")
    logt = t.log()
    cums = torch.cumsum(logt, dim=1)  # Σ_{j<=k} log T_j
    dims = []
    for k in range(k1, k2 + 1):
        inv = (logt[:, k - 1] - cums[:, k - 2] / (k - 1))  # (1/(k-1)) Σ_{j<k} log(T_k/T_j)
        dims.append(1.0 / inv.mean())
    return float(torch.stack(dims).mean())


def pca_dimension(x, thresholds: Sequence[float] = (0.9, 0.95, 0.99), device: str = "auto") -> dict[float, int]:
    """PCA dimension: the fewest principal components whose eigenvalues hold ≥ t of the total variance, per t."""
    lam = covariance_eigenvalues(x, device=device)
    total = lam.sum()
    if total <= 0:
        return {float(t): 0 for t in thresholds}
    frac = torch.cumsum(lam, 0) / total
    out = {}
    for t in thresholds:
        if not 0.0 < t <= 1.0:
            raise ConfigError(f"variance threshold must be in (0, 1], got {t}")
        # tolerate rounding in the cumulative sum when t = 1
        out[float(t)] = int(torch.searchsorted(frac, torch.tensor(t - 1e-12, dtype=frac.dtype, device=frac.device))) + 1
        out[float(t)] = min(out[float(t)], lam.numel())
    return out


def participation_ratio(x, device: str = "auto") -> float:
    """Participation ratio (Gao et al. 2017): PR = (Σλᵢ)² / Σλᵢ² over covariance eigenvalues λ."""
    lam = covariance_eigenvalues(x, device=device)
    s2 = (lam * lam).sum()
    return float(lam.sum() ** 2 / s2) if s2 > 0 else 0.0
