"""Input preparation shared by every similarity measure: 2-D float tensors, centring, finite and variance checks."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from repscope.device import resolve_device
from repscope.errors import DataError, NonFiniteError


def to_matrix(x: Any, device: str | torch.device | None = "auto", dtype: torch.dtype = torch.float64,
              name: str = "X") -> Tensor:
    """Turn a numpy array or tensor into an (n, d) tensor on `device`; extra axes are flattened, NaN/Inf refused."""
    t = torch.as_tensor(x)
    if t.ndim == 0:
        raise DataError(f"{name} is a scalar; pass an (n_samples, n_features) array")
    if t.ndim == 1:
        t = t[:, None]
    t = t.reshape(t.shape[0], -1).to(device=resolve_device(device), dtype=dtype)
    if t.shape[0] < 2:
        raise DataError(f"{name} has {t.shape[0]} rows; similarity needs at least 2 samples")
    if t.shape[1] == 0:
        raise DataError(f"{name} has no features; pass an (n_samples, n_features) array with n_features ≥ 1")
    if not bool(torch.isfinite(t).all()):
        raise NonFiniteError(f"{name} contains NaN or Inf; clean the activations (or re-extract) before comparing")
    return t


def same_rows(x: Tensor, y: Tensor) -> None:
    """Both representations must describe the same samples, row for row."""
    if x.shape[0] != y.shape[0]:
        raise DataError(f"X has {x.shape[0]} rows but Y has {y.shape[0]}; compare representations of the same samples")


def centre(x: Tensor) -> Tensor:
    """Subtract the column means (computed in the tensor's dtype)."""
    return x - x.mean(dim=0, keepdim=True)


def check_variance(xc: Tensor, x: Tensor | None = None, what: str = "representation") -> None:
    """Raise a clear DataError when a centred representation is (numerically) constant."""
    num = float(torch.linalg.vector_norm(xc))
    ref = float(torch.linalg.vector_norm(x)) if x is not None else num
    if num == 0.0 or num <= 1e-12 * ref:
        raise DataError(f"the {what} is constant across samples (zero variance); the measure is undefined — "
                        "drop this layer or use samples that vary")


def basis(xc: Tensor, rel_tol: float = 1e-10) -> tuple[Tensor, Tensor, Tensor]:
    """Thin SVD of a centred matrix with numerically-zero directions dropped: (U_r, S_r, V_r)."""
    u, s, vh = torch.linalg.svd(xc, full_matrices=False)
    if s.numel() == 0 or float(s[0]) == 0.0:
        raise DataError("the representation is constant across samples (rank 0); the measure is undefined — "
                        "drop this layer or use samples that vary")
    keep = s > rel_tol * s[0] * max(xc.shape)
    return u[:, keep], s[keep], vh[keep].T
