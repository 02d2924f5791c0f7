"""A trained learner as a `repscope extract` model source (layers: the encoder's submodules, `latent`, …)."""

from __future__ import annotations

from pathlib import Path

from repscope.learn.base import Learner, load_learner
from repscope.sources.models import TorchModuleAdapter, state_hash


def learner_adapter(learner: Learner | str | Path, *, device: str = "auto") -> TorchModuleAdapter:
    """Wrap a fitted learner (or a checkpoint path) so `extract` sees its layers; raw items go through
    `learner.preprocess` (uint8 images → floats in [0, 1])."""
    model = load_learner(learner, device=device, progress=False) if isinstance(learner, (str, Path)) else learner
    model.repscope_hash = state_hash(model)  # type: ignore[attr-defined]
    name = getattr(model, "repscope_name", f"{model.KIND}_s{model.seed}")
    modality = "image" if model.input_kind_ == "image" else "tensor"
    return TorchModuleAdapter(model, transform=model.preprocess, name=name, modality=modality, device=device)
