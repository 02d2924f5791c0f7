"""Metrics for dictionaries and codes: reconstruction, sparsity, codebook usage, probe-after-reconstruction, MMCS."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repscope.errors import DataError


def _t(x: Any) -> Tensor:
    t = x if isinstance(x, Tensor) else torch.as_tensor(np.asarray(x))
    return t.detach().to("cpu", torch.float64)


def mse(x: Any, x_hat: Any) -> float:
    """Mean squared error per sample: (1/n) Σ_i ‖x_i − x̂_i‖² (summed over dimensions)."""
    x, x_hat = _t(x), _t(x_hat)
    return float((x - x_hat).pow(2).sum(-1).mean())


def fvu(x: Any, x_hat: Any) -> float:
    """Fraction of variance unexplained: Σ‖x_i − x̂_i‖² / Σ‖x_i − x̄‖² (0 is perfect, 1 is the mean)."""
    x, x_hat = _t(x), _t(x_hat)
    den = float((x - x.mean(0)).pow(2).sum())
    if den == 0:
        raise DataError("the data has zero variance, so FVU is undefined; use mse instead")
    return float((x - x_hat).pow(2).sum()) / den


def mean_l0(z: Any) -> float:
    """Mean number of non-zero latents per sample, E‖z‖₀."""
    return float((_t(z) != 0).sum(-1).double().mean())


def fire_frequency(z: Any) -> np.ndarray:
    """Per-latent activation frequency: fraction of samples where z_j ≠ 0."""
    return (_t(z) != 0).double().mean(0).numpy()


def dead_fraction(z: Any) -> float:
    """Fraction of latents that never fire on the given samples."""
    return float((fire_frequency(z) == 0).mean())


def dense_fraction(z: Any, threshold: float = 0.1) -> float:
    """Fraction of latents firing on more than `threshold` of samples (dense latents, cf. SAEBench)."""
    return float((fire_frequency(z) > threshold).mean())


def codebook_usage(codes: Any, n_codes: int) -> float:
    """Fraction of the n_codes codebook entries used at least once (codes: integer array, any shape)."""
    c = np.asarray(codes.cpu() if isinstance(codes, Tensor) else codes).ravel()
    return float(len(np.unique(c)) / n_codes)


def perplexity(codes: Any, n_codes: int) -> float:
    """Codebook perplexity exp(H(p)), p the empirical code distribution (van den Oord et al. 2017); max n_codes."""
    c = np.asarray(codes.cpu() if isinstance(codes, Tensor) else codes).ravel().astype(np.int64)
    p = np.bincount(c, minlength=n_codes) / max(len(c), 1)
    p = p[p > 0]
    return float(math.exp(-(p * np.log(p)).sum()))


def mmcs(learned: Any, true: Any) -> np.ndarray:
    """Max cosine similarity of each true feature (rows of `true`) to its closest learned atom (rows of `learned`).

    Mean of this vector is the MMCS of Sharkey et al. 2022; the fraction above 0.9 is the recovery rate."""
    a, b = _t(learned), _t(true)
    a = a / a.norm(dim=1, keepdim=True).clamp_min(1e-12)
    b = b / b.norm(dim=1, keepdim=True).clamp_min(1e-12)
    return (b @ a.T).max(dim=1).values.numpy()


def probe_after_reconstruction(x_train: Any, y_train: Any, x_test: Any, y_test: Any, x_test_hat: Any,
                               max_iter: int = 500, C: float = 1.0, device: str = "auto") -> dict[str, float]:
    """Accuracy drop of a linear probe trained on originals and tested on reconstructions:
    acc(probe, X_test) − acc(probe, X̂_test). The probe is the one transfer readout,
    `repscope.kernels.readout.transfer_accuracy` (`LogisticProbe`; inputs centred and divided by one global scale fit
    on the training originals: isotropic, so a per-feature standardiser cannot blow up errors in near-constant
    directions)."""
    from repscope.kernels.readout import transfer_accuracy

    ytr = np.asarray(y_train)
    if len(np.unique(ytr)) < 2:
        raise DataError("the probe needs at least two label classes in the training rows")
    yte = np.asarray(y_test)
    accs = transfer_accuracy(_t(x_train), ytr, {"orig": (_t(x_test), yte), "recon": (_t(x_test_hat), yte)}, C=C,
                             max_iter=max_iter, device=device)
    acc, acc_hat = accs["orig"], accs["recon"]
    return {"probe_acc": acc, "probe_acc_recon": acc_hat, "probe_acc_drop": acc - acc_hat}


def auroc_matrix(z: Any, labels: Any) -> tuple[np.ndarray, np.ndarray]:
    """One-vs-rest AUROC of every latent (columns of z) for every label value, via Mann–Whitney ranks with ties.

    Returns (auroc (n_classes, m), classes)."""
    from scipy.stats import rankdata

    zz = _t(z).numpy()
    lab = np.asarray(labels)
    classes = np.unique(lab)
    ranks = rankdata(zz, axis=0)
    out = np.full((len(classes), zz.shape[1]), np.nan)
    n = len(lab)
    for i, c in enumerate(classes):
        pos = lab == c
        n_pos = int(pos.sum())
        n_neg = n - n_pos
        if n_pos == 0 or n_neg == 0:
            continue
        out[i] = (ranks[pos].sum(0) - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg)
    return out, classes
