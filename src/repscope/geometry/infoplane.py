"""Information plane (Shwartz-Ziv & Tishby 2017): binned estimates of I(X;T) and I(T;Y), in bits."""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from repscope.errors import ConfigError, DataError
from repscope.geometry.spectrum import as_matrix


def _entropy_bits(ids: Tensor) -> float:
    counts = torch.bincount(ids).to(torch.float64)
    p = counts[counts > 0] / ids.numel()
    return float(-(p * p.log2()).sum())


def bin_codes(t, n_bins: int = 30, device: str = "auto") -> Tensor:
    """Equal-width binning of every unit over the layer's [min, max] range into `n_bins` bins; returns int codes."""
    if n_bins < 2:
        raise ConfigError(f"n_bins must be at least 2, got {n_bins}")
    z = as_matrix(t, device)
    lo, hi = z.min(), z.max()
    width = (hi - lo) / n_bins if hi > lo else torch.ones((), dtype=z.dtype, device=z.device)
    return ((z - lo) / width).floor().clamp_(0, n_bins - 1).to(torch.int32)


def information_plane(t, labels, n_bins: int = 30, device: str = "auto") -> dict[str, float]:
    """Binned I(X;T) = H(T) and I(T;Y) = H(T) − H(T|Y), with T the per-sample pattern of binned units.

    Each row is treated as a distinct input X, uniform over the n rows, and T as the deterministic binned pattern of
    the layer's activations (Shwartz-Ziv & Tishby 2017).

    Caveats (Saxe et al. 2018; Goldfeld et al. 2019): for a deterministic network the true I(X;T) is infinite
    (continuous T) or constant, so these numbers measure the binning, not the network; they depend strongly on
    `n_bins` and on the activation range (saturating tanh vs ReLU differ); with many units almost every pattern is
    unique, so I(X;T) saturates at log₂ n and I(T;Y) at H(Y); the plug-in entropy is biased downward for small n.
    Use them to compare layers under one fixed binning and sample size, not as absolute information.
    """
    codes = bin_codes(t, n_bins, device)
    y = np.asarray(labels)
    if y.shape[0] != codes.shape[0]:
        raise DataError(f"labels have {y.shape[0]} rows but the layer has {codes.shape[0]}; align them")
    _, t_ids = torch.unique(codes, dim=0, return_inverse=True)
    _, y_codes = np.unique(y, return_inverse=True)
    y_ids = torch.as_tensor(y_codes.reshape(-1), device=t_ids.device, dtype=torch.long)
    h_t = _entropy_bits(t_ids)
    h_y = _entropy_bits(y_ids)
    joint = t_ids * (int(y_ids.max()) + 1) + y_ids
    _, j_ids = torch.unique(joint, return_inverse=True)
    h_ty = _entropy_bits(j_ids)
    return {"I_XT": h_t, "I_TY": h_t + h_y - h_ty, "H_Y": h_y, "n_patterns": float(int(t_ids.max()) + 1)}
