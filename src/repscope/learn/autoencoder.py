"""Autoencoders: plain, denoising and masked (SimMIM: Xie et al. 2022, loss only on the masked part).

Plain: L = ℓ(dec(enc(x)), x). Denoising: L = ℓ(dec(enc(x + σε)), x). Masked: inputs with random patches (images) or
features (vectors) zeroed, L = ℓ over the masked entries only. ℓ is the per-sample summed Bernoulli log-loss for
images in [0, 1] and the squared error for vectors.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from repscope.errors import ConfigError, check_choice
from repscope.learn.base import Learner, build_decoder, build_encoder, reconstruction_loss

MODES = ("plain", "denoising", "masked")


def random_mask(x: Tensor, ratio: float, g: torch.Generator, *, patch: int = 4) -> Tensor:
    """1 where an entry is masked: random patch×patch squares for images (n, C, H, W), random features for (n, d)."""
    if x.ndim == 2:
        return (torch.rand(x.shape, generator=g) < ratio).to(x.dtype).to(x.device)
    n, _, h, w = x.shape
    gh, gw = -(-h // patch), -(-w // patch)
    m = (torch.rand((n, 1, gh, gw), generator=g) < ratio).to(x.dtype)
    m = m.repeat_interleave(patch, 2).repeat_interleave(patch, 3)[:, :, :h, :w]
    return m.expand_as(x).contiguous().to(x.device)


class Autoencoder(Learner):
    """Deterministic autoencoder (`mode` plain, denoising or masked): x → latent → reconstruction."""

    KIND = "ae"

    def __init__(self, *, mode: str = "plain", noise: float = 0.3, mask_ratio: float = 0.5, patch: int = 4,
                 **kw):
        super().__init__(**kw)
        check_choice(mode, MODES, "autoencoder mode")
        if not 0 < mask_ratio < 1 or noise < 0 or patch < 1:
            raise ConfigError(f"autoencoder needs 0 < mask_ratio < 1, noise ≥ 0 and patch ≥ 1 (got {mask_ratio}, "
                              f"{noise}, {patch})")
        self.mode, self.noise, self.mask_ratio, self.patch = mode, noise, mask_ratio, patch

    def hparams(self) -> dict:
        return {**super().hparams(), "mode": self.mode, "noise": self.noise, "mask_ratio": self.mask_ratio,
                "patch": self.patch}

    def build(self) -> None:
        kind, shape = self.input_kind_, self.input_shape_
        self.encoder = build_encoder(kind, shape, self.latents, self.hidden)
        self.latent = nn.Identity()
        self.decoder = build_decoder(kind, shape, self.latents, self.hidden, self.encoder)

    def encode(self, x: Tensor) -> Tensor:
        return self.latent(self.encoder(x))

    def loss(self, x: Tensor, g: torch.Generator) -> Tensor:
        """Reconstruction loss of the chosen mode."""
        if self.mode == "plain":
            return reconstruction_loss(self.decoder(self.encode(x)), x, self.input_kind_)
        if self.mode == "denoising":
            noisy = x + self.noise * torch.randn(x.shape, generator=g).to(x.device)
            return reconstruction_loss(self.decoder(self.encode(noisy)), x, self.input_kind_)
        m = random_mask(x, self.mask_ratio, g, patch=self.patch)
        out = self.decoder(self.encode(x * (1 - m)))
        return reconstruction_loss(out, x, self.input_kind_, weight=m) / self.mask_ratio
