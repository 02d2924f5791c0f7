"""Neuron-level comparison: one-to-one matching by correlation (Li et al. 2016, Convergent Learning) and
one-to-many sparse prediction with the Lasso."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import linear_sum_assignment

from repscope.errors import ConfigError
from repscope.selection import subset_rows
from repscope.similarity.prep import centre, same_rows, to_matrix


def neuron_correlations(x, y, device="auto") -> np.ndarray:
    """Pearson correlation of every neuron of X with every neuron of Y, (d_x, d_y); constant neurons correlate 0."""
    xs, ys = to_matrix(x, device, name="X"), to_matrix(y, device, name="Y")
    same_rows(xs, ys)

    def unit(a: torch.Tensor) -> torch.Tensor:
        ac = centre(a)
        nrm = torch.linalg.vector_norm(ac, dim=0)
        scale = torch.linalg.vector_norm(a, dim=0).clamp_min(1e-300)
        ok = nrm > 1e-12 * scale
        return torch.where(ok, ac / torch.where(ok, nrm, torch.ones_like(nrm)), torch.zeros_like(ac))

    return (unit(xs).T @ unit(ys)).clamp(-1.0, 1.0).cpu().numpy()


@dataclass
class NeuronMatch:
    """One-to-one matching of A's neurons to B's: pairs (a_idx[i] ↔ b_idx[i]) and their correlations.

    `curve` is the matched correlations sorted high → low (the matched-correlation curve); `best` is each A neuron's
    best correlation with any B neuron (semi-matching, many-to-one), sorted high → low.
    """

    a_idx: np.ndarray
    b_idx: np.ndarray
    corr: np.ndarray
    curve: np.ndarray
    best: np.ndarray

    @property
    def mean(self) -> float:
        """Mean matched correlation."""
        return float(self.corr.mean())


def match_neurons(x, y, device="auto") -> NeuronMatch:
    """Hungarian one-to-one matching maximising total correlation (Li et al. 2016, "Convergent Learning")."""
    c = neuron_correlations(x, y, device)
    ia, ib = linear_sum_assignment(-c)
    corr = c[ia, ib]
    return NeuronMatch(a_idx=ia, b_idx=ib, corr=corr, curve=np.sort(corr)[::-1].copy(),
                       best=np.sort(c.max(axis=1))[::-1].copy())


@dataclass
class SparsePrediction:
    """Lasso prediction of each B neuron from all A neurons: held-out R² and the number of non-zero weights."""

    r2: np.ndarray
    nonzero: np.ndarray

    @property
    def mean_r2(self) -> float:
        """Mean held-out R² over B's neurons."""
        return float(self.r2.mean())


def lasso_one_to_many(x, y, alpha: float = 0.01, test_frac: float = 0.25, seed: int = 0,
                      max_neurons: int | None = 256) -> SparsePrediction:
    """One-to-many mapping (Li et al. 2016 §4): Lasso yⱼ ≈ Σᵢ wᵢⱼ xᵢ on standardised neurons, R² on held-out rows."""
    from sklearn.linear_model import Lasso

    if not 0 < test_frac < 1:
        raise ConfigError(f"test_frac must be in (0, 1), got {test_frac}")
    xs = to_matrix(x, "cpu", name="X").numpy()
    ys = to_matrix(y, "cpu", name="Y").numpy()
    same_rows(torch.as_tensor(xs), torch.as_tensor(ys))
    rng = np.random.default_rng(seed)
    if max_neurons is not None and ys.shape[1] > max_neurons:
        ys = ys[:, subset_rows(ys.shape[1], max_neurons, rng)]  # the one subset helper, on columns
    perm = rng.permutation(len(xs))
    n_te = max(1, int(round(test_frac * len(xs))))
    te, tr = perm[:n_te], perm[n_te:]

    def std(a: np.ndarray) -> np.ndarray:
        mu, sd = a[tr].mean(0), a[tr].std(0)
        return (a - mu) / np.where(sd > 0, sd, 1.0)

    xz, yz = std(xs), std(ys)
    model = Lasso(alpha=alpha, max_iter=5000).fit(xz[tr], yz[tr])
    pred = model.predict(xz[te]).reshape(len(te), -1)
    resid = ((yz[te] - pred) ** 2).sum(0)
    tot = ((yz[te] - yz[te].mean(0)) ** 2).sum(0)
    r2 = np.where(tot > 0, 1.0 - resid / np.where(tot > 0, tot, 1.0), 0.0)
    coef = np.atleast_2d(model.coef_)
    return SparsePrediction(r2=r2, nonzero=(np.abs(coef) > 0).sum(1))
