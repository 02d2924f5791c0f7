"""QLAE (Hsu et al. 2023, "Disentanglement via Latent Quantization", NeurIPS): each latent z_j snaps to the nearest of
its own learnable scalar codebook V_j; L = ℓ(dec(ẑ), x) + λ_q‖sg(z) − q(z)‖² + λ_c‖z − sg(q(z))‖² with the
straight-through code ẑ = z + sg(q(z) − z), trained with AdamW and an unusually high weight decay.

Where each value comes from (paper = Hsu et al. 2023; code = the authors' reference implementation,
github.com/kylehkhsu/latent_quantization: configs/model_partial/quantized_ae.yaml, configs/train_ae.yaml,
disentangle/latents/quantized.py, disentangle/models/{ae,quantized_ae}.py, disentangle/losses/reconstruction.py):

- per-latent scalar codebooks, nearest-value quantisation, straight-through gradient: paper §3 and code
  (`quantized_sg = x + stop_gradient(quantized − x)`); the decoder's gradient reaches the encoder, not the codebook;
- λ_q = λ_c = 0.01 (quantisation and commitment weights), 10 values per latent, reconstruction weight 1: code
  (quantized_ae.yaml `lambdas`, `num_values_per_latent: 10`);
- codebook values initialised evenly spaced on [−0.5, 0.5] (`jnp.linspace(-0.5, 0.5, n)`) and optimised: code
  (quantized.py; this module used [−1, 1] before);
- AdamW, weight decay 0.1 on the weights only — biases and the codebooks get plain Adam — and element-wise gradient
  clipping at 1 on the decayed weights (`optax.chain(optax.clip(1.), optax.adamw(lr, weight_decay))`): code (ae.py
  `construct_optimizer`/`param_labels`, train_ae.yaml `optim.clip: 1.`); before this, biases were decayed too and
  nothing was clipped;
- learning rate 1e-3, batch size 128, number of latents = twice the number of sources (10 for the 5 shapes factors):
  code (train_ae.yaml) — repscope's `Learner` defaults lr 1e-3, batch 128, latents 10;
- every term is a mean over its elements (BCE over pixels, squared errors over latents), then over the batch: code
  (`jnp.mean` in reconstruction.py and quantized_ae.py). With ℓ summed over 4096 pixels instead, the λ = 0.01 terms
  cannot hold z near the codebook and the latents run off to one constant code.

Not verified against the paper's own text (only the reference code was read): whether the paper states the [−0.5, 0.5]
init, the clipping and the bias exemption, and the step budget (code: 2·10⁵ steps; repscope trains far fewer).
Not taken from the paper: the data-dependent init of the encoder's last layer (`Learner.data_init`, std `INIT_STD`
= 0.25 here so ±2σ spans the codebook range) and the encoder/decoder architectures (repscope's small MLP/ConvNet).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from repscope.errors import ConfigError
from repscope.learn.base import Learner, build_decoder, build_encoder, reconstruction_loss

CODEBOOK_RANGE = 0.5  # initial values evenly spaced on [−0.5, 0.5] (reference code, quantized.py)
GRAD_CLIP = 1.0  # element-wise clip of the decayed weights' gradients (reference code, train_ae.yaml optim.clip)


class ScalarCodebooks(nn.Module):
    """Per-latent scalar codebooks `values` (latents, n_values), initialised evenly on [−0.5, 0.5]."""

    def __init__(self, latents: int, n_values: int):
        super().__init__()
        self.values = nn.Parameter(torch.linspace(-CODEBOOK_RANGE, CODEBOOK_RANGE, n_values).repeat(latents, 1))

    def quantize(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(nearest codebook value per latent, its index)."""
        idx = (z.unsqueeze(-1) - self.values.unsqueeze(0)).abs().argmin(-1)
        q = torch.gather(self.values.unsqueeze(0).expand(len(z), -1, -1), 2, idx.unsqueeze(-1)).squeeze(-1)
        return q, idx

    def forward(self, z: Tensor) -> Tensor:
        """Straight-through quantisation: forward value q(z), gradient of identity w.r.t. z (none to the values)."""
        q, _ = self.quantize(z)
        return q.detach() + (z - z.detach())


class QLAE(Learner):
    """Quantised-latent autoencoder; the representation is the quantised latent ẑ (layer `latent`)."""

    KIND = "qlae"
    INIT_STD = 0.25  # encoder outputs start with ±2σ = the codebook range [−0.5, 0.5]

    def __init__(self, *, n_values: int = 10, quantize_weight: float = 0.01, commit_weight: float = 0.01,
                 weight_decay: float = 0.1, grad_clip: float = GRAD_CLIP, **kw):
        super().__init__(weight_decay=weight_decay, **kw)
        if n_values < 2 or quantize_weight < 0 or commit_weight < 0 or grad_clip <= 0:
            raise ConfigError(f"QLAE needs n_values ≥ 2, loss weights ≥ 0 and grad_clip > 0 (got {n_values}, "
                              f"{quantize_weight}, {commit_weight}, {grad_clip})")
        self.n_values, self.quantize_weight, self.commit_weight = n_values, quantize_weight, commit_weight
        self.grad_clip = grad_clip

    def hparams(self) -> dict:
        return {**super().hparams(), "n_values": self.n_values, "quantize_weight": self.quantize_weight,
                "commit_weight": self.commit_weight, "grad_clip": self.grad_clip}

    def build(self) -> None:
        kind, shape = self.input_kind_, self.input_shape_
        self.encoder = build_encoder(kind, shape, self.latents, self.hidden)
        self.codebooks = ScalarCodebooks(self.latents, self.n_values)
        self.latent = nn.Identity()
        self.decoder = build_decoder(kind, shape, self.latents, self.hidden, self.encoder)

    @staticmethod
    def _decayed(name: str) -> bool:
        return not name.endswith("bias") and not name.startswith("codebooks.")

    def decayed_parameters(self) -> list[nn.Parameter]:
        """The encoder/decoder weights (not biases, not the codebooks): weight decay and gradient clipping apply."""
        return [p for name, p in self.named_parameters() if self._decayed(name)]

    def optimizer(self) -> torch.optim.Optimizer:
        """AdamW: weight decay on the weights; biases and codebook values undecayed (reference code's param_labels)."""
        rest = [p for name, p in self.named_parameters() if not self._decayed(name)]
        return torch.optim.AdamW([{"params": self.decayed_parameters(), "weight_decay": self.weight_decay},
                                  {"params": rest, "weight_decay": 0.0}], lr=self.lr)

    def before_step(self) -> None:
        """Clip each gradient entry of the decayed weights to [−grad_clip, grad_clip] (optax.clip before adamw)."""
        torch.nn.utils.clip_grad_value_(self.decayed_parameters(), self.grad_clip)

    def encode(self, x: Tensor) -> Tensor:
        return self.latent(self.codebooks(self.encoder(x)))

    def loss(self, x: Tensor, g: torch.Generator) -> Tensor:
        """Reconstruction (mean per element) + λ_q·quantisation + λ_c·commitment (means over latents)."""
        z = self.encoder(x)
        q, _ = self.codebooks.quantize(z)
        zq = q.detach() + (z - z.detach())
        rec = reconstruction_loss(self.decoder(zq), x, self.input_kind_) / x[0].numel()
        quant = (z.detach() - q).pow(2).mean()
        commit = (z - q.detach()).pow(2).mean()
        return rec + self.quantize_weight * quant + self.commit_weight * commit
