"""`LEARNERS`: the registry of representation learners (`ae`, `vae`, `qlae`, `simclr`, `matryoshka`), filled on first
lookup."""

from __future__ import annotations

from typing import Any

from repscope.registry import Registry

LEARNERS: Registry[type[Any]] = Registry("learner")
DEFAULT_EPOCHS = 20  # the one default of the CLI, study steps and learner classes
_BUILTINS = {"loaded": False}  # the built-ins load once, whatever a user registered before the first lookup


def _fill() -> None:
    if _BUILTINS["loaded"]:
        return
    _BUILTINS["loaded"] = True
    from repscope.learn.autoencoder import Autoencoder
    from repscope.learn.contrastive import SimCLR
    from repscope.learn.matryoshka import MatryoshkaHead
    from repscope.learn.qlae import QLAE
    from repscope.learn.vae import BetaVAE

    LEARNERS.register("ae", Autoencoder, aliases=("autoencoder",),
                      paper="plain/denoising/masked (SimMIM: Xie et al. 2022)")
    LEARNERS.register("vae", BetaVAE, aliases=("beta-vae", "beta_vae"), paper="Higgins et al. 2017")
    LEARNERS.register("qlae", QLAE, aliases=("latent-quantization",), paper="Hsu et al. 2023")
    LEARNERS.register("simclr", SimCLR, aliases=("infonce", "contrastive"), paper="Chen et al. 2020")
    LEARNERS.register("matryoshka", MatryoshkaHead, aliases=("mrl", "matryoshka-head"),
                      paper="Kusupati et al. 2022; adapter: Yoon et al. 2024 (repscope.compress.adapter)")


def learner_class(name: str) -> type[Any]:
    """The learner class for a name or alias (one-line ConfigError listing the choices when unknown)."""
    _fill()
    return LEARNERS.get(name)


def learner_names() -> list[str]:
    """Registered learner names."""
    _fill()
    return LEARNERS.names()
