"""Device selection shared by every torch code path."""

from __future__ import annotations

import torch

from repscope.errors import ConfigError


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


def as_tensor(x, device: str | torch.device | None = "auto", dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Convert a numpy array or tensor to a 2-D tensor on `device` with `dtype` (float64 by default)."""
    t = torch.as_tensor(x)
    if t.ndim == 1:
        t = t[:, None]
    return t.to(device=resolve_device(device), dtype=dtype)
