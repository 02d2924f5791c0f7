"""Coding rate and rate reduction (MCR², Yu et al. 2020), in nats."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from repscope.errors import DataError
from repscope.geometry.spectrum import as_matrix, lapack_single_thread


def _logdet_rate(z: Tensor, n_norm: int, eps: float) -> Tensor:
    n, d = z.shape
    # logdet(I_d + a ZᵀZ) = logdet(I_n + a ZZᵀ) (Sylvester); use the smaller Gram
    gram = z.T @ z if d <= n else z @ z.T
    a = d / (n_norm * eps * eps)
    m = torch.eye(gram.shape[0], dtype=gram.dtype, device=gram.device) + a * gram
    with lapack_single_thread(m):
        chol = torch.linalg.cholesky_ex(m)[0]
    return chol.diagonal().log().sum()  # ½ logdet = Σ log diag(chol)


def _prep(z, normalize: bool, device: str) -> Tensor:
    t = as_matrix(z, device)
    if normalize:
        nrm = torch.linalg.vector_norm(t, dim=1, keepdim=True)
        t = t / torch.where(nrm > 0, nrm, torch.ones_like(nrm))
    return t


def coding_rate(z, eps: float = 0.5, normalize: bool = False, device: str = "auto") -> float:
    """Coding rate (Ma et al. 2007; MCR², Yu et al. 2020): R(Z, ε) = ½ logdet(I + d/(nε²) ZᵀZ), Z of shape (n, d).

    `normalize` first scales each row to unit norm, as MCR² does for its features (R is not scale invariant).
    """
    t = _prep(z, normalize, device)
    return float(_logdet_rate(t, t.shape[0], eps))


def rate_reduction(z, labels, eps: float = 0.5, normalize: bool = False, device: str = "auto") -> dict[str, float]:
    """MCR² rate reduction (Yu et al. 2020): ΔR = R(Z, ε) − Σⱼ (nⱼ/2n) logdet(I + d/(nⱼε²) ZⱼᵀZⱼ).

    Returns `R` (whole set), `Rc` (class-conditional rate) and `delta_R` = R − Rc.
    """
    t = _prep(z, normalize, device)
    y = np.asarray(labels)
    if y.shape[0] != t.shape[0]:
        raise DataError(f"labels have {y.shape[0]} rows but the representation has {t.shape[0]}; align them")
    n = t.shape[0]
    r = _logdet_rate(t, n, eps)
    rc = torch.zeros((), dtype=torch.float64, device=t.device)
    for c in np.unique(y):
        idx = torch.as_tensor(np.flatnonzero(y == c), device=t.device)
        nj = idx.numel()
        rc = rc + (nj / n) * _logdet_rate(t[idx], nj, eps)
    return {"R": float(r), "Rc": float(rc), "delta_R": float(r - rc)}
