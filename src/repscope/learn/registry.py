"""`LEARNERS`: the registry of representation learners (`ae`, `vae`, `qlae`, `simclr`, `matryoshka`), filled on its
first access, whatever it is (the registry's `builtins` loader; the learner modules import torch, so not at import).

A learner is a `repscope.learn.base.Learner` subclass whose `KIND` is its registered name (checkpoints record `KIND`
and are loaded back through this registry). Metadata `cli_options` names the `repscope learn train` options, beyond
the common ones, that the class takes (e.g. vae: `beta`)."""

from __future__ import annotations

from typing import Any

from repscope.registry import Registry

DEFAULT_EPOCHS = 20  # the one default of the CLI, study steps and learner classes


def _fill() -> None:
    """Register the built-in learners (ae, vae, qlae, simclr, matryoshka); run once by `LEARNERS` on first access."""
    from repscope.learn.autoencoder import Autoencoder
    from repscope.learn.contrastive import SimCLR
    from repscope.learn.matryoshka import MatryoshkaHead
    from repscope.learn.qlae import QLAE
    from repscope.learn.vae import BetaVAE

    LEARNERS.register("ae", Autoencoder, aliases=("autoencoder",), cli_options=("mode",),
                      paper="plain/denoising/masked (SimMIM: Xie et al. 2022)")
    LEARNERS.register("vae", BetaVAE, aliases=("beta-vae", "beta_vae"), cli_options=("beta",),
                      paper="Higgins et al. 2017")
    LEARNERS.register("qlae", QLAE, aliases=("latent-quantization",), paper="Hsu et al. 2023")
    LEARNERS.register("simclr", SimCLR, aliases=("infonce", "contrastive"), paper="Chen et al. 2020")
    LEARNERS.register("matryoshka", MatryoshkaHead, aliases=("mrl", "matryoshka-head"),
                      paper="Kusupati et al. 2022; adapter: Yoon et al. 2024 (repscope.compress.adapter)")


LEARNERS: Registry[type[Any]] = Registry("learner", builtins=_fill)


def learner_class(name: str) -> type[Any]:
    """The learner class for a name or alias (one-line ConfigError listing the choices when unknown)."""
    return LEARNERS.get(name)


def learner_names() -> list[str]:
    """Registered learner names."""
    return LEARNERS.names()
