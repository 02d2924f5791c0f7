"""Discrete codes: each quantizer has fit / encode → integer codes / decode → vectors / bits_per_vector.

k-means codebook (mini-batch, Sculley 2010), VQ with EMA updates and dead-code reset (van den Oord et al. 2017;
Razavi et al. 2019), residual VQ (Juang & Gray 1982; Zeghidour et al. 2021), product quantization (Jégou et al. 2011),
per-dimension scalar codebooks (QLAE, Hsu et al. 2023) and binary sign codes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from torch import Tensor

from repscope.device import resolve_device
from repscope.dictionary import metrics as M
from repscope.errors import ConfigError
from repscope.registry import Registry
from repscope.validation import require_fitted, validate_input


def _x(est: Any, X: Any, device: torch.device, reset: bool = False) -> Tensor:
    """float32 (n, d) tensor through repscope's one input validator; `reset` (fit) records `n_features_in_`."""
    t = X.detach() if isinstance(X, Tensor) else X
    return validate_input(est, t, reset=reset, device=device, dtype=torch.float32, purpose="quantizing")


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


class Quantizer(TransformerMixin, BaseEstimator):
    """Base class: fit(X), encode(X) → int64 codes, decode(codes) → float32 vectors, transform = decode∘encode.

    scikit-learn estimators (clone, Pipeline, GridSearchCV): `transform` returns the float32 reconstruction, `score`
    1 − FVU. `codes_per_book_` is the size of each codebook (n_codes, 2^bits per sub-space, n_levels or 2)."""

    def _dev(self) -> torch.device:
        return resolve_device(getattr(self, "device", "auto"))

    def _check(self) -> None:
        require_fitted(self, "fitted_")

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # dense rows only: sparse input is refused with a one-line DataError
        tags.transformer_tags.preserves_dtype = ["float32"]  # codebooks are float32, so is every reconstruction
        tags.non_deterministic = False  # seeded
        return tags

    def encode(self, X: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def decode(self, codes: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def bits_per_vector(self) -> float:  # pragma: no cover - abstract
        raise NotImplementedError

    def transform(self, X: Any) -> Any:
        """Quantized reconstruction decode(encode(X))."""
        return self.decode(self.encode(X))

    def score(self, X: Any, y: Any = None) -> float:
        """1 − FVU of the quantized reconstruction (`y` is ignored: scikit-learn's signature)."""
        return 1.0 - M.fvu(X, self.transform(X))

    def evaluate(self, X: Any) -> dict[str, float]:
        """FVU, MSE, bits/vector, codebook usage and perplexity (averaged over codebooks) on X."""
        codes = self.encode(X)
        x_hat = self.decode(codes)
        c = np.asarray(codes.cpu() if isinstance(codes, Tensor) else codes)
        c2 = c.reshape(len(c), -1)
        usage = np.mean([M.codebook_usage(c2[:, j], self.codes_per_book_) for j in range(c2.shape[1])])
        ppl = np.mean([M.perplexity(c2[:, j], self.codes_per_book_) for j in range(c2.shape[1])])
        return {"fvu": M.fvu(X, x_hat), "mse": M.mse(X, x_hat), "bits_per_vector": float(self.bits_per_vector()),
                "codebook_usage": float(usage), "perplexity": float(ppl)}


def _out(t: Tensor, ref: Any) -> Any:
    t = t.cpu()
    return t if isinstance(ref, Tensor) else t.numpy()


class KMeansQuantizer(Quantizer):
    """Mini-batch k-means codebook (Sculley 2010): per-centre learning rate 1/count, k-means++ seeding."""

    def __init__(self, n_codes: int = 256, batch_size: int = 2048, n_iter: int = 100, n_init_samples: int = 20000,
                 seed: int = 0, device: str = "auto"):
        self.n_codes, self.batch_size, self.n_iter = n_codes, batch_size, n_iter
        self.n_init_samples, self.seed, self.device = n_init_samples, seed, device

    def fit(self, X: Any, y: Any = None) -> KMeansQuantizer:
        """Seed with k-means++ on a sample, then mini-batch updates c ← c + (x̄_B − c)·n_B/count."""
        x = _x(self, X, self._dev(), reset=True)
        n_codes = int(self.n_codes)
        if n_codes < 1:
            raise ConfigError(f"n_codes must be >= 1, got {self.n_codes}")
        gen = torch.Generator().manual_seed(int(self.seed))
        sample = x[torch.randperm(len(x), generator=gen)[: int(self.n_init_samples)].to(x.device)]
        k = min(n_codes, len(sample))
        c = kmeans_pp(sample, k, gen)
        if k < n_codes:  # fewer points than codes: repeat points (unused duplicates)
            c = torch.cat([c, c[torch.arange(n_codes - k) % k]])
        counts = torch.zeros(n_codes, device=x.device)
        for _ in range(int(self.n_iter)):
            b = x[torch.randint(len(x), (min(int(self.batch_size), len(x)),), generator=gen).to(x.device)]
            a = nearest(b, c)
            nb = torch.bincount(a, minlength=n_codes).float()
            sums = torch.zeros_like(c).index_add_(0, a, b)
            counts += nb
            hit = nb > 0
            eta = (nb[hit] / counts[hit])[:, None]
            c[hit] = c[hit] + eta * (sums[hit] / nb[hit, None] - c[hit])
        # a final Lloyd refinement pass over all rows
        a = nearest(x, c)
        nb = torch.bincount(a, minlength=n_codes).float()
        sums = torch.zeros_like(c).index_add_(0, a, x)
        hit = nb > 0
        c[hit] = sums[hit] / nb[hit, None]
        self.codebook_ = c
        self.codes_per_book_ = n_codes
        self.fitted_ = True
        return self

    def encode(self, X: Any) -> Any:
        """Index of the nearest codeword, shape (n,)."""
        self._check()
        return _out(nearest(_x(self, X, self.codebook_.device), self.codebook_), X)

    def decode(self, codes: Any) -> Any:
        """Codewords for the codes, shape (n, d)."""
        self._check()
        c = torch.as_tensor(np.asarray(codes.cpu() if isinstance(codes, Tensor) else codes), dtype=torch.long)
        return _out(self.codebook_[c.to(self.codebook_.device)], codes)

    def bits_per_vector(self) -> float:
        """log₂ K."""
        return math.log2(int(self.n_codes))


class VectorQuantizer(KMeansQuantizer):
    """VQ with EMA codebook updates (Razavi et al. 2019): N ← γN + (1−γ)n_B, S ← γS + (1−γ)Σx, c = S/N̂ (Laplace
    smoothed), and dead-code reset: codes whose EMA count (rows per batch) falls below `dead_threshold` restart at
    random rows of the batch."""

    def __init__(self, n_codes: int = 256, decay: float = 0.99, dead_threshold: float = 1.0, batch_size: int = 1024,
                 n_epochs: float = 5.0, eps: float = 1e-5, seed: int = 0, device: str = "auto"):
        self.n_codes, self.decay, self.dead_threshold = n_codes, decay, dead_threshold
        self.batch_size, self.n_epochs, self.eps, self.seed, self.device = batch_size, n_epochs, eps, seed, device

    def fit(self, X: Any, y: Any = None) -> VectorQuantizer:
        """EMA training over shuffled mini-batches for n_epochs; counts resets in `n_resets_`."""
        x = _x(self, X, self._dev(), reset=True)
        n_codes = int(self.n_codes)
        if n_codes < 1:
            raise ConfigError(f"n_codes must be >= 1, got {self.n_codes}")
        gen = torch.Generator().manual_seed(int(self.seed))
        init = x[torch.randint(len(x), (n_codes,), generator=gen).to(x.device)].clone()
        N = torch.ones(n_codes, device=x.device)
        S = init.clone()
        c = init
        n_steps = max(1, int(math.ceil(self.n_epochs * len(x) / self.batch_size)))
        resets = 0
        for _ in range(n_steps):
            b = x[torch.randint(len(x), (min(self.batch_size, len(x)),), generator=gen).to(x.device)]
            a = nearest(b, c)
            nb = torch.bincount(a, minlength=n_codes).float()
            sums = torch.zeros_like(c).index_add_(0, a, b)
            N.mul_(self.decay).add_((1 - self.decay) * nb)
            S.mul_(self.decay).add_((1 - self.decay) * sums)
            total = N.sum()
            Nh = (N + self.eps) / (total + n_codes * self.eps) * total
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
        self.codes_per_book_ = n_codes
        self.fitted_ = True
        return self


class ResidualVQ(Quantizer):
    """Residual VQ: stage s quantizes the residual x − Σ_{t<s} ĉ_t with its own k-means codebook; codes (n, S)."""

    def __init__(self, n_stages: int = 4, n_codes: int = 256, n_iter: int = 100, seed: int = 0, device: str = "auto"):
        self.n_stages, self.n_codes, self.n_iter, self.seed, self.device = n_stages, n_codes, n_iter, seed, device

    def fit(self, X: Any, y: Any = None) -> ResidualVQ:
        """Fit the stages greedily on successive residuals."""
        if self.n_stages < 1:
            raise ConfigError(f"n_stages must be >= 1, got {self.n_stages}")
        r = _x(self, X, self._dev(), reset=True)
        self.stages_: list[KMeansQuantizer] = []
        for s in range(self.n_stages):
            q = KMeansQuantizer(self.n_codes, n_iter=self.n_iter, seed=self.seed + s, device=self.device).fit(r)
            r = r - q.codebook_[nearest(r, q.codebook_)]
            self.stages_.append(q)
        self.codes_per_book_ = int(self.n_codes)
        self.fitted_ = True
        return self

    def encode(self, X: Any, n_stages: int | None = None) -> Any:
        """Greedy codes (n, S) using the first `n_stages` stages (all by default)."""
        self._check()
        r = _x(self, X, self.stages_[0].codebook_.device)
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

    Give either `n_subspaces` (default 8, or d when d < 8) and `bits_per_subspace`, or a total `bits` (then 8 bits
    per sub-space where possible)."""

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
            M_, nb = int(self.n_subspaces or min(8, d)), int(self.bits_per_subspace)
        if M_ < 1 or M_ > d:
            raise ConfigError(f"cannot split {d} dimensions into {M_} sub-spaces; use fewer bits or sub-spaces")
        return M_, nb

    def fit(self, X: Any, y: Any = None) -> ProductQuantizer:
        """Fit one k-means codebook of 2^b codes per sub-space (sub-spaces differ by at most one dimension)."""
        x = _x(self, X, self._dev(), reset=True)
        M_, nb = self._plan(x.shape[1])
        self.n_subspaces_, self.codes_per_book_ = M_, 2**nb
        self.bounds_ = np.linspace(0, x.shape[1], M_ + 1).round().astype(int)
        self.quantizers_ = [
            KMeansQuantizer(self.codes_per_book_, n_iter=self.n_iter, seed=self.seed + j, device=self.device)
            .fit(x[:, self.bounds_[j] : self.bounds_[j + 1]]) for j in range(M_)
        ]
        self.fitted_ = True
        return self

    @property
    def n_codes(self) -> int:
        """Codes per codebook (set by fit; not a parameter)."""
        self._check()
        return self.codes_per_book_

    def encode(self, X: Any) -> Any:
        """Codes (n, M), one per sub-space."""
        self._check()
        x = _x(self, X, self.quantizers_[0].codebook_.device)
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
        return self.n_subspaces_ * math.log2(self.codes_per_book_)


class ScalarQuantizer(Quantizer):
    """Per-dimension scalar codebooks (QLAE-style latent quantization, Hsu et al. 2023): dimension j has its own
    `n_levels` values, fit by 1-D Lloyd–Max (k-means) from an evenly spaced start; codes (n, d)."""

    def __init__(self, n_levels: int = 16, n_iter: int = 30, device: str = "auto"):
        self.n_levels, self.n_iter, self.device = n_levels, n_iter, device

    def fit(self, X: Any, y: Any = None) -> ScalarQuantizer:
        """Lloyd iterations per dimension, vectorised over dimensions; empty levels keep their value."""
        n_levels = int(self.n_levels)
        if n_levels < 2:
            raise ConfigError(f"n_levels must be >= 2, got {self.n_levels}")
        x = _x(self, X, self._dev(), reset=True)
        self.codes_per_book_ = n_levels
        lo, hi = x.min(0).values, x.max(0).values
        t = torch.linspace(0, 1, n_levels, device=x.device)
        v = lo[:, None] + (hi - lo)[:, None] * t[None]  # (d, L)
        for _ in range(int(self.n_iter)):
            a = (x[:, :, None] - v[None]).abs().argmin(2)  # (n, d)
            sums = torch.zeros_like(v).scatter_add_(1, a.T, x.T)
            cnt = torch.zeros_like(v).scatter_add_(1, a.T, torch.ones_like(x.T))
            v = torch.where(cnt > 0, sums / cnt.clamp_min(1), v)
            v = v.sort(1).values
        self.levels_ = v
        self.fitted_ = True
        return self

    @property
    def n_codes(self) -> int:
        """Codes per codebook (set by fit; not a parameter)."""
        self._check()
        return self.codes_per_book_

    def encode(self, X: Any) -> Any:
        """Nearest level index per dimension, (n, d)."""
        self._check()
        x = _x(self, X, self.levels_.device)
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
        return self.levels_.shape[0] * math.log2(self.codes_per_book_)


class BinaryQuantizer(Quantizer):
    """Binary sign codes: b_j = [x_j > μ_j]; decode μ_j ± s_j with s_j = E|x_j − μ_j| (the per-dimension L2-optimal
    magnitude for a fixed sign); d bits per vector."""

    n_codes = 2  # not a parameter: one bit per dimension

    def __init__(self, center: bool = True, device: str = "auto"):
        self.center, self.device = center, device

    def fit(self, X: Any, y: Any = None) -> BinaryQuantizer:
        """Per-dimension mean (or 0) and mean absolute deviation."""
        x = _x(self, X, self._dev(), reset=True)
        self.codes_per_book_ = 2
        self.mean_ = x.mean(0) if self.center else torch.zeros(x.shape[1], device=x.device)
        self.scale_ = (x - self.mean_).abs().mean(0)
        self.fitted_ = True
        return self

    def encode(self, X: Any) -> Any:
        """Bits (n, d) as int64 0/1."""
        self._check()
        return _out((_x(self, X, self.mean_.device) > self.mean_).long(), X)

    def decode(self, codes: Any) -> Any:
        """μ + (2b − 1)·s."""
        self._check()
        c = torch.as_tensor(np.asarray(codes.cpu() if isinstance(codes, Tensor) else codes)).to(self.mean_.device)
        return _out(self.mean_ + (2 * c.float() - 1) * self.scale_, codes)

    def bits_per_vector(self) -> float:
        """d."""
        self._check()
        return float(self.mean_.shape[0])


METHODS: Registry[Callable[..., Quantizer]] = Registry("quantizer")  # factory(bits, dim, seed, device)


def make_quantizer(method: str, *, bits: int | None = None, dim: int | None = None, seed: int = 0,
                   device: str = "auto") -> Quantizer:
    """Quantizer by registered name with a bit budget per vector (default 8): kmeans/vq (≤ 16 bits, one codebook),
    rvq (8-bit stages), pq (8 bits per sub-space), scalar (bits/d per dimension), binary (d bits; `bits` ignored)."""
    factory = METHODS.get(method)
    b = 8 if bits is None else int(bits)
    if b < 1:
        raise ConfigError(f"bits={bits} gives no codes; use bits >= 1 (e.g. 8)")
    return factory(b, dim, seed, device)


def _one_codebook(method: str, b: int) -> int:
    if b > 16:
        raise ConfigError(f"{method} uses one codebook of 2^bits codes; bits={b} is too many (use <= 16 or pq)")
    return 2**b


@METHODS.register("kmeans", paper="mini-batch k-means (Sculley 2010)")
def _kmeans(b: int, dim: int | None, seed: int, device: str) -> Quantizer:
    return KMeansQuantizer(n_codes=_one_codebook("kmeans", b), seed=seed, device=device)


@METHODS.register("vq", paper="EMA vector quantization (Razavi et al. 2019)")
def _vq(b: int, dim: int | None, seed: int, device: str) -> Quantizer:
    return VectorQuantizer(n_codes=_one_codebook("vq", b), seed=seed, device=device)


@METHODS.register("rvq", paper="residual vector quantization, 8-bit stages")
def _rvq(b: int, dim: int | None, seed: int, device: str) -> Quantizer:
    per = 8 if b >= 8 else b
    if b % per:
        raise ConfigError(f"rvq uses 8-bit stages; bits={b} is not a multiple of 8")
    return ResidualVQ(n_stages=b // per, n_codes=2**per, seed=seed, device=device)


@METHODS.register("pq", paper="product quantization (Jégou et al. 2011)")
def _pq(b: int, dim: int | None, seed: int, device: str) -> Quantizer:
    per = 8 if b % 8 == 0 else (4 if b % 4 == 0 else 1)
    return ProductQuantizer(bits=b, bits_per_subspace=per, seed=seed, device=device)


@METHODS.register("scalar", paper="per-dimension scalar codebooks (Hsu et al. 2023)")
def _scalar(b: int, dim: int | None, seed: int, device: str) -> Quantizer:
    if dim is None:
        raise ConfigError("scalar quantization needs the dimension to split the bit budget")
    return ScalarQuantizer(n_levels=2 ** max(1, b // dim), device=device)


@METHODS.register("binary", paper="sign codes around the mean (d bits)")
def _binary(b: int, dim: int | None, seed: int, device: str) -> Quantizer:
    return BinaryQuantizer(device=device)
