"""repscope.learn: small representation learners whose output goes straight into stores, metrics and the report.

Learners (sklearn-like `fit(X)` / `transform(X)` on arrays, images or a store layer; safetensors checkpoints that
resume exactly; usable as a `repscope extract` model source): `Autoencoder` (plain, denoising, masked), `BetaVAE`,
`QLAE` and `SimCLR`; `MatryoshkaHead` fits the compression package's Matryoshka adapter on frozen features. Look them
up by name in `LEARNERS` (`learner_class("qlae")`).

Names are imported on first use (PEP 562, `repscope.lazy.attach`), so importing the package stays cheap.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repscope.learn.augment import (
        color_jitter,
        gaussian_noise,
        image_view,
        random_flip,
        random_grayscale,
        random_resized_crop,
        vector_view,
    )
    from repscope.learn.autoencoder import Autoencoder, random_mask
    from repscope.learn.base import FORMAT, Learner, as_array, load_learner, read_metadata
    from repscope.learn.contrastive import SimCLR, nt_xent
    from repscope.learn.matryoshka import MatryoshkaHead
    from repscope.learn.qlae import QLAE, ScalarCodebooks
    from repscope.learn.registry import LEARNERS, learner_class, learner_names
    from repscope.learn.source import learner_adapter
    from repscope.learn.vae import BetaVAE
else:
    from repscope.lazy import attach

    __getattr__, __dir__ = attach(__name__)

__all__ = [
    "Autoencoder", "BetaVAE", "FORMAT", "LEARNERS", "Learner", "MatryoshkaHead", "QLAE", "ScalarCodebooks", "SimCLR",
    "as_array", "color_jitter", "gaussian_noise", "image_view", "learner_adapter", "learner_class", "learner_names",
    "load_learner", "nt_xent", "random_flip", "random_grayscale", "random_mask", "random_resized_crop", "read_metadata",
    "vector_view",
]
