"""A trained learner as a `repscope extract` model source (layers: the encoder's submodules, `latent`, …)."""

from __future__ import annotations

from pathlib import Path

import torch

from repscope.errors import ConfigError
from repscope.learn.base import Learner, load_learner
from repscope.sources.models import TorchModuleAdapter, state_hash


def example_items(model: Learner) -> torch.Tensor:
    """Two all-zero raw items shaped like the learner's training items: (2, d) vectors, or uint8 images (2, H, W)
    grey / (2, H, W, C) channels-last, the layout repscope's image datasets hand out."""
    shape = tuple(model.input_shape_ or ())
    if model.input_kind_ == "image":
        c, h, w = shape
        return torch.zeros((2, h, w) if c == 1 else (2, h, w, c), dtype=torch.uint8)
    return torch.zeros((2, *shape))


class LearnerAdapter(TorchModuleAdapter):
    """`TorchModuleAdapter` over a learner whose layers are the submodules its forward pass reaches (the encoder,
    `latent`, SimCLR's `head`, …): a decoder used only by the training loss runs in no extraction, so it is not
    offered (selecting it would leave its output empty)."""

    def __init__(self, model: Learner, *, device: str = "auto"):
        name = getattr(model, "repscope_name", f"{model.KIND}_s{model.seed}")
        modality = "image" if model.input_kind_ == "image" else "tensor"
        super().__init__(model, transform=model.preprocess, name=name, modality=modality, device=device,
                         example=example_items(model))
        raw, _ = super().run(self.example_items(), super().layer_names())
        self._reached = [n for n in super().layer_names() if n in raw]

    def layer_names(self) -> list[str]:
        """Submodule paths the forward pass reaches, in definition order."""
        return list(self._reached)


def learner_adapter(learner: Learner | str | Path, *, device: str = "auto") -> TorchModuleAdapter:
    """Wrap a fitted learner (or a checkpoint path) so `extract` sees the layers its forward pass reaches; raw items
    go through `learner.preprocess` (uint8 images → floats in [0, 1])."""
    model = load_learner(learner, device=device, progress=False) if isinstance(learner, (str, Path)) else learner
    if model.input_kind_ is None:
        raise ConfigError(f"this {model.KIND} is not fitted; call fit(X) before extracting from it")
    model.repscope_hash = state_hash(model)  # type: ignore[attr-defined]
    return LearnerAdapter(model, device=device)
