"""Device selection shared by every torch code path."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from repscope.errors import ConfigError, DataError, NonFiniteError


def resolve_device(device: str | torch.device | None = "auto") -> torch.device:
    """Return a torch.device for 'auto' (CUDA when available, else CPU), 'cpu', 'cuda' or 'cuda:N'."""
    if isinstance(device, torch.device):
        return device
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device '{device}' requested but CUDA is not available; use --device cpu or auto")
    try:
        return torch.device(device)
    except RuntimeError as err:
        raise ConfigError(f"unknown device '{device}'; use auto, cpu or cuda") from err


def as_matrix(x: Any, device: str | torch.device | None = "auto", dtype: torch.dtype = torch.float64, *,
              name: str = "features", min_rows: int = 1, allow_1d: bool = True,
              purpose: str = "analysing") -> torch.Tensor:
    """An (n, d) tensor on `device` for every analysis: trailing axes flattened, a 1-D input taken as one column
    (or refused when `allow_1d` is False), fewer than `min_rows` rows, no columns or NaN/Inf refused in one line."""
    t = x if isinstance(x, torch.Tensor) else torch.as_tensor(np.asarray(x))
    if t.ndim == 0:
        raise DataError(f"{name} is a scalar; pass an (n_samples, n_features) array")
    if t.ndim == 1:
        if not allow_1d:
            raise DataError(f"{name} must be 2-D (n_samples, n_features); reshape a single feature with x[:, None]")
        t = t[:, None]
    t = t.reshape(t.shape[0], math.prod(t.shape[1:])).to(device=resolve_device(device), dtype=dtype)
    if t.shape[0] < min_rows:
        raise DataError(f"{name} has {t.shape[0]} rows; {purpose} needs at least {min_rows}")
    if t.shape[1] == 0:
        raise DataError(f"{name} has no features; pass an (n_samples, n_features) array with n_features ≥ 1")
    # a float64 sum is finite iff every entry is (barring float64 overflow, which the exact check then settles);
    # it reads the data once without allocating a boolean mask
    if not torch.isfinite(t.sum(dtype=torch.float64)) and not torch.isfinite(t).all():
        raise NonFiniteError(f"{name} contains NaN or Inf; clean the representations (or re-extract) before {purpose}")
    return t
