"""QLAE (Hsu et al. 2023, "Disentanglement via Latent Quantization"): each latent z_j snaps to the nearest of its own
scalar codebook V_j; L = ℓ(dec(ẑ), x) + λ_q‖sg(z) − ẑ‖² + λ_c‖z − sg(ẑ)‖² with straight-through gradients
ẑ = z + sg(q(z) − z), and AdamW weight decay (defaults: λ_q = λ_c = 0.01, weight decay 0.1, 10 values per latent).

Every term is a mean over its elements (pixels/features for ℓ, latents for the two quantisation terms), as in the
authors' reference code; with ℓ summed over 4096 pixels the λ = 0.01 terms cannot hold z inside the codebook range and
the latents run off to one constant code.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from repscope.errors import ConfigError
from repscope.learn.base import Learner, build_decoder, build_encoder, reconstruction_loss


class ScalarCodebooks(nn.Module):
    """Per-latent scalar codebooks `values` (latents, n_values), initialised evenly on [−1, 1]."""

    def __init__(self, latents: int, n_values: int):
        super().__init__()
        self.values = nn.Parameter(torch.linspace(-1.0, 1.0, n_values).repeat(latents, 1))

    def quantize(self, z: Tensor) -> tuple[Tensor, Tensor]:
        """(nearest codebook value per latent, its index)."""
        idx = (z.unsqueeze(-1) - self.values.unsqueeze(0)).abs().argmin(-1)
        q = torch.gather(self.values.unsqueeze(0).expand(len(z), -1, -1), 2, idx.unsqueeze(-1)).squeeze(-1)
        return q, idx

    def forward(self, z: Tensor) -> Tensor:
        """Straight-through quantisation: forward value q(z), gradient of identity w.r.t. z."""
        q, _ = self.quantize(z)
        return q + (z - z.detach())  # exact codebook values forward, identity gradient


class QLAE(Learner):
    """Quantised-latent autoencoder; the representation is the quantised latent ẑ (layer `latent`)."""

    KIND = "qlae"

    def __init__(self, *, n_values: int = 10, quantize_weight: float = 0.01, commit_weight: float = 0.01,
                 weight_decay: float = 0.1, **kw):
        super().__init__(weight_decay=weight_decay, **kw)
        if n_values < 2 or quantize_weight < 0 or commit_weight < 0:
            raise ConfigError(f"QLAE needs n_values ≥ 2 and loss weights ≥ 0 (got {n_values}, {quantize_weight}, "
                              f"{commit_weight})")
        self.n_values, self.quantize_weight, self.commit_weight = n_values, quantize_weight, commit_weight

    def hparams(self) -> dict:
        return {**super().hparams(), "n_values": self.n_values, "quantize_weight": self.quantize_weight,
                "commit_weight": self.commit_weight}

    def build(self) -> None:
        kind, shape = self.input_kind_, self.input_shape_
        self.encoder = build_encoder(kind, shape, self.latents, self.hidden)
        self.codebooks = ScalarCodebooks(self.latents, self.n_values)
        self.latent = nn.Identity()
        self.decoder = build_decoder(kind, shape, self.latents, self.hidden, self.encoder)

    def optimizer(self) -> torch.optim.Optimizer:
        """AdamW; weight decay on the encoder/decoder weights, none on the codebook values."""
        books = [self.codebooks.values]
        rest = [p for p in self.parameters() if p is not self.codebooks.values]
        return torch.optim.AdamW([{"params": rest, "weight_decay": self.weight_decay},
                                  {"params": books, "weight_decay": 0.0}], lr=self.lr)

    def encode(self, x: Tensor) -> Tensor:
        return self.latent(self.codebooks(self.encoder(x)))

    def loss(self, x: Tensor, g: torch.Generator) -> Tensor:
        """Reconstruction + quantisation + commitment losses."""
        z = self.encoder(x)
        q, _ = self.codebooks.quantize(z)
        zq = q.detach() + (z - z.detach())
        rec = reconstruction_loss(self.decoder(zq), x, self.input_kind_) / x[0].numel()
        quant = (z.detach() - q).pow(2).mean()
        commit = (z - q.detach()).pow(2).mean()
        return rec + self.quantize_weight * quant + self.commit_weight * commit
