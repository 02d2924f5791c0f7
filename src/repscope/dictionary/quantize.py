"""Discrete codes: each quantizer has fit / encode → integer codes / decode → vectors / bits_per_vector.

k-means codebook (mini-batch, Sculley 2010), VQ with EMA updates and dead-code reset (van den Oord et al. 2017;
Razavi et al. 2019), residual VQ (Juang & Gray 1982; Zeghidour et al. 2021), product quantization (Jégou et al. 2011),
per-dimension scalar codebooks (QLAE, Hsu et al. 2023) and binary sign codes.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repscope.device import resolve_device
from repscope.dictionary import metrics as M
from repscope.errors import ConfigError, DataError


def _x(X: Any, device: torch.device) -> Tensor:
    t = X if isinstance(X, Tensor) else torch.as_tensor(np.asarray(X))
    if t.ndim != 2 or t.shape[0] == 0:
        raise DataError(f"expected a non-empty 2-D array (n_samples, n_features), got shape {tuple(t.shape)}")
    t = t.detach().to(device, torch.float32)
    if not torch.isfinite(t).all():
        raise DataError("input has NaN or Inf values; filter them before quantizing")
    return t


def _sqdist(x: Tensor, c: Tensor) -> Tensor:
    """Squared Euclidean distances (n, K) computed as ‖x‖² − 2x·c + ‖c‖², clamped at 0."""
    return (x.pow(2).sum(1, keepdim=True) - 2 * x @ c.T + c.pow(2).sum(1)[None]).clamp_min(0)


def nearest(x: Tensor, codebook: Tensor, chunk: int = 16384) -> Tensor:
    """Index of the nearest codeword for each row of x (chunked over rows)."""
    return torch.cat([_sqdist(x[s : s + chunk], codebook).argmin(1) for s in range(0, len(x), chunk)])


def kmeans_pp(x: Tensor, k: int, gen: torch.Generator) -> Tensor:
    """k-means++ seeding (Arthur & Vassilvitskii 2007): sample centres with probability ∝ D(x)²."""
    n = len(x)
    idx = [int(torch.randint(n, (1,), generator=gen))]
    d2 = _sqdist(x, x[idx[0] : idx[0] + 1]).squeeze(1)
    for _ in range(1, k):
        p = d2.double().cpu()
        if float(p.sum()) <= 0:
            j = int(torch.randint(n, (1,), generator=gen))
        else:
            j = int(torch.multinomial(p / p.sum(), 1, generator=gen))
        idx.append(j)
        d2 = torch.minimum(d2, _sqdist(x, x[j : j + 1]).squeeze(1))
    return x[idx].clone()


class Quantizer:
    """Base class: fit(X), encode(X) → int64 codes, decode(codes) → float32 vectors, transform = decode∘encode."""

    n_codes: int

    def _dev(self) -> torch.device:
        return resolve_device(getattr(self, "device", "auto"))

    def _check(self) -> None:
        if not getattr(self, "fitted_", False):
            raise ConfigError(f"this {type(self).__name__} is not fitted yet; call fit() first")

    def encode(self, X: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, codes: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def bits_per_vector(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self, X: Any) -> Any:
        """Quantized reconstruction decode(encode(X))."""
        return self.decode(self.encode(X))

    def score(self, X: Any) -> float:
        """1 − FVU of the quantized reconstruction."""
        return 1.0 - M.fvu(X, self.transform(X))

    def evaluate(self, X: Any) -> dict[str, float]:
        """FVU, MSE, bits/vector, codebook usage and perplexity (averaged over codebooks) on X."""
        codes = self.encode(X)
        x_hat = self.decode(codes)
        c = np.asarray(codes.cpu() if isinstance(codes, Tensor) else codes)
        c2 = c.reshape(len(c), -1)
        usage = np.mean([M.codebook_usage(c2[:, j], self.n_codes) for j in range(c2.shape[1])])
        ppl = np.mean([M.perplexity(c2[:, j], self.n_codes) for j in range(c2.shape[1])])
        return {"fvu": M.fvu(X, x_hat), "mse": M.mse(X, x_hat), "bits_per_vector": float(self.bits_per_vector()),
                "codebook_usage": float(usage), "perplexity": float(ppl)}


def _out(t: Tensor, ref: Any) -> Any:
    t = t.cpu()
    return t if isinstance(ref, Tensor) else t.numpy()


class KMeansQuantizer(Quantizer):
    """Mini-batch k-means codebook (Sculley 2010): per-centre learning rate 1/count, k-means++ seeding."""

    def __init__(self, n_codes: int = 256, batch_size: int = 2048, n_iter: int = 100, n_init_samples: int = 20000,
                 seed: int = 0, device: str = "auto"):
        self.n_codes, self.batch_size, self.n_iter = int(n_codes), int(batch_size), int(n_iter)
        self.n_init_samples, self.seed, self.device = int(n_init_samples), int(seed), device

    def fit(self, X: Any) -> KMeansQuantizer:
        """Seed with k-means++ on a sample, then mini-batch updates c ← c + (x̄_B − c)·n_B/count."""
        x = _x(X, self._dev())
        if self.n_codes < 1:
            raise ConfigError(f"n_codes must be >= 1, got {self.n_codes}")
        gen = torch.Generator().manual_seed(self.seed)
        sample = x[torch.randperm(len(x), generator=gen)[: self.n_init_samples].to(x.device)]
        k = min(self.n_codes, len(sample))
        c = kmeans_pp(sample, k, gen)
        if k < self.n_codes:  # fewer points than codes: repeat points (unused duplicates)
            c = torch.cat([c, c[torch.arange(self.n_codes - k) % k]])
        counts = torch.zeros(self.n_codes, device=x.device)
        for _ in range(self.n_iter):
            b = x[torch.randint(len(x), (min(self.batch_size, len(x)),), generator=gen).to(x.device)]
            a = nearest(b, c)
            nb = torch.bincount(a, minlength=self.n_codes).float()
            sums = torch.zeros_like(c).index_add_(0, a, b)
            counts += nb
            hit = nb > 0
            eta = (nb[hit] / counts[hit])[:, None]
            c[hit] = c[hit] + eta * (sums[hit] / nb[hit, None] - c[hit])
        # a final Lloyd refinement pass over all rows
        a = nearest(x, c)
        nb = torch.bincount(a, minlength=self.n_codes).float()
        sums = torch.zeros_like(c).index_add_(0, a, x)
        hit = nb > 0
        c[hit] = sums[hit] / nb[hit, None]
        self.codebook_ = c
        self.fitted_ = True
        return self

    def encode(self, X: Any) -> Any:
        """Index of the nearest codeword, shape (n,)."""
        self._check()
        return _out(nearest(_x(X, self.codebook_.device), self.codebook_), X)

    def decode(self, codes: Any) -> Any:
        """Codewords for the codes, shape (n, d)."""
        self._check()
        c = torch.as_tensor(np.asarray(codes.cpu() if isinstance(codes, Tensor) else codes), dtype=torch.long)
        return _out(self.codebook_[c.to(self.codebook_.device)], codes)

    def bits_per_vector(self) -> float:
        """log₂ K."""
        return math.log2(self.n_codes)


class VectorQuantizer(KMeansQuantizer):
    """VQ with EMA codebook updates (Razavi et al. 2019): N ← γN + (1−γ)n_B, S ← γS + (1−γ)Σx, c = S/N̂ (Laplace
    smoothed), and dead-code reset: codes whose EMA count (rows per batch) falls below `dead_threshold` restart at
    random rows of the batch."""

    def __init__(self, n_codes: int = 256, decay: float = 0.99, dead_threshold: float = 1.0, batch_size: int = 1024,
                 n_epochs: float = 5.0, eps: float = 1e-5, seed: int = 0, device: str = "auto"):
        self.n_codes, self.decay, self.dead_threshold = int(n_codes), float(decay), float(dead_threshold)
        self.batch_size, self.n_epochs, self.eps, self.seed, self.device = batch_size, n_epochs, eps, seed, device

    def fit(self, X: Any) -> VectorQuantizer:
        """EMA training over shuffled mini-batches for n_epochs; counts resets in `n_resets_`."""
        x = _x(X, self._dev())
        gen = torch.Generator().manual_seed(int(self.seed))
        init = x[torch.randint(len(x), (self.n_codes,), generator=gen).to(x.device)].clone()
        N = torch.ones(self.n_codes, device=x.device)
        S = init.clone()
        c = init
        n_steps = max(1, int(math.ceil(self.n_epochs * len(x) / self.batch_size)))
        resets = 0
        for _ in range(n_steps):
            b = x[torch.randint(len(x), (min(self.batch_size, len(x)),), generator=gen).to(x.device)]
            a = nearest(b, c)
            nb = torch.bincount(a, minlength=self.n_codes).float()
            sums = torch.zeros_like(c).index_add_(0, a, b)
            N.mul_(self.decay).add_((1 - self.decay) * nb)
            S.mul_(self.decay).add_((1 - self.decay) * sums)
            total = N.sum()
            Nh = (N + self.eps) / (total + self.n_codes * self.eps) * total
            c = S / Nh[:, None]
            dead = N < self.dead_threshold
            nd = int(dead.sum())
            if nd:
                repl = b[torch.randint(len(b), (nd,), generator=gen).to(x.device)]
                c[dead] = repl
                S[dead] = repl
                N[dead] = 1.0
                resets += nd
        self.codebook_ = c
        self.ema_counts_ = N
        self.n_resets_ = resets
        self.fitted_ = True
        return self


class ResidualVQ(Quantizer):
    """Residual VQ: stage s quantizes the residual x − Σ_{t<s} ĉ_t with its own k-means codebook; codes (n, S)."""

    def __init__(self, n_stages: int = 4, n_codes: int = 256, n_iter: int = 100, seed: int = 0, device: str = "auto"):
        self.n_stages, self.n_codes, self.n_iter, self.seed, self.device = n_stages, n_codes, n_iter, seed, device

    def fit(self, X: Any) -> ResidualVQ:
        """Fit the stages greedily on successive residuals."""
        if self.n_stages < 1:
            raise ConfigError(f"n_stages must be >= 1, got {self.n_stages}")
        r = _x(X, self._dev())
        self.stages_: list[KMeansQuantizer] = []
        for s in range(self.n_stages):
            q = KMeansQuantizer(self.n_codes, n_iter=self.n_iter, seed=self.seed + s, device=self.device).fit(r)
            r = r - q.codebook_[nearest(r, q.codebook_)]
            self.stages_.append(q)
        self.fitted_ = True
        return self

    def encode(self, X: Any, n_stages: int | None = None) -> Any:
        """Greedy codes (n, S) using the first `n_stages` stages (all by default)."""
        self._check()
        r = _x(X, self.stages_[0].codebook_.device)
        out = []
        for q in self.stages_[: n_stages or self.n_stages]:
            a = nearest(r, q.codebook_)
            r = r - q.codebook_[a]
            out.append(a)
        return _out(torch.stack(out, 1), X)

    def decode(self, codes: Any) -> Any:
        """Sum of the stage codewords (works for any prefix of stages)."""
        self._check()
        c = torch.as_tensor(np.asarray(codes.cpu() if isinstance(codes, Tensor) else codes), dtype=torch.long)
        dev = self.stages_[0].codebook_.device
        out = sum(self.stages_[s].codebook_[c[:, s].to(dev)] for s in range(c.shape[1]))
        return _out(out, codes)

    def bits_per_vector(self) -> float:
        """S·log₂ K."""
        return self.n_stages * math.log2(self.n_codes)


class ProductQuantizer(Quantizer):
    """Product quantization (Jégou et al. 2011): split d into M sub-vectors, k-means each; codes (n, M).

    Give either `n_subspaces` and `bits_per_subspace`, or a total `bits` (then 8 bits per sub-space where possible)."""

    def __init__(self, n_subspaces: int | None = None, bits_per_subspace: int = 8, bits: int | None = None,
                 n_iter: int = 100, seed: int = 0, device: str = "auto"):
        self.n_subspaces, self.bits_per_subspace, self.bits = n_subspaces, bits_per_subspace, bits
        self.n_iter, self.seed, self.device = n_iter, seed, device

    def _plan(self, d: int) -> tuple[int, int]:
        if self.bits is not None:
            nb = self.bits_per_subspace
            if self.bits % nb:
                raise ConfigError(f"bits={self.bits} is not a multiple of bits_per_subspace={nb}")
            M_ = self.bits // nb
        else:
            M_, nb = int(self.n_subspaces or 8), int(self.bits_per_subspace)
        if M_ < 1 or M_ > d:
            raise ConfigError(f"cannot split {d} dimensions into {M_} sub-spaces; use fewer bits or sub-spaces")
        return M_, nb

    def fit(self, X: Any) -> ProductQuantizer:
        """Fit one k-means codebook of 2^b codes per sub-space (sub-spaces differ by at most one dimension)."""
        x = _x(X, self._dev())
        M_, nb = self._plan(x.shape[1])
        self.n_subspaces_, self.n_codes = M_, 2**nb
        self.bounds_ = np.linspace(0, x.shape[1], M_ + 1).round().astype(int)
        self.quantizers_ = [
            KMeansQuantizer(self.n_codes, n_iter=self.n_iter, seed=self.seed + j, device=self.device)
            .fit(x[:, self.bounds_[j] : self.bounds_[j + 1]]) for j in range(M_)
        ]
        self.fitted_ = True
        return self

    def encode(self, X: Any) -> Any:
        """Codes (n, M), one per sub-space."""
        self._check()
        x = _x(X, self.quantizers_[0].codebook_.device)
        b = self.bounds_
        codes = [nearest(x[:, b[j] : b[j + 1]], q.codebook_) for j, q in enumerate(self.quantizers_)]
        return _out(torch.stack(codes, 1), X)

    def decode(self, codes: Any) -> Any:
        """Concatenated sub-space codewords (n, d)."""
        self._check()
        c = torch.as_tensor(np.asarray(codes.cpu() if isinstance(codes, Tensor) else codes), dtype=torch.long)
        dev = self.quantizers_[0].codebook_.device
        return _out(torch.cat([q.codebook_[c[:, j].to(dev)] for j, q in enumerate(self.quantizers_)], 1), codes)

    def bits_per_vector(self) -> float:
        """M·log₂ K."""
        self._check()
        return self.n_subspaces_ * math.log2(self.n_codes)


class ScalarQuantizer(Quantizer):
    """Per-dimension scalar codebooks (QLAE-style latent quantization, Hsu et al. 2023): dimension j has its own
    `n_levels` values, fit by 1-D Lloyd–Max (k-means) from an evenly spaced start; codes (n, d)."""

    def __init__(self, n_levels: int = 16, n_iter: int = 30, device: str = "auto"):
        self.n_levels, self.n_iter, self.device = int(n_levels), int(n_iter), device

    def fit(self, X: Any) -> ScalarQuantizer:
        """Lloyd iterations per dimension, vectorised over dimensions; empty levels keep their value."""
        if self.n_levels < 2:
            raise ConfigError(f"n_levels must be >= 2, got {self.n_levels}")
        x = _x(X, self._dev())
        self.n_codes = self.n_levels
        lo, hi = x.min(0).values, x.max(0).values
        t = torch.linspace(0, 1, self.n_levels, device=x.device)
        v = lo[:, None] + (hi - lo)[:, None] * t[None]  # (d, L)
        for _ in range(self.n_iter):
            a = (x[:, :, None] - v[None]).abs().argmin(2)  # (n, d)
            sums = torch.zeros_like(v).scatter_add_(1, a.T, x.T)
            cnt = torch.zeros_like(v).scatter_add_(1, a.T, torch.ones_like(x.T))
            v = torch.where(cnt > 0, sums / cnt.clamp_min(1), v)
            v = v.sort(1).values
        self.levels_ = v
        self.fitted_ = True
        return self

    def encode(self, X: Any) -> Any:
        """Nearest level index per dimension, (n, d)."""
        self._check()
        x = _x(X, self.levels_.device)
        out = torch.cat([(x[s : s + 4096, :, None] - self.levels_[None]).abs().argmin(2)
                         for s in range(0, len(x), 4096)])
        return _out(out, X)

    def decode(self, codes: Any) -> Any:
        """Level values, (n, d)."""
        self._check()
        c = torch.as_tensor(np.asarray(codes.cpu() if isinstance(codes, Tensor) else codes), dtype=torch.long)
        c = c.to(self.levels_.device)
        return _out(self.levels_.gather(1, c.T).T, codes)

    def bits_per_vector(self) -> float:
        """d·log₂ L."""
        self._check()
        return self.levels_.shape[0] * math.log2(self.n_levels)


class BinaryQuantizer(Quantizer):
    """Binary sign codes: b_j = [x_j > μ_j]; decode μ_j ± s_j with s_j = E|x_j − μ_j| (the per-dimension L2-optimal
    magnitude for a fixed sign); d bits per vector."""

    n_codes = 2

    def __init__(self, center: bool = True, device: str = "auto"):
        self.center, self.device = center, device

    def fit(self, X: Any) -> BinaryQuantizer:
        x = _x(X, self._dev())
        self.mean_ = x.mean(0) if self.center else torch.zeros(x.shape[1], device=x.device)
        self.scale_ = (x - self.mean_).abs().mean(0)
        self.fitted_ = True
        return self

    def encode(self, X: Any) -> Any:
        """Bits (n, d) as int64 0/1."""
        self._check()
        return _out((_x(X, self.mean_.device) > self.mean_).long(), X)

    def decode(self, codes: Any) -> Any:
        """μ + (2b − 1)·s."""
        self._check()
        c = torch.as_tensor(np.asarray(codes.cpu() if isinstance(codes, Tensor) else codes)).to(self.mean_.device)
        return _out(self.mean_ + (2 * c.float() - 1) * self.scale_, codes)

    def bits_per_vector(self) -> float:
        """d."""
        self._check()
        return float(self.mean_.shape[0])


METHODS = ("kmeans", "vq", "rvq", "pq", "scalar", "binary")


def make_quantizer(method: str, bits: int | None = None, dim: int | None = None, seed: int = 0,
                   device: str = "auto") -> Quantizer:
    """Quantizer by name with a bit budget per vector: kmeans/vq (≤ 16 bits, one codebook), rvq (8-bit stages),
    pq (8 bits per sub-space), scalar (bits/d per dimension), binary (d bits; `bits` ignored)."""
    if method not in METHODS:
        raise ConfigError(f"unknown quantizer '{method}'; choose one of {', '.join(METHODS)}")
    b = bits or 8
    if method in ("kmeans", "vq"):
        if b > 16:
            raise ConfigError(f"{method} uses one codebook of 2^bits codes; bits={b} is too many (use <= 16 or pq)")
        cls = KMeansQuantizer if method == "kmeans" else VectorQuantizer
        return cls(n_codes=2**b, seed=seed, device=device)
    if method == "rvq":
        per = 8 if b >= 8 else b
        if b % per:
            raise ConfigError(f"rvq uses 8-bit stages; bits={b} is not a multiple of 8")
        return ResidualVQ(n_stages=b // per, n_codes=2**per, seed=seed, device=device)
    if method == "pq":
        per = 8 if b % 8 == 0 else (4 if b % 4 == 0 else 1)
        return ProductQuantizer(bits=b, bits_per_subspace=per, seed=seed, device=device)
    if method == "scalar":
        if dim is None:
            raise ConfigError("scalar quantization needs the dimension to split the bit budget")
        per = max(1, b // dim)
        return ScalarQuantizer(n_levels=2**per, device=device)
    return BinaryQuantizer(device=device)
