"""Anisotropy: expected cosine of random pairs, per-dimension shares (rogue dimensions), after standardization."""

from __future__ import annotations

import torch
from torch import Tensor

from repscope.errors import DataError
from repscope.geometry.spectrum import as_matrix


def _unit_rows(t: Tensor) -> Tensor:
    norms = torch.linalg.vector_norm(t, dim=1, keepdim=True)
    if (norms == 0).any():
        t = t[norms[:, 0] > 0]
        norms = norms[norms[:, 0] > 0]
    if t.shape[0] < 2:
        raise DataError("anisotropy needs at least 2 non-zero rows; use more samples")
    return t / norms


def cosine_contributions(x, device: str = "auto") -> Tensor:
    """Each dimension's term of the expected cosine over distinct pairs: CCₖ = ((Σᵢ ûᵢₖ)² − Σᵢ ûᵢₖ²) / (n(n−1)).

    Timkey & van Schijndel (2021): cos(u, v) = Σₖ ûₖv̂ₖ, so the expected cosine is Σₖ CCₖ. Exact over all n(n−1)
    ordered pairs of distinct rows (û = u/‖u‖), which is the expectation that random-pair sampling estimates.
    """
    u = _unit_rows(as_matrix(x, device))
    n = u.shape[0]
    col = u.sum(0)
    return (col * col - (u * u).sum(0)) / (n * (n - 1))


def mean_cosine(x, n_pairs: int | None = None, seed: int = 0, device: str = "auto") -> float:
    """Anisotropy (Ethayarajh 2019): E[cos(u, v)] over random pairs of distinct rows.

    Exact over all pairs by default ((‖Σᵢûᵢ‖² − n) / (n(n−1))); with `n_pairs`, a Monte-Carlo mean over that many
    uniformly drawn pairs (i ≠ j).
    """
    if n_pairs is None:
        return float(cosine_contributions(x, device).sum())
    u = _unit_rows(as_matrix(x, device))
    n = u.shape[0]
    g = torch.Generator().manual_seed(seed)
    i = torch.randint(0, n, (n_pairs,), generator=g)
    j = (i + torch.randint(1, n, (n_pairs,), generator=g)) % n  # j != i, uniform over the others
    i, j = i.to(u.device), j.to(u.device)
    return float((u[i] * u[j]).sum(1).mean())


def rogue_dimensions(x, top: int = 3, min_cosine: float = 0.01, device: str = "auto") -> dict[str, float]:
    """Rogue dimensions (Timkey & van Schijndel 2021): share CCₖ/ΣCC of the expected cosine held by the top dimensions.

    Returns `top1_share`, `top{top}_share` (largest contributions first) and `top1_index`. Shares are undefined when the
    expected cosine is below `min_cosine` in absolute value (isotropic data); they are then reported as NaN.
    """
    cc = cosine_contributions(x, device)
    total = cc.sum()
    srt, idx = torch.sort(cc, descending=True)
    nan = float("nan")
    ok = abs(float(total)) >= min_cosine
    return {
        "top1_share": float(srt[0] / total) if ok else nan,
        f"top{top}_share": float(srt[:top].sum() / total) if ok else nan,
        "top1_index": float(idx[0]),
    }


def standardize(x, device: str = "auto") -> Tensor:
    """Z-score each dimension: (x − mean) / std; constant dimensions are only centred."""
    t = as_matrix(x, device)
    sd = t.std(0, keepdim=True)
    sd = torch.where(sd > 0, sd, torch.ones_like(sd))
    return (t - t.mean(0, keepdim=True)) / sd


def mean_cosine_standardized(x, device: str = "auto") -> float:
    """Anisotropy after standardization (Timkey & van Schijndel 2021): E[cos] of z-scored representations."""
    return mean_cosine(standardize(x, device), device=device)
