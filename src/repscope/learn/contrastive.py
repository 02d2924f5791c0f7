"""SimCLR (Chen et al. 2020): two augmented views per sample, encoder f then projection head g, and the NT-Xent /
InfoNCE loss L = −(1/2n) Σᵢ log exp(sim(zᵢ, zᵢ⁺)/τ) / Σ_{k≠i} exp(sim(zᵢ, z_k)/τ) over the 2n views (cosine sim)."""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from repscope.errors import ConfigError
from repscope.learn.augment import image_view, vector_view
from repscope.learn.base import Learner, build_encoder, mlp


def nt_xent(z1: Tensor, z2: Tensor, temperature: float = 0.5) -> Tensor:
    """NT-Xent loss of paired projections z1[i] ↔ z2[i] (mean over the 2n anchors)."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = len(z1)
    sim = z @ z.T / temperature
    sim = sim.masked_fill(torch.eye(2 * n, dtype=torch.bool, device=z.device), float("-inf"))
    target = torch.cat([torch.arange(n, 2 * n), torch.arange(0, n)]).to(z.device)
    return F.cross_entropy(sim, target)


class SimCLR(Learner):
    """Contrastive learner; the representation is the encoder output (layer `latent`), the head is `head`."""

    KIND = "simclr"
    DATASETS = ("image",)
    DATASETS_WHY = ("its views (crops, flips, colour jitter) are defined for images, and feature dropout on a few "
                    "tabular columns teaches no invariance; use ae, vae or qlae on tabular data")

    def __init__(self, *, latents: int = 64, proj_dim: int = 32, temperature: float = 0.5, noise: float = 0.05,
                 drop: float = 0.2, min_crop: float = 0.2, color: float = 0.5, **kw):
        super().__init__(latents=latents, **kw)
        if temperature <= 0 or proj_dim < 1 or not 0 <= drop < 1 or not 0 < min_crop <= 1 or not 0 <= color <= 1:
            raise ConfigError(f"SimCLR needs temperature > 0, proj_dim ≥ 1, 0 ≤ drop < 1, 0 < min_crop ≤ 1 and "
                              f"0 ≤ color ≤ 1 (got {temperature}, {proj_dim}, {drop}, {min_crop}, {color})")
        self.proj_dim, self.temperature, self.noise, self.drop = proj_dim, temperature, noise, drop
        self.min_crop, self.color = min_crop, color

    def hparams(self) -> dict:
        return {**super().hparams(), "proj_dim": self.proj_dim, "temperature": self.temperature,
                "noise": self.noise, "drop": self.drop, "min_crop": self.min_crop, "color": self.color}

    def build(self) -> None:
        self.encoder = build_encoder(self.input_kind_, self.input_shape_, self.latents, self.hidden)
        self.latent = nn.Identity()
        self.head = nn.Sequential(nn.ReLU(), mlp([self.latents, self.hidden, self.proj_dim]))

    def encode(self, x: Tensor) -> Tensor:
        return self.latent(self.encoder(x))

    def forward(self, x: Tensor) -> Tensor:
        """Representation; the projection head runs too, so `extract` can hook `head`."""
        h = self.encode(x)
        self.head(h)
        return h

    def view(self, x: Tensor, g: torch.Generator) -> Tensor:
        """One random view of a batch."""
        if self.input_kind_ == "image":
            return image_view(x, g, noise=self.noise, scale=(self.min_crop, 1.0), color=self.color)
        return vector_view(x, g, drop=self.drop, noise=self.noise)

    def loss(self, x: Tensor, g: torch.Generator) -> Tensor:
        """NT-Xent between two views."""
        z1 = self.head(self.encode(self.view(x, g)))
        z2 = self.head(self.encode(self.view(x, g)))
        return nt_xent(z1, z2, self.temperature)
