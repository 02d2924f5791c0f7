"""Input checks and coding shared by every disentanglement metric: latents to float64, factors to integer codes,
equal-width latent bins, and seeded train/test splits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.errors import ConfigError, DataError, NonFiniteError


def as_latents(latents: Any, *, name: str = "latents", min_rows: int = 2) -> np.ndarray:
    """(n, d) float64 numpy array from a tensor or array; trailing axes flattened; NaN/Inf and 1-row input refused."""
    if isinstance(latents, torch.Tensor):
        latents = latents.detach().cpu().to(torch.float64).numpy()
    x = np.asarray(latents, dtype=np.float64)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim == 0 or x.shape[0] < min_rows:
        raise DataError(f"{name} has shape {x.shape}; pass an (n_samples, n_latents) array with ≥ {min_rows} rows")
    x = x.reshape(x.shape[0], -1)
    if x.shape[1] == 0:
        raise DataError(f"{name} has no columns; pass an (n_samples, n_latents) array with n_latents ≥ 1")
    bad = ~np.isfinite(x).all(axis=1)
    if bad.any():
        raise NonFiniteError(f"{name} contain NaN or Inf in {int(bad.sum())} of {len(x)} rows; drop those rows or "
                             "re-extract the representations before scoring disentanglement")
    return x


def encode_factors(factors: Any, *, n_rows: int | None = None, factor_bins: int = 20,
                   max_classes: int = 32) -> tuple[np.ndarray, list[str]]:
    """(codes (n, k) int64 in 0..C_j-1, factor names) from a DataFrame, a {name: column} mapping or an (n, k) array.

    A column is discrete when it is non-float, or float with integer values and at most `max_classes` distinct values;
    other (continuous) columns are cut into `factor_bins` equal-width bins. Missing values, a single value, or more
    values than half the rows (an id-like column, e.g. an integer measurement with one value per row) are refused.
    """
    if isinstance(factors, pd.DataFrame):
        cols = {str(c): factors[c].to_numpy() for c in factors.columns}
    elif isinstance(factors, Mapping):
        cols = {str(k): np.asarray(v.cpu() if isinstance(v, torch.Tensor) else v) for k, v in factors.items()}
    else:
        arr = np.asarray(factors.cpu() if isinstance(factors, torch.Tensor) else factors)
        if arr.ndim == 1:
            arr = arr[:, None]
        if arr.ndim != 2:
            raise DataError(f"factors have shape {arr.shape}; pass an (n_samples, n_factors) array or a DataFrame")
        cols = {f"factor{j}": arr[:, j] for j in range(arr.shape[1])}
    if not cols:
        raise DataError("no factors given; name at least one factor column (e.g. --factors topic,sentiment)")
    codes, names = [], []
    for name, col in cols.items():
        col = np.asarray(col).reshape(-1)
        if n_rows is not None and len(col) != n_rows:
            raise DataError(f"factor '{name}' has {len(col)} values for {n_rows} latent rows; lengths must match")
        if pd.isna(col).any():
            raise DataError(f"factor '{name}' has {int(pd.isna(col).sum())} missing values; drop those samples or "
                            "fill the column before scoring disentanglement")
        if col.dtype.kind == "f":
            uniq = np.unique(col)
            if len(uniq) > max_classes or not np.all(uniq == np.round(uniq)):
                c = bin_equal_width(col[:, None].astype(np.float64), factor_bins)[:, 0]
                col = c
        uniq, inv = np.unique(col.astype(str) if col.dtype.kind == "O" else col, return_inverse=True)
        if len(uniq) < 2:
            raise DataError(f"factor '{name}' has a single value ({uniq[0]!r}); drop it from the factors or use "
                            "samples where it varies")
        if 2 * len(uniq) > len(col):  # most values name one row: an id or a raw measurement, not a grouping
            raise DataError(f"factor '{name}' takes {len(uniq)} distinct values in {len(col)} rows (under 2 rows per "
                            "value), so it identifies samples rather than grouping them; give a factor with repeated "
                            "values (store a continuous quantity as float to have it cut into bins)")
        codes.append(inv.reshape(-1).astype(np.int64))
        names.append(name)
    return np.stack(codes, axis=1), names


def bin_equal_width(x: np.ndarray, bins: int) -> np.ndarray:
    """Per-column equal-width bin codes in 0..bins-1, with numpy's histogram edges (disentanglement_lib's
    `np.digitize(x, np.histogram(x, bins)[1][:-1]) - 1`)."""
    if bins < 2:
        raise ConfigError(f"bins must be ≥ 2, got {bins}; use e.g. bins=20 (disentanglement_lib's default)")
    out = np.empty(x.shape, dtype=np.int64)
    for i in range(x.shape[1]):
        edges = np.histogram_bin_edges(x[:, i], bins=bins)
        out[:, i] = np.searchsorted(edges[1:-1], x[:, i], side="right")
    return out


def split_indices(n: int, *, test_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded random (train, test) row indices, each sorted; the test part holds round(n·test_fraction) ≥ 1 rows."""
    if not 0.0 < test_fraction < 1.0:
        raise ConfigError(f"test_fraction must be in (0, 1), got {test_fraction}; use e.g. 1/3")
    n_test = min(max(1, int(round(n * test_fraction))), n - 1)
    perm = np.random.default_rng(seed).permutation(n)
    return np.sort(perm[n_test:]), np.sort(perm[:n_test])


def check_train_codes(codes_train: np.ndarray) -> None:
    """Refuse a training split in which some factor takes a single value (no classifier can be fitted)."""
    for j in range(codes_train.shape[1]):
        if len(np.unique(codes_train[:, j])) < 2:
            raise DataError(f"factor {j} takes a single value in the {len(codes_train)}-row training split; "
                            "use more rows (or a smaller test_fraction)")


def standardize_by_train(x_train: np.ndarray, *others: np.ndarray) -> tuple[np.ndarray, ...]:
    """(x_train, *others) standardised with the train mean/std (constant columns: std 1), for the logistic readouts."""
    mu, sd = x_train.mean(axis=0), x_train.std(axis=0)
    sd[sd == 0] = 1.0
    return tuple((a - mu) / sd for a in (x_train, *others))
