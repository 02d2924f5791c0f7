"""Autoencoders: plain, denoising and masked (SimMIM: Xie et al. 2022, loss only on the masked part).

Plain: L = ℓ(dec(enc(x)), x). Denoising: L = ℓ(dec(enc(x + σε)), x). Masked (SimMIM): exactly round(r·N) of the N
patch×patch squares of each image (or of the d features of a vector) are replaced by a learnable mask token, and
L = ℓ summed over the masked entries only, divided by r; SimMIM's defaults are r = 0.6 and a learnable token (it
puts the token in patch-embedding space; with a ConvNet encoder it is one value per input channel here). ℓ is the
per-sample summed Bernoulli log-loss for images in [0, 1] and the squared error for vectors, as for the plain
autoencoder (SimMIM uses ℓ1 on normalised pixels), so plain vs masked differ only in the masking. The representation
is the encoder output of the unmasked input.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from repscope.errors import ConfigError, check_choice
from repscope.learn.base import Learner, build_decoder, build_encoder, reconstruction_loss

MODES = ("plain", "denoising", "masked")


def _exact(n: int, k: int, ratio: float, g: torch.Generator) -> Tensor:
    """(n, k) 0/1 rows with exactly round(ratio·k) ones (at least 1, at most k − 1) at random places."""
    count = min(max(round(ratio * k), 1), k - 1) if k > 1 else 1
    rank = torch.rand((n, k), generator=g).argsort(1).argsort(1)  # a random permutation's ranks per row
    return (rank < count).float()


def random_mask(x: Tensor, ratio: float, g: torch.Generator, *, patch: int = 4) -> Tensor:
    """1 where an entry is masked (SimMIM's mask generator): exactly round(ratio·N) of the N patch×patch squares of
    each image (n, C, H, W), or of the d features of each vector (n, d), chosen at random."""
    if x.ndim == 2:
        return _exact(len(x), x.shape[1], ratio, g).to(x.dtype).to(x.device)
    n, _, h, w = x.shape
    gh, gw = -(-h // patch), -(-w // patch)
    m = _exact(n, gh * gw, ratio, g).to(x.dtype).view(n, 1, gh, gw)
    m = m.repeat_interleave(patch, 2).repeat_interleave(patch, 3)[:, :, :h, :w]
    return m.expand_as(x).contiguous().to(x.device)


class Autoencoder(Learner):
    """Deterministic autoencoder (`mode` plain, denoising or masked): x → latent → reconstruction."""

    KIND = "ae"

    def __init__(self, *, mode: str = "plain", noise: float = 0.3, mask_ratio: float = 0.6, patch: int = 4,
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
        if self.mode == "masked":  # SimMIM's learnable mask token: one value per channel (images) or feature (vectors)
            self.mask_token = nn.Parameter(torch.zeros(shape[0]))

    def masked_input(self, x: Tensor, m: Tensor) -> Tensor:
        """x with the masked entries (m = 1) replaced by the mask token."""
        token = self.mask_token.view(1, -1, *([1] * (x.ndim - 2)))
        return x * (1 - m) + token * m

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
        out = self.decoder(self.encode(self.masked_input(x, m)))
        return reconstruction_loss(out, x, self.input_kind_, weight=m) / self.mask_ratio
