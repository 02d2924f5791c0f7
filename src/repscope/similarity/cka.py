"""Centered kernel alignment: linear (feature or Gram form), RBF, and debiased (unbiased HSIC).

Each measure is split into `prepare_*` (per-representation statistics, computed once per layer) and `compare_*`
(a pair of statistics → one number), so layer × layer matrices never recompute a layer's Gram or covariance.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from repscope.errors import DataError
from repscope.similarity.prep import centre, check_variance, same_rows, to_matrix


@dataclass
class LinearStats:
    """Statistics of one representation for linear and debiased CKA.

    xc: centred data (n, d) in the compute dtype; gram: xc xcᵀ when d ≥ n (Gram form), else None (feature form);
    r: squared row norms of xc (= diag K, float64); u: K̃1 (float64); s: 1ᵀK̃1; self_cka: ‖xcᵀxc‖_F;
    self_hsic: unbiased HSIC(X, X) (n > 3 only).
    """

    xc: Tensor
    gram: Tensor | None
    r: Tensor
    u: Tensor
    s: float
    self_cka: float
    self_hsic: float | None

    @property
    def n(self) -> int:
        """Number of samples."""
        return int(self.xc.shape[0])


def _cross_sq(a: LinearStats, b: LinearStats) -> float:
    """‖XcᵀYc‖²_F = ⟨Kc, Lc⟩_F, by the cheaper of the feature and Gram forms."""
    if a.gram is not None and b.gram is not None:
        return float((a.gram * b.gram).sum(dtype=torch.float64))
    cross = a.xc.T @ b.xc
    return float(torch.linalg.vector_norm(cross.double()) ** 2)


def _unbiased_hsic(trace_kl: float, a: LinearStats, b: LinearStats) -> float:
    """Unbiased HSIC (Song et al. 2012) from tr(KL) and the per-representation sums, with K̃ = K − diag(K)."""
    n = a.n
    t = trace_kl - float(a.r @ b.r)
    c = float(a.u @ b.u)
    return (t + a.s * b.s / ((n - 1) * (n - 2)) - 2.0 * c / (n - 2)) / (n * (n - 3))


def prepare_linear(x, device="auto", dtype: torch.dtype = torch.float64, gram: bool | None = None) -> LinearStats:
    """Centre X once and precompute its CKA self-terms; Gram form when d ≥ n (or when `gram` forces it)."""
    xt = to_matrix(x, device, dtype)
    xc = xt - xt.mean(0, keepdim=True, dtype=torch.float64).to(dtype)  # mean accumulated in float64
    check_variance(xc, xt)
    del xt
    n, d = xc.shape
    use_gram = (d >= n) if gram is None else gram
    k = xc @ xc.T if use_gram else None
    r = (xc * xc).sum(1, dtype=torch.float64)
    colsum = xc.sum(0, dtype=torch.float64)
    u = (xc @ colsum.to(dtype)).to(torch.float64) - r
    s_tot = float(colsum @ colsum) - float(r.sum())
    st = LinearStats(xc=xc, gram=k, r=r, u=u, s=s_tot, self_cka=0.0, self_hsic=None)
    sq = _cross_sq(st, st)
    st.self_cka = sq ** 0.5
    if n > 3:
        st.self_hsic = _unbiased_hsic(sq, st, st)
    return st


def compare_linear(a: LinearStats, b: LinearStats) -> float:
    """Linear CKA from two prepared statistics."""
    if a.n != b.n:
        raise DataError(f"X has {a.n} rows but Y has {b.n}; compare representations of the same samples")
    return _cross_sq(a, b) / (a.self_cka * b.self_cka)


def compare_debiased(a: LinearStats, b: LinearStats) -> float:
    """Debiased CKA from two prepared statistics."""
    if a.n != b.n:
        raise DataError(f"X has {a.n} rows but Y has {b.n}; compare representations of the same samples")
    if a.self_hsic is None or b.self_hsic is None:
        raise DataError(f"debiased CKA needs more than 3 samples, got {a.n}; use more samples or linear CKA")
    if a.self_hsic <= 0 or b.self_hsic <= 0:
        raise DataError("unbiased HSIC(X, X) is not positive (too few samples or a near-constant layer); "
                        "use more samples or biased linear CKA")
    return _unbiased_hsic(_cross_sq(a, b), a, b) / (a.self_hsic * b.self_hsic) ** 0.5


def linear_cka(x, y, device="auto") -> float:
    """Linear CKA (Kornblith 2019): ‖YᶜᵀXᶜ‖²_F / (‖XᶜᵀXᶜ‖_F ‖YᶜᵀYᶜ‖_F) on centred X, Y (Gram form if d ≥ n)."""
    return compare_linear(prepare_linear(x, device), prepare_linear(y, device))


def debiased_cka(x, y, device="auto") -> float:
    """Debiased CKA (Kornblith 2019 §D; Song et al. 2012): HSIC₁(K,L)/√(HSIC₁(K,K) HSIC₁(L,L)), unbiased HSIC.

    HSIC₁ = [tr(K̃L̃) + 1ᵀK̃1·1ᵀL̃1/((n−1)(n−2)) − 2/(n−2)·1ᵀK̃L̃1] / (n(n−3)), K̃ = XXᵀ with zero diagonal;
    evaluated in feature form (O(n d²)) without forming K when d < n.
    """
    return compare_debiased(prepare_linear(x, device), prepare_linear(y, device))


# ---- RBF ---------------------------------------------------------------------------------------------------------
@dataclass
class KernelStats:
    """Centred kernel matrix HKH (n, n) and its Frobenius norm."""

    kc: Tensor
    norm: float
    sigma: float


def rbf_gram(x: Tensor, sigma_mult: float = 1.0) -> tuple[Tensor, float]:
    """RBF Gram exp(−‖xᵢ−xⱼ‖²/(2σ²)) with σ = sigma_mult × (lower) median of the off-diagonal pairwise distances."""
    xc = centre(x)
    r = (xc * xc).sum(1)
    d2 = (r[:, None] + r[None, :] - 2.0 * (xc @ xc.T)).clamp_min_(0.0)
    d2.fill_diagonal_(0.0)
    n = x.shape[0]
    iu = torch.triu_indices(n, n, offset=1, device=x.device)
    med = float(torch.median(d2[iu[0], iu[1]]))
    if med <= 0.0:
        raise DataError("median pairwise distance is 0 (constant or mostly duplicated samples); RBF CKA is undefined — "
                        "use linear CKA or distinct samples")
    sigma = sigma_mult * med ** 0.5
    return torch.exp(-d2 / (2.0 * sigma * sigma)), sigma


def centre_gram(k: Tensor) -> Tensor:
    """HKH with H = I − 11ᵀ/n."""
    return k - k.mean(0, keepdim=True) - k.mean(1, keepdim=True) + k.mean()


def prepare_rbf(x, device="auto", sigma_mult: float = 1.0) -> KernelStats:
    """Centred RBF Gram of one representation (bandwidth from its own median distance)."""
    if sigma_mult <= 0:
        raise DataError(f"sigma_mult must be positive, got {sigma_mult}")
    x = to_matrix(x, device)
    check_variance(centre(x), x)
    k, sigma = rbf_gram(x, sigma_mult)
    kc = centre_gram(k)
    return KernelStats(kc=kc, norm=float(torch.linalg.vector_norm(kc)), sigma=sigma)


def compare_kernel(a: KernelStats, b: KernelStats) -> float:
    """CKA of two centred kernels: ⟨Kc, Lc⟩_F / (‖Kc‖_F ‖Lc‖_F)."""
    if a.kc.shape != b.kc.shape:
        raise DataError(f"X has {a.kc.shape[0]} rows but Y has {b.kc.shape[0]}; compare the same samples")
    if a.norm == 0 or b.norm == 0:
        raise DataError("a centred kernel is zero (constant representation); CKA is undefined")
    return float((a.kc * b.kc).sum()) / (a.norm * b.norm)


def rbf_cka(x, y, sigma_mult: float = 1.0, device="auto") -> float:
    """RBF CKA (Kornblith et al. 2019): ⟨HKH, HLH⟩/(‖HKH‖‖HLH‖), K = exp(−d²/2σ²), σ = sigma_mult·median distance."""
    xs, ys = to_matrix(x, device), to_matrix(y, device)
    same_rows(xs, ys)
    return compare_kernel(prepare_rbf(xs, device, sigma_mult), prepare_rbf(ys, device, sigma_mult))
