"""Relative representations (Moschella et al. 2023) and the zero-shot stitching score."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin

from repscope.errors import ConfigError, DataError
from repscope.similarity.neighbors import unit_rows
from repscope.similarity.prep import to_matrix


def relative_representation(x, anchors, device="auto") -> torch.Tensor:
    """Moschella et al. 2023: r(x)ⱼ = cos(x, aⱼ) for anchor samples a₁…a_k; (n, k). All-zero rows give cosine 0."""
    xs = to_matrix(x, device, name="X")
    an = to_matrix(anchors, device, name="anchors")
    if xs.shape[1] != an.shape[1]:
        raise DataError(f"X has {xs.shape[1]} features but the anchors have {an.shape[1]}; take anchors from X's space")
    return unit_rows(xs) @ unit_rows(an).T


class RelativeProjector(BaseEstimator, TransformerMixin):
    """sklearn-style transformer: fit stores anchor rows (by index, so both models use the *same* samples)."""

    def __init__(self, anchor_idx=None, device: str = "auto"):
        self.anchor_idx = anchor_idx
        self.device = device

    def fit(self, x, y=None) -> RelativeProjector:
        """Keep the anchor rows of x (all rows when anchor_idx is None)."""
        xs = to_matrix(x, "cpu", name="X")
        idx = np.arange(len(xs)) if self.anchor_idx is None else np.asarray(self.anchor_idx)
        self.anchors_ = xs[idx]
        return self

    def transform(self, x) -> np.ndarray:
        """Cosine of each row of x to each anchor, (n, k)."""
        return relative_representation(x, self.anchors_, self.device).cpu().numpy()


def zero_shot_stitching(xa, xb, labels, n_anchors: int = 64, train_frac: float = 0.7, seed: int = 0,
                        device="auto") -> dict[str, float]:
    """Zero-shot stitching (Moschella et al. 2023): a logistic probe fit on A's relative representation of the train
    rows is applied unchanged to B's relative representation of the test rows (anchors = the same samples in both).

    Returns acc_a_to_a (probe on A, tested on A), acc_a_to_b (zero-shot, tested on B), acc_b_to_b, and, when the
    widths agree, the absolute-space baseline acc_abs_a_to_b (probe on raw A applied to raw B). The probe is the one
    transfer readout, `repscope.kernels.readout.transfer_accuracy` (`LogisticProbe`, C = 1, isotropic scaling fitted on
    the training side and applied unchanged to the other).
    """
    from repscope.kernels.readout import transfer_accuracy

    a = to_matrix(xa, "cpu", name="A").numpy()
    b = to_matrix(xb, "cpu", name="B").numpy()
    y = np.asarray(labels)
    if not (len(a) == len(b) == len(y)):
        raise DataError(f"A, B and labels must describe the same samples (got {len(a)}, {len(b)}, {len(y)} rows)")
    if not 0 < train_frac < 1:
        raise ConfigError(f"train_frac must be in (0, 1), got {train_frac}")
    rng = np.random.default_rng(seed)
    perm = rng.permutation(len(a))
    n_tr = int(train_frac * len(a))
    tr, te = perm[:n_tr], perm[n_tr:]
    if n_anchors > n_tr:
        raise ConfigError(f"n_anchors={n_anchors} exceeds the {n_tr} training rows; use fewer anchors")
    anchors = tr[:n_anchors]
    ra = RelativeProjector(anchors, device).fit(a).transform(a)
    rb = RelativeProjector(anchors, device).fit(b).transform(b)
    yte = y[te]
    out = transfer_accuracy(ra[tr], y[tr], {"acc_a_to_a": (ra[te], yte), "acc_a_to_b": (rb[te], yte)}, device=device)
    out |= transfer_accuracy(rb[tr], y[tr], {"acc_b_to_b": (rb[te], yte)}, device=device)
    if a.shape[1] == b.shape[1]:
        out |= transfer_accuracy(a[tr], y[tr], {"acc_abs_a_to_b": (b[te], yte)}, device=device)
    return out
