"""repscope.learn: small representation learners whose output goes straight into stores, metrics and the report.

Learners (sklearn-like `fit(X)` / `transform(X)` on arrays, images or a store layer; safetensors checkpoints that
resume exactly; usable as a `repscope extract` model source): `Autoencoder` (plain, denoising, masked), `BetaVAE`,
`QLAE` and `SimCLR`; `MatryoshkaHead` fits the compression package's Matryoshka adapter on frozen features. Look them
up by name in `LEARNERS` (`learner_class("qlae")`).

Names are imported on first use (`repscope.lazy`), so importing the package stays cheap.
"""

from repscope.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "Autoencoder": "autoencoder", "BetaVAE": "vae", "FORMAT": "base", "LEARNERS": "registry", "Learner": "base",
    "MatryoshkaHead": "matryoshka", "QLAE": "qlae", "ScalarCodebooks": "qlae", "SimCLR": "contrastive",
    "as_array": "base", "color_jitter": "augment", "gaussian_noise": "augment", "image_view": "augment",
    "learner_adapter": "source", "learner_class": "registry", "learner_names": "registry", "load_learner": "base",
    "nt_xent": "contrastive", "random_flip": "augment", "random_grayscale": "augment", "random_mask": "autoencoder",
    "random_resized_crop": "augment", "read_metadata": "base", "vector_view": "augment",
})
