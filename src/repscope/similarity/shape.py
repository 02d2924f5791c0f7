"""Shape metrics (Williams et al. 2021): Procrustes distance and the angular metric with partial whitening α."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from repscope.errors import ConfigError, DataError
from repscope.similarity.prep import basis, centre, check_variance, to_matrix


def _reduce(xc: Tensor) -> tuple[Tensor, Tensor]:
    """Isometric (n, r) coordinates U·S of a centred X (r = rank ≤ min(n, d)) and the covariance eigenvalues S²/n.

    When d < n this rotates X onto its covariance eigenvectors (eigh of the d × d covariance, cheaper than an SVD).
    """
    n, d = xc.shape
    if d < n:
        lam, v = torch.linalg.eigh(xc.T @ xc / n)
        if float(lam[-1]) <= 0.0:
            raise DataError("the representation is constant across samples (rank 0); the measure is undefined")
        keep = lam > 1e-10 * lam[-1] * d
        return xc @ v[:, keep], lam[keep]
    u, s, _ = basis(xc)
    return u * s, s * s / n


def prepare_procrustes(x, device="auto") -> Tensor:
    """Centre X, scale it to unit Frobenius norm, and reduce it isometrically to at most n columns."""
    x = to_matrix(x, device)
    xc = centre(x)
    check_variance(xc, x)
    z = xc if xc.shape[1] <= xc.shape[0] else _reduce(xc)[0]  # ‖XᵀY‖_* is unchanged by the isometric reduction
    return z / torch.linalg.vector_norm(z)


def _nuclear(a: Tensor, b: Tensor) -> float:
    if a.shape[0] != b.shape[0]:
        raise DataError(f"X has {a.shape[0]} rows but Y has {b.shape[0]}; compare the same samples")
    return float(torch.linalg.svdvals(a.T @ b).sum())


def compare_procrustes(a: Tensor, b: Tensor) -> float:
    """Procrustes distance of two prepared (unit-norm) representations: √(2 − 2‖AᵀB‖_*)."""
    return math.sqrt(max(0.0, 2.0 - 2.0 * _nuclear(a, b)))


def procrustes_distance(x, y, device="auto") -> float:
    """Orthogonal Procrustes distance (Williams et al. 2021): min_Q ‖X̂ − ŶQ‖_F = √(2 − 2‖X̂ᵀŶ‖_*), X̂ centred, ‖X̂‖_F=1."""
    return compare_procrustes(prepare_procrustes(x, device), prepare_procrustes(y, device))


INTERPOLATIONS = ("covariance", "netrep")
_NETREP_EIG_FLOOR = 1e-7  # netrep's `whiten` floors the eigenvalues of XᶜᵀXᶜ here


def prepare_angular(x, alpha: float = 1.0, device="auto", interpolation: str = "covariance") -> Tensor:
    """Partial whitening φ_α(X), scaled to unit norm, with the interpolation named by `interpolation`:
    "covariance" (default) φ = Xᶜ(α·c̄·I + (1−α)·C)^(−1/2), C = XᶜᵀXᶜ/n, c̄ = tr(C)/d (scale-free);
    "netrep" φ = Xᶜ(α·I + (1−α)·(XᶜᵀXᶜ)^(−1/2)) (netrep's `whiten`, eigenvalues floored at 1e-7)."""
    if not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must lie in [0, 1] (0 = CCA, 1 = Procrustes), got {alpha}")
    if interpolation not in INTERPOLATIONS:
        raise ConfigError(f"unknown shape interpolation '{interpolation}'; use one of {', '.join(INTERPOLATIONS)}")
    x = to_matrix(x, device)
    xc = centre(x)
    check_variance(xc, x)
    z, lam = _reduce(xc)  # z = Xᶜ in C's eigenbasis (kept directions); lam = C's eigenvalues
    if interpolation == "netrep":
        gram = (lam * x.shape[0]).clamp_min(_NETREP_EIG_FLOOR)  # eigenvalues of XᶜᵀXᶜ
        w = z * (alpha + (1.0 - alpha) * gram.rsqrt())
    else:
        cbar = float(lam.sum()) / x.shape[1]
        w = z / torch.sqrt(alpha * cbar + (1.0 - alpha) * lam)
    return w / torch.linalg.vector_norm(w)


def compare_angular(a: Tensor, b: Tensor) -> float:
    """Angular shape distance of two prepared representations: arccos ‖AᵀB‖_*."""
    return math.acos(min(1.0, max(-1.0, _nuclear(a, b))))


def angular_shape_metric(x, y, alpha: float = 1.0, device="auto", *, interpolation: str = "covariance") -> float:
    """Angular shape metric (Williams et al. 2021): arccos(‖φ_α(X)ᵀφ_α(Y)‖_* / (‖φ_α(X)‖‖φ_α(Y)‖)), α∈[0,1].

    α = 0 is the angular CCA distance and α = 1 the angular Procrustes distance under either interpolation. In
    between, `interpolation="covariance"` (default) regularises the covariance, Xᶜ(α·c̄·I + (1−α)·C)^(−1/2) with
    C = XᶜᵀXᶜ/n and c̄ = tr(C)/d, which keeps the metric invariant to isotropic scaling; `"netrep"` interpolates the
    whitening matrix as netrep does, Xᶜ(α·I + (1−α)·(XᶜᵀXᶜ)^(−1/2)), which depends on the scale of X and on n.
    """
    return compare_angular(prepare_angular(x, alpha, device, interpolation),
                           prepare_angular(y, alpha, device, interpolation))
