"""Input preparation shared by every similarity measure: 2-D float tensors, centring, finite and variance checks."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from repscope.device import as_matrix
from repscope.errors import DataError


def to_matrix(x: Any, device: str | torch.device | None = "auto", dtype: torch.dtype = torch.float64,
              name: str = "X") -> Tensor:
    """(n, d) tensor on `device` with at least 2 rows (see `repscope.device.as_matrix`)."""
    return as_matrix(x, device, dtype, name=name, min_rows=2, purpose="comparing")


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
