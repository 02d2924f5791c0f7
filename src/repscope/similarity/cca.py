"""CCA family: mean CCA, SVCCA (Raghu et al. 2017) and PWCCA (Morcos et al. 2018), from orthonormal bases."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from repscope.errors import ConfigError, DataError
from repscope.similarity.prep import basis, centre, check_variance, to_matrix


@dataclass
class CCAStats:
    """Orthonormal basis q (n, r) of a centred representation's column space; xc kept for PWCCA's weights."""

    q: Tensor
    xc: Tensor | None = None


def prepare_cca(x, device="auto", keep_data: bool = False) -> CCAStats:
    """Centre X and take an orthonormal basis of its column space (rank-deficient directions dropped)."""
    x = to_matrix(x, device)
    xc = centre(x)
    check_variance(xc, x)
    u, _, _ = basis(xc)
    return CCAStats(q=u, xc=xc if keep_data else None)


def prepare_svcca(x, device="auto", keep: float = 0.99) -> CCAStats:
    """SVCCA step 1: keep the top singular directions explaining `keep` of the variance (basis of U_k S_k is U_k)."""
    if not 0 < keep <= 1:
        raise ConfigError(f"SVCCA keep fraction must be in (0, 1], got {keep}")
    x = to_matrix(x, device)
    xc = centre(x)
    check_variance(xc, x)
    u, s, _ = basis(xc)
    var = s * s
    frac = torch.cumsum(var, 0) / var.sum()
    k = int(torch.searchsorted(frac, torch.tensor(keep - 1e-12, dtype=frac.dtype, device=frac.device))) + 1
    return CCAStats(q=u[:, : min(k, u.shape[1])])


def canonical_correlations(a: CCAStats, b: CCAStats) -> Tensor:
    """Canonical correlations ρ₁ ≥ … ≥ ρ_min(rank) = singular values of Q_xᵀQ_y (clipped to [0, 1])."""
    if a.q.shape[0] != b.q.shape[0]:
        raise DataError(f"X has {a.q.shape[0]} rows but Y has {b.q.shape[0]}; compare the same samples")
    return torch.linalg.svdvals(a.q.T @ b.q).clamp(0.0, 1.0)


def compare_mean_cca(a: CCAStats, b: CCAStats) -> float:
    """Mean canonical correlation of two prepared bases."""
    return float(canonical_correlations(a, b).mean())


def compare_pwcca(a: CCAStats, b: CCAStats) -> float:
    """PWCCA from prepared bases; a must carry its centred data (prepare_cca(keep_data=True))."""
    if a.xc is None:
        raise ConfigError("PWCCA needs X's data; prepare it with prepare_cca(x, keep_data=True)")
    if a.q.shape[0] != b.q.shape[0]:
        raise DataError(f"X has {a.q.shape[0]} rows but Y has {b.q.shape[0]}; compare the same samples")
    u, rho, _ = torch.linalg.svd(a.q.T @ b.q, full_matrices=False)
    k = rho.shape[0]
    h = a.q @ u[:, :k]  # X's canonical variates, unit norm
    alpha = (h.T @ a.xc).abs().sum(1)
    return float((alpha * rho.clamp(0.0, 1.0)).sum() / alpha.sum())


def mean_cca(x, y, device="auto") -> float:
    """Mean CCA (Yanai's R²-free form): (1/k) Σᵢ ρᵢ, ρ the canonical correlations of centred X, Y (k = min rank)."""
    return compare_mean_cca(prepare_cca(x, device), prepare_cca(y, device))


def svcca(x, y, keep: float = 0.99, device="auto") -> float:
    """SVCCA (Raghu et al. 2017): mean CCA after keeping the top SVD directions with `keep` (99%) of the variance."""
    return compare_mean_cca(prepare_svcca(x, device, keep), prepare_svcca(y, device, keep))


def pwcca(x, y, device="auto") -> float:
    """PWCCA (Morcos et al. 2018): Σᵢ αᵢρᵢ / Σᵢ αᵢ, αᵢ = Σⱼ |⟨hᵢ, xⱼ⟩| (hᵢ X's canonical variates, xⱼ X's neurons)."""
    return compare_pwcca(prepare_cca(x, device, keep_data=True), prepare_cca(y, device))
