"""Neighbourhood measures: mutual-kNN alignment and CKNNA (Huh et al. 2024), kNN Jaccard.

Every neighbour set comes from the one exact k-NN engine, `repscope.kernels.knn.knn_distances`, with its rules:
- **tie rule**: neighbours are ranked by (float64 distance, index), so equal distances go to the lower index;
- **self**: a sample is never its own neighbour (excluded by index; a duplicate sample is a neighbour at distance 0);
- **zero-row rule** (cosine): an all-zero sample has no direction. Its cosine with every sample is 0 (`unit_rows`);
  for ranking, it sits at the cosine-distance of an orthogonal vector from every non-zero sample and at distance 0
  from the other all-zero samples (they are identical representations, so they rank first for each other).
No n × n matrix is built: the statistics are (n, k) neighbour lists with the kernel values at them.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from repscope.errors import ConfigError, DataError
from repscope.kernels.knn import knn_distances
from repscope.similarity.prep import centre, check_variance, to_matrix

METRICS = ("cosine", "euclidean")
CKNNA_VARIANTS = ("paper", "platonic")


def unit_rows(x: Tensor) -> Tensor:
    """Rows scaled to unit norm; all-zero rows (e.g. a sample with every ReLU off) stay zero, so their cosine
    with any sample is defined as 0."""
    nrm = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    ok = nrm > 1e-12 * nrm.max().clamp_min(1e-300)
    return torch.where(ok, x / torch.where(ok, nrm, torch.ones_like(nrm)), torch.zeros_like(x))


@dataclass
class KnnStats:
    """Each sample's k nearest other samples, `indices` (n, k) nearest first, the kernel K at them, `kvals` (n, k)
    (cosine, or −squared euclidean distance), and each kernel row's mean over all n samples, `row_mean` (n,)."""

    indices: Tensor
    kvals: Tensor
    row_mean: Tensor
    k: int
    metric: str

    @property
    def mask(self) -> Tensor:
        """The neighbour sets as a boolean n × n matrix (row i marks i's neighbours); O(n²) memory."""
        n = self.indices.shape[0]
        m = torch.zeros((n, n), dtype=torch.bool, device=self.indices.device)
        return m.scatter_(1, self.indices, True)


def _neighbours(x: Tensor, k: int, metric: str) -> KnnStats:
    """Neighbour lists, kernel values at them and kernel row means, from the exact k-NN engine."""
    xc = centre(x)
    if metric == "cosine":
        z = unit_rows(x)
        zero = (z == 0).all(1)
        # zero rows get their own axis: distance √2 (cosine 0) to every unit row, 0 to each other
        emb = torch.cat([z, zero.to(z.dtype)[:, None]], 1) if bool(zero.any()) else z
        dist, idx = knn_distances(emb, k, device=x.device, return_indices=True)
        kv = 1.0 - 0.5 * dist * dist  # cos = 1 − ‖u − v‖²/2 on unit rows
        kv = torch.where(zero[:, None] | zero[idx], torch.zeros_like(kv), kv)
        row_mean = z @ z.mean(0)
    elif metric == "euclidean":
        dist, idx = knn_distances(xc, k, device=x.device, return_indices=True)
        kv = -dist * dist
        r = (xc * xc).sum(1)
        row_mean = -(r + r.mean())  # mean_l −‖xᵢ − x_l‖² with column-centred x
    else:
        raise ConfigError(f"unknown neighbour metric '{metric}'; use one of {', '.join(METRICS)}")
    return KnnStats(indices=idx, kvals=kv, row_mean=row_mean, k=k, metric=metric)


def prepare_knn(x, k: int = 10, metric: str = "cosine", device="auto") -> KnnStats:
    """Each sample's k nearest other samples (exact, by the module's tie and zero-row rules)."""
    x = to_matrix(x, device)
    check_variance(centre(x), x)
    n = x.shape[0]
    if not 1 <= k < n:
        raise ConfigError(f"k must be in [1, n−1] = [1, {n - 1}], got {k}; lower k or add samples")
    if metric not in METRICS:
        raise ConfigError(f"unknown neighbour metric '{metric}'; use one of {', '.join(METRICS)}")
    return _neighbours(x, k, metric)


def _check_pair(a: KnnStats, b: KnnStats) -> None:
    if a.indices.shape[0] != b.indices.shape[0]:
        raise DataError(f"X has {a.indices.shape[0]} rows but Y has {b.indices.shape[0]}; compare the same samples")
    if a.k != b.k:
        raise ConfigError(f"both sides need the same k (got {a.k} and {b.k})")


def _matches(ia: Tensor, ib: Tensor) -> Iterator[tuple[Tensor, Tensor, Tensor]]:
    """(row, position in ia, position in ib) of every neighbour shared by both lists, in row chunks."""
    n, k = ia.shape
    step = max(1, (1 << 24) // (k * k))
    for s in range(0, n, step):
        eq = ia[s : s + step, :, None] == ib[s : s + step, None, :]
        r, pa, pb = eq.nonzero(as_tuple=True)
        yield r + s, pa, pb


def _overlap(a: KnnStats, b: KnnStats) -> Tensor:
    """|N_X(i) ∩ N_Y(i)| per row, float64."""
    _check_pair(a, b)
    counts = torch.zeros(a.indices.shape[0], dtype=torch.float64, device=a.indices.device)
    for r, _, _ in _matches(a.indices, b.indices.to(a.indices.device)):
        counts.index_add_(0, r, torch.ones_like(r, dtype=torch.float64))
    return counts


def compare_mknn(a: KnnStats, b: KnnStats) -> float:
    """Mutual-kNN alignment of two prepared neighbour lists."""
    return float(_overlap(a, b).mean() / a.k)


def compare_jaccard(a: KnnStats, b: KnnStats) -> float:
    """Mean kNN Jaccard index of two prepared neighbour lists."""
    inter = _overlap(a, b)
    return float((inter / (2 * a.k - inter)).mean())


def mutual_knn(x, y, k: int = 10, metric: str = "cosine", device="auto") -> float:
    """Mutual-kNN alignment (Huh et al. 2024): (1/n) Σᵢ |N_X(i) ∩ N_Y(i)| / k, N the k nearest other samples."""
    return compare_mknn(prepare_knn(x, k, metric, device), prepare_knn(y, k, metric, device))


def knn_jaccard(x, y, k: int = 10, metric: str = "cosine", device="auto") -> float:
    """kNN Jaccard similarity: (1/n) Σᵢ |N_X(i) ∩ N_Y(i)| / |N_X(i) ∪ N_Y(i)|."""
    return compare_jaccard(prepare_knn(x, k, metric, device), prepare_knn(y, k, metric, device))


@dataclass
class CknnaStats:
    """Neighbour lists with kernel values, the CKNNA variant, and the self-alignment term of that variant."""

    knn: KnnStats
    variant: str
    self_align: float


def _masked_entries(a: KnnStats, b: KnnStats) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Entries (i, j) with j ∈ N_a(i) ∩ N_b(i): rows, columns, K_a[i, j] and K_b[i, j]."""
    rows, cols, va, vb = [], [], [], []
    ib = b.indices.to(a.indices.device)
    for r, pa, pb in _matches(a.indices, ib):
        rows.append(r)
        cols.append(a.indices[r, pa])
        va.append(a.kvals[r, pa])
        vb.append(b.kvals.to(a.kvals.device)[r, pb])
    return torch.cat(rows), torch.cat(cols), torch.cat(va), torch.cat(vb)


def _hsic_unbiased_sparse(n: int, rows: Tensor, cols: Tensor, va: Tensor, vb: Tensor) -> float:
    """Unbiased HSIC (Song et al. 2012) of two n × n matrices A, B with zero diagonals, both supported on the same
    entries (rows, cols) with values va, vb:
    [tr(AB) + (1ᵀA1)(1ᵀB1)/((n−1)(n−2)) − 2/(n−2)·1ᵀAB1] / (n(n−3))."""
    if n < 4:
        raise DataError(f"the unbiased HSIC of CKNNA's platonic variant needs at least 4 samples, got {n}")
    key = rows * n + cols
    order = torch.argsort(key)
    skey, svb = key[order], vb[order]
    tkey = cols * n + rows  # B[j, i] for every A[i, j]
    pos = torch.searchsorted(skey, tkey).clamp_max(skey.numel() - 1)
    hit = skey[pos] == tkey
    tr_ab = float((va * torch.where(hit, svb[pos], torch.zeros_like(va))).sum())
    col_a = torch.zeros(n, dtype=va.dtype, device=va.device).index_add_(0, cols, va)  # 1ᵀA
    row_b = torch.zeros(n, dtype=vb.dtype, device=vb.device).index_add_(0, rows, vb)  # B1
    one_ab_one = float(col_a @ row_b)
    total = tr_ab + float(va.sum()) * float(vb.sum()) / ((n - 1) * (n - 2)) - 2.0 * one_ab_one / (n - 2)
    return total / (n * (n - 3))


def _align(a: KnnStats, b: KnnStats, variant: str) -> float:
    """The (un-normalised) CKNNA alignment of a and b under `variant`."""
    rows, cols, va, vb = _masked_entries(a, b)
    if variant == "paper":
        return float(((va - a.row_mean[rows]) * (vb - b.row_mean.to(va.device)[rows])).sum())
    return _hsic_unbiased_sparse(a.indices.shape[0], rows, cols, va, vb)


def prepare_cknna(x, k: int = 10, metric: str = "cosine", variant: str = "paper", device="auto") -> CknnaStats:
    """Neighbour lists, kernel values and the self-alignment of one representation for CKNNA (see `cknna`)."""
    if variant not in CKNNA_VARIANTS:
        raise ConfigError(f"unknown CKNNA variant '{variant}'; use one of {', '.join(CKNNA_VARIANTS)}")
    knn = prepare_knn(x, k, metric, device)
    s = _align(knn, knn, variant)
    if not s > 0.0:
        raise DataError("the kernel is constant on every neighbourhood (constant representation); CKNNA is undefined")
    return CknnaStats(knn=knn, variant=variant, self_align=s)


def compare_cknna(a: CknnaStats, b: CknnaStats) -> float:
    """CKNNA of two prepared representations (both prepared with the same variant)."""
    _check_pair(a.knn, b.knn)
    if a.variant != b.variant:
        raise ConfigError(f"both sides need the same CKNNA variant (got {a.variant} and {b.variant})")
    return _align(a.knn, b.knn, a.variant) / (a.self_align * b.self_align) ** 0.5


def cknna(x, y, k: int = 10, metric: str = "cosine", device="auto", *, variant: str = "paper") -> float:
    """CKNNA (Huh et al. 2024): Σᵢⱼ αᵢⱼ K̄ᵢⱼL̄ᵢⱼ / √(Σ αᴷᵢⱼ K̄²ᵢⱼ · Σ αᴸᵢⱼ L̄²ᵢⱼ), α=1[j∈kNN_K(i)∩kNN_L(i)].

    `variant="paper"` (default): the paper's row-centred form above, K̄ᵢⱼ = Kᵢⱼ − (1/n) Σₗ Kᵢₗ (mean over the whole
    row, diagonal included). `variant="platonic"`: the platonic-rep code's form, unbiased HSIC (Song et al. 2012) of
    the masked kernels, HSIC₁(α∘K, α∘L) / √(HSIC₁(αᴷ∘K, αᴷ∘K) · HSIC₁(αᴸ∘L, αᴸ∘L)), without that code's +1e-6 in
    the denominator. The two differ by 1–35% on real representations. K is the cosine kernel (platonic-rep's inner
    product of normalised features) or −squared euclidean distance, per `metric`.
    """
    return compare_cknna(prepare_cknna(x, k, metric, variant, device), prepare_cknna(y, k, metric, variant, device))
