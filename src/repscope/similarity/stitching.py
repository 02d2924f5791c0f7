"""Linear stitching: fit an affine or orthogonal map from a layer of A to a layer of B, report R² and the accuracy
of B's probe head on mapped A (Lenc & Vedaldi 2015; Bansal et al. 2021)."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.base import BaseEstimator

from repscope.errors import ConfigError, DataError
from repscope.similarity.prep import centre, to_matrix

KINDS = ("affine", "orthogonal")


class LinearStitch(BaseEstimator):
    """Map A → B. kind='affine': ridge least squares W, b; kind='orthogonal': centred similarity map s·Q (QᵀQ = I,
    Procrustes, Schönemann 1966) plus B's mean. `score` is R² = 1 − ‖B − f(A)‖²/‖B − B̄‖² (variance-weighted)."""

    def __init__(self, kind: str = "affine", ridge: float = 1e-6, device: str = "auto"):
        self.kind = kind
        self.ridge = ridge
        self.device = device

    def fit(self, xa, xb) -> LinearStitch:
        """Fit the map on paired rows of A and B."""
        if self.kind not in KINDS:
            raise ConfigError(f"unknown stitch kind '{self.kind}'; use one of {', '.join(KINDS)}")
        a, b = to_matrix(xa, self.device, name="A"), to_matrix(xb, self.device, name="B")
        if a.shape[0] != b.shape[0]:
            raise DataError(f"A has {a.shape[0]} rows but B has {b.shape[0]}; fit on the same samples")
        self.mean_a_, self.mean_b_ = a.mean(0), b.mean(0)
        ac, bc = centre(a), centre(b)
        if self.kind == "affine":
            g = ac.T @ ac
            lam = self.ridge * (torch.trace(g) / g.shape[0]).clamp_min(1e-300)
            eye = torch.eye(g.shape[0], dtype=g.dtype, device=g.device)
            self.weight_ = torch.linalg.solve(g + lam * eye, ac.T @ bc)
        else:
            u, s, vh = torch.linalg.svd(ac.T @ bc, full_matrices=False)
            nrm = float((ac * ac).sum())
            if nrm == 0:
                raise DataError("A is constant across samples; an orthogonal map is undefined")
            self.weight_ = (float(s.sum()) / nrm) * (u @ vh)
        return self

    def transform(self, xa) -> torch.Tensor:
        """Map A's rows into B's space."""
        a = to_matrix(xa, self.device, name="A")
        return (a - self.mean_a_) @ self.weight_ + self.mean_b_

    def score(self, xa, xb) -> float:
        """R² of the mapped A against B (variance-weighted over B's features)."""
        b = to_matrix(xb, self.device, name="B")
        pred = self.transform(xa)
        tot = float(((b - b.mean(0)) ** 2).sum())
        if tot == 0:
            raise DataError("B is constant across samples; R² is undefined")
        return 1.0 - float(((b - pred) ** 2).sum()) / tot


def stitching_score(xa, xb, labels, kind: str = "affine", train_frac: float = 0.7, seed: int = 0,
                    device="auto") -> dict[str, float]:
    """Fit A→B on train rows; on test rows report R², B's logistic head on B (acc_b) and on mapped A (acc_stitched).

    The head is the one transfer readout, `repscope.kernels.readout.transfer_accuracy` (`LogisticProbe`, C = 1,
    isotropic scaling fitted on B's train rows), so mapped-A errors in B's near-constant directions are not inflated.
    """
    from repscope.kernels.readout import transfer_accuracy

    a = to_matrix(xa, "cpu", name="A").numpy()
    b = to_matrix(xb, "cpu", name="B").numpy()
    y = np.asarray(labels)
    if not (len(a) == len(b) == len(y)):
        raise DataError(f"A, B and labels must describe the same samples (got {len(a)}, {len(b)}, {len(y)} rows)")
    perm = np.random.default_rng(seed).permutation(len(a))
    n_tr = int(train_frac * len(a))
    tr, te = perm[:n_tr], perm[n_tr:]
    st = LinearStitch(kind, device=device).fit(a[tr], b[tr])
    mapped = st.transform(a[te]).cpu().numpy()
    accs = transfer_accuracy(b[tr], y[tr], {"acc_b": (b[te], y[te]), "acc_stitched": (mapped, y[te])}, device=device)
    return {"r2": st.score(a[te], b[te]), **accs}
