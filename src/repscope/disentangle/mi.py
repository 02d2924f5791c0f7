"""Discrete mutual information between binned latents and factors, and MIG (Chen et al. 2018).

The whole (d, k) matrix comes from k joint histograms (one `np.bincount` per factor over every latent at once),
not d·k separate contingency tables; values are in nats and equal scikit-learn's `mutual_info_score` per pair.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from repscope.disentangle.inputs import as_latents, bin_equal_width, encode_factors


def entropy_codes(codes: np.ndarray) -> np.ndarray:
    """Plug-in entropy H(c) = −Σ p log p (nats) of each column of an (n, k) integer code array."""
    out = np.empty(codes.shape[1])
    for j in range(codes.shape[1]):
        p = np.bincount(codes[:, j]) / codes.shape[0]
        p = p[p > 0]
        out[j] = -(p * np.log(p)).sum()
    return out


def mutual_info_codes(latent_codes: np.ndarray, factor_codes: np.ndarray) -> np.ndarray:
    """Plug-in I(z_i; v_j) = Σ p(z,v) log p(z,v)/(p(z)p(v)) in nats for integer codes, as a (d, k) matrix."""
    n, d = latent_codes.shape
    nb = int(latent_codes.max()) + 1
    offs = (np.arange(d, dtype=np.int64) * nb)[None, :] + latent_codes  # (n, d): one bin range per latent
    pz = np.bincount(offs.ravel(), minlength=d * nb).reshape(d, nb) / n
    out = np.empty((d, factor_codes.shape[1]))
    for j in range(factor_codes.shape[1]):
        v = factor_codes[:, j]
        nc = int(v.max()) + 1
        joint = np.bincount((offs * nc + v[:, None]).ravel(), minlength=d * nb * nc).reshape(d, nb, nc) / n
        pv = np.bincount(v, minlength=nc) / n
        denom = pz[:, :, None] * pv[None, None, :]
        nz = joint > 0
        terms = np.zeros_like(joint)
        terms[nz] = joint[nz] * (np.log(joint[nz]) - np.log(denom[nz]))
        out[:, j] = terms.reshape(d, -1).sum(axis=1)
    return np.maximum(out, 0.0)


def mutual_info_matrix(latents: Any, factors: Any, *, bins: int = 20) -> np.ndarray:
    """(d, k) I(z_i; v_j) in nats, latents cut into `bins` equal-width bins (disentanglement_lib's discretiser)."""
    x = as_latents(latents)
    v, _ = encode_factors(factors, n_rows=len(x))
    return mutual_info_codes(bin_equal_width(x, bins), v)


def mig_from_mi(mi: np.ndarray, factor_entropy: np.ndarray) -> tuple[float, np.ndarray]:
    """MIG (Chen et al. 2018): mean over factors of (I₍₁₎ − I₍₂₎)/H(v_j), the gap between the two most informative
    latents; with one latent the second term is 0. Returns (score, per-factor gaps)."""
    s = np.sort(mi, axis=0)[::-1]
    second = s[1] if s.shape[0] > 1 else np.zeros(s.shape[1])
    gaps = (s[0] - second) / factor_entropy
    return float(gaps.mean()), gaps


def mig(latents: Any, factors: Any, *, bins: int = 20) -> float:
    """MIG (Chen et al. 2018): (1/k) Σ_j (I(z_(1); v_j) − I(z_(2); v_j)) / H(v_j) over `bins` equal-width bins."""
    x = as_latents(latents)
    v, _ = encode_factors(factors, n_rows=len(x))
    return mig_from_mi(mutual_info_codes(bin_equal_width(x, bins), v), entropy_codes(v))[0]
