"""CCA family: mean CCA, SVCCA (Raghu et al. 2017) and PWCCA (Morcos et al. 2018), from orthonormal bases."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from repscope.errors import ConfigError, DataError
from repscope.similarity.prep import basis, centre, check_variance, to_matrix

PWCCA_VARIANTS = ("morcos", "svcca_code")


@dataclass
class CCAStats:
    """Orthonormal basis q (n, r) of a centred representation's column space; for PWCCA's weights also the centred
    data xc, its singular values s and the PWCCA variant."""

    q: Tensor
    xc: Tensor | None = None
    s: Tensor | None = None
    variant: str = "morcos"


def prepare_cca(x, device="auto", keep_data: bool = False, variant: str = "morcos") -> CCAStats:
    """Centre X and take an orthonormal basis of its column space (rank-deficient directions dropped)."""
    if variant not in PWCCA_VARIANTS:
        raise ConfigError(f"unknown PWCCA variant '{variant}'; use one of {', '.join(PWCCA_VARIANTS)}")
    x = to_matrix(x, device)
    xc = centre(x)
    check_variance(xc, x)
    u, s, _ = basis(xc)
    if not keep_data:
        return CCAStats(q=u, variant=variant)
    return CCAStats(q=u, xc=xc, s=s, variant=variant)


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
    """PWCCA from prepared bases; a must carry its centred data (prepare_cca(keep_data=True)); a's variant is used."""
    if a.xc is None:
        raise ConfigError("PWCCA needs X's data; prepare it with prepare_cca(x, keep_data=True)")
    if a.q.shape[0] != b.q.shape[0]:
        raise DataError(f"X has {a.q.shape[0]} rows but Y has {b.q.shape[0]}; compare the same samples")
    u, rho, _ = torch.linalg.svd(a.q.T @ b.q, full_matrices=False)
    k = rho.shape[0]
    rho = rho.clamp(0.0, 1.0)
    if a.variant == "svcca_code":
        # google/svcca's compute_pwcca: directions Xᶜ·Σxx^(-½)·U without the Σxx^(-½), i.e. Q·S·u in the basis
        # (Xᶜ = Q S Vᵀ), orthonormalised by QR (Gram–Schmidt in order), weighted by |⟨pᵢ, xⱼ⟩| over X's neurons
        p, _ = torch.linalg.qr((a.q * a.s) @ u[:, :k])
        alpha = (p.T @ a.xc).abs().sum(1)
    else:
        h = a.q @ u[:, :k]  # X's canonical variates, unit norm
        alpha = (h.T @ a.xc).abs().sum(1)
    return float((alpha * rho).sum() / alpha.sum())


def mean_cca(x, y, device="auto") -> float:
    """Mean CCA (Yanai's R²-free form): (1/k) Σᵢ ρᵢ, ρ the canonical correlations of centred X, Y (k = min rank)."""
    return compare_mean_cca(prepare_cca(x, device), prepare_cca(y, device))


def svcca(x, y, keep: float = 0.99, device="auto") -> float:
    """SVCCA (Raghu et al. 2017): mean CCA after keeping the top SVD directions with `keep` (99%) of the variance."""
    return compare_mean_cca(prepare_svcca(x, device, keep), prepare_svcca(y, device, keep))


def pwcca(x, y, device="auto", *, variant: str = "morcos") -> float:
    """PWCCA (Morcos et al. 2018): Σᵢ αᵢρᵢ / Σᵢ αᵢ, αᵢ = Σⱼ |⟨hᵢ, xⱼ⟩| (hᵢ X's canonical variates, xⱼ X's neurons).

    `variant="morcos"` (default): the paper's formula, hᵢ = Xᶜ Σxx^(−½) uᵢ normalised, xⱼ the centred neurons.
    `variant="svcca_code"`: google/svcca's `compute_pwcca`, which omits Σxx^(−½): directions Xᶜuᵢ (uᵢ the left
    singular vectors of Σxx^(−½)ΣxyΣyy^(−½)) orthonormalised by QR in order; the two differ by up to a few %. That
    code also adds neuron i's mean to direction i and weights by uncentred neurons, which makes its value depend on
    the sign LAPACK gives each singular vector; here X is centred first (the code's value on centred activations),
    so the measure stays translation invariant. The first min(rank X, rank Y) directions are used.
    """
    return compare_pwcca(prepare_cca(x, device, keep_data=True, variant=variant), prepare_cca(y, device))
