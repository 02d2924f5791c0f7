"""β-VAE (Higgins et al. 2017): L = E_q[−log p(x|z)] + β·KL(q(z|x) ‖ N(0, I)), Gaussian q with the
reparameterisation trick; the representation is the posterior mean μ(x)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from repscope.errors import ConfigError
from repscope.learn.base import Learner, build_decoder, build_encoder, reconstruction_loss


class BetaVAE(Learner):
    """β-VAE with an MLP (vectors) or small ConvNet (images) encoder/decoder."""

    KIND = "vae"

    def __init__(self, *, beta: float = 4.0, **kw):
        super().__init__(**kw)
        if beta < 0:
            raise ConfigError(f"β-VAE needs beta ≥ 0, got {beta}")
        self.beta = beta

    def hparams(self) -> dict:
        return {**super().hparams(), "beta": self.beta}

    def build(self) -> None:
        kind, shape = self.input_kind_, self.input_shape_
        self.encoder = build_encoder(kind, shape, 2 * self.latents, self.hidden)
        self.latent = nn.Identity()
        self.decoder = build_decoder(kind, shape, self.latents, self.hidden, self.encoder)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """Mean and log-variance of q(z|x)."""
        h = self.encoder(x)
        return h[:, : self.latents], h[:, self.latents:].clamp(-20, 10)

    def encode(self, x: Tensor) -> Tensor:
        return self.latent(self.posterior(x)[0])

    def loss(self, x: Tensor, g: torch.Generator) -> Tensor:
        """Negative ELBO with KL weight β (per sample, batch mean)."""
        mu, logvar = self.posterior(x)
        z = mu + torch.exp(0.5 * logvar) * torch.randn(mu.shape, generator=g).to(x.device)
        rec = reconstruction_loss(self.decoder(z), x, self.input_kind_)
        kl = 0.5 * (mu.pow(2) + logvar.exp() - 1 - logvar).sum(1).mean()
        return rec + self.beta * kl
