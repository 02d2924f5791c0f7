"""Sparse dictionary modules: ReLU-L1, TopK (+AuxK), BatchTopK, JumpReLU and matching-pursuit SAEs, and transcoders.

Every module maps raw inputs x (d_in) to latents z (n_latents) and decodes to d_out (= d_in for an SAE; another
layer's width for a transcoder, Dunefsky et al. 2024). Inputs are multiplied by a fixed `in_scale` (set at init so that
E‖x·s‖² = d_in) before encoding, and reconstructions are divided by `out_scale`, so hyper-parameters transfer between
layers of very different norm. Losses are computed in the scaled space.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from repscope.errors import ConfigError
from repscope.registry import Registry

ARCHS: Registry[type[DictionaryModule]] = Registry("SAE architecture")  # filled below the classes


class DictionaryModule(nn.Module):
    """Base SAE/transcoder: W_enc (d_in, m), b_enc (m), W_dec (m, d_out), b_dec (d_out), optional b_in (d_in)."""

    arch = "base"
    unit_norm_decoder = True
    has_encoder = True

    def __init__(self, d_in: int, n_latents: int, d_out: int | None = None, k: int | None = None,
                 l1_coeff: float = 1.0, aux_coeff: float = 1 / 32, aux_k: int | None = None,
                 l0_coeff: float = 1.0, bandwidth: float = 0.001, threshold_init: float = 0.001,
                 threshold_momentum: float = 0.99, encoder_init_scale: float = 0.1):
        super().__init__()
        if d_in < 1 or n_latents < 1:
            raise ConfigError(f"d_in and n_latents must be positive, got {d_in} and {n_latents}")
        self.d_in, self.n_latents = int(d_in), int(n_latents)
        self.d_out = int(d_out) if d_out is not None else int(d_in)
        self.transcoder = d_out is not None
        self.k = int(k) if k is not None else None
        self.l1_coeff, self.aux_coeff, self.l0_coeff = float(l1_coeff), float(aux_coeff), float(l0_coeff)
        self.aux_k = int(aux_k) if aux_k is not None else max(1, self.d_in // 2)
        self.bandwidth, self.threshold_init = float(bandwidth), float(threshold_init)
        self.threshold_momentum = float(threshold_momentum)
        self.encoder_init_scale = float(encoder_init_scale)
        m = self.n_latents
        if self.has_encoder:
            self.W_enc = nn.Parameter(torch.empty(self.d_in, m))
            self.b_enc = nn.Parameter(torch.zeros(m))
        self.W_dec = nn.Parameter(torch.empty(m, self.d_out))
        self.b_dec = nn.Parameter(torch.zeros(self.d_out))
        if self.transcoder:
            self.b_in = nn.Parameter(torch.zeros(self.d_in))
        self.register_buffer("in_scale", torch.tensor(1.0))
        self.register_buffer("out_scale", torch.tensor(1.0))
        self.reset_parameters()

    # ---- config --------------------------------------------------------------------------------------------------
    def config(self) -> dict[str, Any]:
        """JSON-serialisable constructor arguments (with `arch`), enough to rebuild the module."""
        return {"arch": self.arch, "d_in": self.d_in, "n_latents": self.n_latents,
                "d_out": self.d_out if self.transcoder else None, "k": self.k, "l1_coeff": self.l1_coeff,
                "aux_coeff": self.aux_coeff, "aux_k": self.aux_k, "l0_coeff": self.l0_coeff,
                "bandwidth": self.bandwidth, "threshold_init": self.threshold_init,
                "threshold_momentum": self.threshold_momentum, "encoder_init_scale": self.encoder_init_scale}

    def reset_parameters(self, generator: torch.Generator | None = None) -> None:
        """Random unit-norm decoder rows; encoder = `encoder_init_scale` × decoder transpose (Gao et al. 2024; the
        small scale, as in SAELens' 0.1 decoder-norm init, starts reconstructions near b_dec)."""
        with torch.no_grad():
            w = torch.randn(self.n_latents, self.d_out, generator=generator)
            self.W_dec.copy_(w / w.norm(dim=1, keepdim=True))
            if self.has_encoder:
                if self.transcoder:
                    e = torch.randn(self.d_in, self.n_latents, generator=generator)
                    self.W_enc.copy_(self.encoder_init_scale * e / e.norm(dim=0, keepdim=True))
                else:
                    self.W_enc.copy_(self.encoder_init_scale * self.W_dec.T)
                self.b_enc.zero_()

    # ---- core ----------------------------------------------------------------------------------------------------
    def center(self, xs: Tensor) -> Tensor:
        """Scaled input minus the input bias (b_dec for an SAE, b_in for a transcoder)."""
        return xs - (self.b_in if self.transcoder else self.b_dec)

    def preacts(self, xs: Tensor) -> Tensor:
        """Encoder pre-activations on scaled input: (x·s − b) W_enc + b_enc."""
        return self.center(xs) @ self.W_enc + self.b_enc

    def activate(self, pre: Tensor) -> Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def encode_scaled(self, xs: Tensor) -> tuple[Tensor, Tensor | None]:
        """Latents and pre-activations for scaled input."""
        pre = self.preacts(xs)
        return self.activate(pre), pre

    def decode_scaled(self, z: Tensor) -> Tensor:
        """Reconstruction in scaled space: z W_dec + b_dec."""
        return z @ self.W_dec + self.b_dec

    def encode(self, x: Tensor) -> Tensor:
        """Latent codes of raw inputs."""
        return self.encode_scaled(x * self.in_scale)[0]

    def decode(self, z: Tensor) -> Tensor:
        """Raw-unit reconstruction from latent codes."""
        return self.decode_scaled(z) / self.out_scale

    def forward(self, x: Tensor) -> Tensor:
        """Raw-unit reconstruction (or transcoder prediction) of raw inputs."""
        return self.decode(self.encode(x))

    # ---- training ------------------------------------------------------------------------------------------------
    def sparsity_loss(self, z: Tensor, pre: Tensor | None) -> Tensor:
        """Arch-specific sparsity penalty (zero for TopK-style archs)."""
        return z.new_zeros(())

    def aux_loss(self, pre: Tensor | None, err: Tensor, dead: Tensor | None) -> Tensor:
        """AuxK loss (Gao et al. 2024): α‖e − ê‖²/Var(e), ê decoded from the top-k_aux dead latents, e the residual."""
        if pre is None or dead is None or self.aux_coeff == 0 or not bool(dead.any()):
            return err.new_zeros(())
        k_aux = min(self.aux_k, int(dead.sum()))
        masked = pre.masked_fill(~dead, float("-inf"))
        vals, idx = masked.topk(k_aux, dim=-1)
        z_aux = torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))
        e_hat = z_aux @ self.W_dec
        denom = (err - err.mean(0)).pow(2).sum(-1).mean().clamp_min(1e-12)
        return self.aux_coeff * (e_hat - err).pow(2).sum(-1).mean() / denom

    def loss(self, x: Tensor, y: Tensor | None = None, dead: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        """Training loss on raw inputs: ‖ŷ − y‖² (summed over dims, mean over batch, scaled space) + penalties."""
        xs = x * self.in_scale
        ys = (y if y is not None else x) * self.out_scale
        z, pre = self.encode_scaled(xs)
        recon = self.decode_scaled(z)
        err = ys - recon
        mse = err.pow(2).sum(-1).mean()
        sparsity = self.sparsity_loss(z, pre)
        aux = self.aux_loss(pre, err.detach(), dead)
        total = mse + sparsity + aux
        return total, {"loss": total.detach(), "mse": mse.detach(), "aux": aux.detach(), "z": z.detach(),
                       "var": (ys - ys.mean(0)).pow(2).sum(-1).mean().detach()}

    def after_step(self, parts: dict[str, Tensor]) -> None:
        """Hook run after each optimizer step (e.g. BatchTopK threshold tracking)."""

    def after_training(self, batches: Any) -> None:
        """Hook run once training ends, given an iterable of (x, y) training batches (e.g. threshold calibration)."""

    @torch.no_grad()
    def normalize_decoder(self) -> None:
        """Rescale decoder rows to unit norm (archs with `unit_norm_decoder`)."""
        if self.unit_norm_decoder:
            self.W_dec.div_(self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12))

    @torch.no_grad()
    def remove_parallel_grad(self) -> None:
        """Project out the gradient component along each decoder row, keeping rows on the unit sphere to first order."""
        if self.unit_norm_decoder and self.W_dec.grad is not None:
            w = self.W_dec / self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)
            g = self.W_dec.grad
            g.sub_((g * w).sum(1, keepdim=True) * w)


class ReLUSAE(DictionaryModule):
    """ReLU SAE with decoder-norm-weighted L1: loss + λ Σ_i z_i ‖W_dec,i‖ (Anthropic, April 2024 update)."""

    arch = "relu"
    unit_norm_decoder = False

    def activate(self, pre: Tensor) -> Tensor:
        return torch.relu(pre)

    def sparsity_loss(self, z: Tensor, pre: Tensor | None) -> Tensor:
        return self.l1_coeff * (z * self.W_dec.norm(dim=1)).sum(-1).mean()


def topk_activation(pre: Tensor, k: int) -> Tensor:
    """TopK activation (Makhzani & Frey 2013; Gao et al. 2024): z = ReLU(TopK_k(pre)), other entries zero."""
    vals, idx = pre.topk(k, dim=-1)
    return torch.zeros_like(pre).scatter(-1, idx, torch.relu(vals))


class _SparseEncode(torch.autograd.Function):
    """Selected pre-activations v[b, j] = (x[b] − c)·W_enc[:, idx[b, j]] + b_enc[idx[b, j]] (values from a no-grad
    dense pass), with a sparse backward costing O(B·k·d) instead of the dense O(B·m·d). `c` is the input bias."""

    @staticmethod
    def forward(ctx, xc: Tensor, w_enc: Tensor, b_enc: Tensor, c: Tensor, idx: Tensor,  # type: ignore[override]
                vals: Tensor) -> Tensor:
        ctx.save_for_backward(xc, w_enc, idx)
        return vals.clone()

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        xc, w, idx = ctx.saved_tensors
        n, k = idx.shape
        m = w.shape[1]
        g = g.contiguous()
        cols = idx.reshape(-1)
        gb = torch.zeros(m, dtype=g.dtype, device=g.device).index_add_(0, cols, g.reshape(-1))
        gw = gc = None
        if ctx.needs_input_grad[1]:
            rows = torch.arange(n, device=idx.device).repeat_interleave(k)
            sp = torch.sparse_coo_tensor(torch.stack([cols, rows]), g.reshape(-1), (m, n), check_invariants=False)
            gw = torch.sparse.mm(sp, xc).T.contiguous()
        if ctx.needs_input_grad[3]:
            gc = -(w @ gb)
        return None, gw, gb if ctx.needs_input_grad[2] else None, gc, None, None


def sparse_decode(idx: Tensor, vals: Tensor, w_dec: Tensor) -> Tensor:
    """Σ_j vals[b, j]·W_dec[idx[b, j]] via embedding_bag: O(B·k·d) forward and backward."""
    return nn.functional.embedding_bag(idx, w_dec, per_sample_weights=vals, mode="sum")


class TopKSAE(DictionaryModule):
    """TopK SAE (Gao et al. 2024, 'Scaling and evaluating sparse autoencoders'), with the AuxK dead-latent loss.

    Training uses a sparse path: one no-grad dense encoder matmul to pick the top k, then gather/embedding-bag
    kernels, so the backward pass and the decoder cost O(B·k·d) rather than O(B·m·d)."""

    arch = "topk"
    sparse_training = True

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        if self.k is None or not 1 <= self.k <= self.n_latents:
            raise ConfigError(f"{self.arch} needs 1 <= k <= n_latents, got k={self.k}, n_latents={self.n_latents}")

    def activate(self, pre: Tensor) -> Tensor:
        return topk_activation(pre, self.k)

    def _select(self, xc: Tensor, pre: Tensor, k: int, mask: Tensor | None = None) -> tuple[Tensor, Tensor]:
        src = pre if mask is None else pre.masked_fill(~mask, float("-inf"))
        top, idx = src.topk(k, dim=-1)
        bias = self.b_in if self.transcoder else self.b_dec
        vals = torch.relu(_SparseEncode.apply(xc.detach(), self.W_enc, self.b_enc, bias, idx, top))
        return idx, vals

    def loss(self, x: Tensor, y: Tensor | None = None, dead: Tensor | None = None) -> tuple[Tensor, dict[str, Tensor]]:
        if not self.sparse_training:
            return super().loss(x, y, dead)
        xs = x * self.in_scale
        ys = (y if y is not None else x) * self.out_scale
        xc = self.center(xs)
        with torch.no_grad():
            pre = xc @ self.W_enc + self.b_enc
        idx, vals = self._select(xc, pre, self.k)
        recon = sparse_decode(idx, vals, self.W_dec) + self.b_dec
        err = ys - recon
        mse = err.pow(2).sum(-1).mean()
        aux = err.new_zeros(())
        if dead is not None and self.aux_coeff != 0 and bool(dead.any()):
            e = err.detach()
            aidx, avals = self._select(xc, pre, min(self.aux_k, int(dead.sum())), dead)
            e_hat = sparse_decode(aidx, avals, self.W_dec)
            denom = (e - e.mean(0)).pow(2).sum(-1).mean().clamp_min(1e-12)
            aux = self.aux_coeff * (e_hat - e).pow(2).sum(-1).mean() / denom
        total = mse + aux
        z = torch.zeros_like(pre).scatter(-1, idx, vals.detach())
        return total, {"loss": total.detach(), "mse": mse.detach(), "aux": aux.detach(), "z": z,
                       "var": (ys - ys.mean(0)).pow(2).sum(-1).mean().detach()}


class BatchTopKSAE(TopKSAE):
    """BatchTopK SAE (Bussmann et al. 2024): keep the top k·B activations over the whole batch; at inference use a
    global threshold θ, tracked during training as an EMA of the smallest kept activation."""

    arch = "batchtopk"
    sparse_training = False

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self.register_buffer("threshold", torch.tensor(-1.0))

    def batch_activate(self, pre: Tensor) -> Tensor:
        """Batch-level TopK: exactly k·B non-zero slots (minus any non-positive ones) across the batch."""
        flat = torch.relu(pre).flatten()
        kb = min(self.k * pre.shape[0], flat.numel())
        vals, idx = flat.topk(kb)
        return torch.zeros_like(flat).scatter(0, idx, vals).view_as(pre)

    def activate(self, pre: Tensor) -> Tensor:
        if self.training or float(self.threshold) < 0:
            return self.batch_activate(pre)
        return pre * (pre > self.threshold)

    @torch.no_grad()
    def after_step(self, parts: dict[str, Tensor]) -> None:
        z = parts["z"]
        pos = z[z > 0]
        if pos.numel() == 0:
            return
        lo = pos.min()
        if float(self.threshold) < 0:
            self.threshold.copy_(lo)
        else:
            self.threshold.mul_(self.threshold_momentum).add_((1 - self.threshold_momentum) * lo)

    @torch.no_grad()
    def after_training(self, batches: Any) -> None:
        """Set θ to the mean, over training batches, of the smallest activation BatchTopK keeps (Bussmann et al.),
        measured with the final weights so inference L0 ≈ k."""
        mins = []
        for x, _ in batches:
            z = self.batch_activate(self.preacts(x * self.in_scale))
            pos = z[z > 0]
            if pos.numel():
                mins.append(pos.min())
        if mins:
            self.threshold.copy_(torch.stack(mins).mean())


class _JumpReLUFn(torch.autograd.Function):
    """JumpReLU z·H(z−θ) with the rectangle-kernel straight-through gradient for θ (Rajamanoharan et al. 2024)."""

    @staticmethod
    def forward(ctx, pre: Tensor, theta: Tensor, bandwidth: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return pre * (pre > theta)

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        rect = ((pre - theta).abs() < eps / 2).to(g.dtype)
        g_theta = (-(theta / eps) * rect * g).sum(0)
        return g * (pre > theta), g_theta, None


class _StepFn(torch.autograd.Function):
    """Heaviside H(z−θ) with straight-through gradient −(1/ε)K((z−θ)/ε) for θ."""

    @staticmethod
    def forward(ctx, pre: Tensor, theta: Tensor, bandwidth: float) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(pre, theta)
        ctx.bandwidth = bandwidth
        return (pre > theta).to(pre.dtype)

    @staticmethod
    def backward(ctx, g: Tensor):  # type: ignore[override]
        pre, theta = ctx.saved_tensors
        eps = ctx.bandwidth
        rect = ((pre - theta).abs() < eps / 2).to(g.dtype)
        return torch.zeros_like(pre), (-(1.0 / eps) * rect * g).sum(0), None


class JumpReLUSAE(DictionaryModule):
    """JumpReLU SAE (Rajamanoharan et al. 2024): z = pre·H(pre − θ), loss + λ‖z‖₀ via straight-through θ grads."""

    arch = "jumprelu"

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        self.log_threshold = nn.Parameter(torch.full((self.n_latents,), math.log(self.threshold_init)))

    def activate(self, pre: Tensor) -> Tensor:
        return _JumpReLUFn.apply(pre, self.log_threshold.exp(), self.bandwidth)

    def sparsity_loss(self, z: Tensor, pre: Tensor | None) -> Tensor:
        assert pre is not None
        return self.l0_coeff * _StepFn.apply(pre, self.log_threshold.exp(), self.bandwidth).sum(-1).mean()


class MatchingPursuitSAE(DictionaryModule):
    """Matching-pursuit SAE (Costa et al. 2025, 'From flat to hierarchical'): k unrolled greedy steps with the unit-norm
    decoder as dictionary: j = argmax_i ⟨r, d_i⟩, s = max(⟨r, d_j⟩, 0), z_j += s, r ← r − s d_j."""

    arch = "mp"
    has_encoder = False

    def __init__(self, *args: Any, **kw: Any):
        super().__init__(*args, **kw)
        if self.transcoder:
            raise ConfigError("the matching-pursuit SAE decodes its own input; use another arch for a transcoder")
        if self.k is None or self.k < 1:
            raise ConfigError(f"mp needs k >= 1 pursuit steps, got k={self.k}")

    def dictionary(self) -> Tensor:
        """Decoder rows normalised to unit norm (the atoms)."""
        return self.W_dec / self.W_dec.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def pursuit(self, xs: Tensor, return_norms: bool = False) -> tuple[Tensor, list[Tensor]]:
        """Run k pursuit steps on scaled input; returns codes and (optionally) residual norms after each step."""
        atoms = self.dictionary()
        r = xs - self.b_dec
        z = xs.new_zeros(xs.shape[0], self.n_latents)
        norms = [r.norm(dim=-1)] if return_norms else []
        for _ in range(self.k):
            s, j = (r @ atoms.T).max(dim=-1)
            s = torch.relu(s)
            z = z.scatter_add(-1, j[:, None], s[:, None])
            r = r - s[:, None] * atoms[j]
            if return_norms:
                norms.append(r.norm(dim=-1))
        return z, norms

    def encode_scaled(self, xs: Tensor) -> tuple[Tensor, Tensor | None]:
        return self.pursuit(xs)[0], None

    def decode_scaled(self, z: Tensor) -> Tensor:
        return z @ self.dictionary() + self.b_dec

    def residual_norms(self, x: Tensor) -> Tensor:
        """(k+1, n) residual norms ‖r_t‖ in scaled space for raw inputs x, from t = 0 to k."""
        with torch.no_grad():
            return torch.stack(self.pursuit(x * self.in_scale, return_norms=True)[1])


# metadata: needs_k (the arch takes --k), transcoder (the arch can predict another layer)
ARCHS.register("relu", ReLUSAE, needs_k=False, transcoder=True,
               paper="Bricken et al. 2023; decoder-norm L1 (Anthropic 2024)")
ARCHS.register("topk", TopKSAE, needs_k=True, transcoder=True, paper="Gao et al. 2024")
ARCHS.register("batchtopk", BatchTopKSAE, needs_k=True, transcoder=True, paper="Bussmann et al. 2024")
ARCHS.register("jumprelu", JumpReLUSAE, needs_k=False, transcoder=True, paper="Rajamanoharan et al. 2024")
ARCHS.register("mp", MatchingPursuitSAE, needs_k=True, transcoder=False, paper="Costa et al. 2025")


def build_module(arch: str, **cfg: Any) -> DictionaryModule:
    """Construct a dictionary module by registered arch name (relu, topk, batchtopk, jumprelu, mp)."""
    cls = ARCHS.get(arch)
    return cls(**{k: v for k, v in cfg.items() if k != "arch"})
