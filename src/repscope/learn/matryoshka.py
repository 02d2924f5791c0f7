"""`MatryoshkaHead`: a Matryoshka head on frozen features as a learner (MRL: Kusupati et al. 2022; Matryoshka-Adaptor:
Yoon et al. 2024), so `repscope learn train matryoshka STORE -l LAYER`, `run: learn` and `repscope extract` can use it.

It is a thin wrapper: training is `repscope.compress.adapter.train_adapter` (nested loss Σ_m ℓ(f(x)[:m]) over prefix
sizes m, starting from the PCA map), the weights are a `repscope.compress.adapter.MatryoshkaAdapter`; this module only
adds the learner interface (fit/transform on arrays or a store layer, safetensors checkpoints via `Learner.save`).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from repscope.errors import ConfigError, DataError, check_choice
from repscope.learn.base import Learner, as_array, input_kind


class MatryoshkaHead(Learner):
    """f(x) = the compression package's Matryoshka adapter on frozen vectors (n, d); the representation is the first
    `latents` dims of f(x) (all d when `latents` is None), each prefix f(x)[:m] trained to stand on its own.

    `objective` 'unsupervised' keeps the pairwise cosines of x at every prefix; 'supervised' trains nested linear
    heads on labels (`fit(X, y=...)`, or the samples column `target` of a store/dataset). `kind` 'linear' or 'mlp'
    (residual MLP of width `hidden`); `dims` the prefix sizes (default 8, 16, 32, …, d)."""

    KIND = "matryoshka"

    def __init__(self, *, latents: int | None = None, dims: Sequence[int] | None = None, kind: str = "linear",
                 objective: str = "unsupervised", target: str | None = None, epochs: int = 30,
                 batch_size: int = 512, **kw: Any):
        super().__init__(latents=latents or 1, epochs=epochs, batch_size=batch_size, **kw)
        from repscope.compress.adapter import KINDS, OBJECTIVES

        check_choice(kind, KINDS, "adapter kind")
        check_choice(objective, OBJECTIVES, "adapter objective")
        self.latents = latents  # type: ignore[assignment]  # None: keep all d dims
        self.dims = None if dims is None else [int(m) for m in dims]
        self.kind, self.objective, self.target = kind, objective, target

    def hparams(self) -> dict:
        return {**super().hparams(), "dims": self.dims, "kind": self.kind, "objective": self.objective,
                "target": self.target}

    def build(self) -> None:
        from repscope.compress.adapter import MatryoshkaAdapter

        if self.input_kind_ != "vector":
            raise DataError(f"a Matryoshka head takes feature vectors (n, d), got {self.input_kind_} inputs "
                            f"{self.input_shape_}; train it on a store layer (repscope learn train matryoshka STORE "
                            f"-l LAYER)")
        d = int(self.input_shape_[0])  # type: ignore[index]
        if self.latents is not None and not 1 <= self.latents <= d:
            raise ConfigError(f"--latents {self.latents}: a Matryoshka head keeps a prefix of the d={d} input dims; "
                              f"use 1 ≤ latents ≤ {d}")
        self.adapter = MatryoshkaAdapter(d, kind=self.kind, hidden=self.hidden)
        self.latent = nn.Identity()

    @torch.no_grad()
    def data_init(self, x: Tensor) -> None:
        """No encoder to rescale: `train_adapter` starts the adapter at the PCA map of the fit rows."""

    def encode(self, x: Tensor) -> Tensor:
        return self.latent(self.adapter(x)[:, : self.latents])

    def _labels(self, X: Any, y: Any) -> Any:
        if y is not None or self.objective != "supervised":
            return y
        samples = getattr(X, "samples", None)
        if self.target is None or samples is None or self.target not in samples.columns:
            raise ConfigError("the supervised objective needs labels: pass fit(X, y=...) or target=COLUMN naming a "
                              "samples column of the store/dataset")
        return samples[self.target].to_numpy()

    def fit(self, X: Any, *, y: Any = None, layer: str | None = None, checkpoint: str | Path | None = None,
            checkpoint_every: int = 0) -> MatryoshkaHead:
        """Train the adapter in one call of `compress.adapter.train_adapter` (`epochs` passes over X); with
        `checkpoint`, save it there at the end (the adapter's trainer keeps no resumable optimizer state)."""
        from repscope.compress import adapter as compress_adapter

        if 0 < self.epoch_ < self.epochs:
            raise ConfigError(f"a Matryoshka head trains in one call and cannot resume from epoch {self.epoch_}; "
                              "drop --resume to train a new one")
        raw = as_array(X, layer=layer)
        kind, shape = input_kind(tuple(raw.shape[1:]))
        if self.input_kind_ is None:
            self.input_kind_, self.input_shape_ = kind, shape
            self.build()
        elif (kind, shape) != (self.input_kind_, tuple(self.input_shape_ or ())):
            raise DataError(f"this {self.KIND} was built for {self.input_kind_} inputs {self.input_shape_}, got "
                            f"{kind} {shape}; train a new head for this data")
        if self.epoch_ >= self.epochs > 0:
            return self
        x = self.preprocess(raw)
        if not torch.isfinite(x).all():
            raise DataError(f"{self.KIND} training data holds NaN/Inf; clean it first")
        trained = compress_adapter.train_adapter(
            x, y=self._labels(X, y), objective=self.objective, dims=self.dims, kind=self.kind, hidden=self.hidden,
            epochs=self.epochs, batch_size=self.batch_size, lr=self.lr, seed=self.seed, device=self.device_name,
            progress=self.progress)
        self.adapter.load_state_dict(trained.state_dict())
        self.dims = list(trained.dims_)
        self.epoch_ = self.epochs
        self.history_ = self._nested_losses(x, trained) if self.objective == "unsupervised" else []
        self.eval()
        if checkpoint is not None:
            self.save(checkpoint)
        return self

    @torch.no_grad()
    def _nested_losses(self, x: Tensor, trained: nn.Module, rows: int = 2048) -> list[float]:
        """The unsupervised nested loss on (up to `rows` of) the fit rows: [PCA start, trained adapter]."""
        from repscope.compress.adapter import MatryoshkaAdapter, matryoshka_loss

        xs = x[:rows]
        target = nn.functional.normalize(xs, dim=1) @ nn.functional.normalize(xs, dim=1).T
        start = MatryoshkaAdapter(xs.shape[1], kind=self.kind, hidden=self.hidden).init_pca(x)
        return [float(matryoshka_loss(m(xs), self.dims, target_cos=target)) for m in (start, trained.eval())]

    @torch.no_grad()
    def transform(self, X: Any, *, layer: str | None = None, batch_size: int = 8192) -> np.ndarray:
        """The first `latents` adapted dims (float32 numpy), through `MatryoshkaAdapter.transform`."""
        if self.input_kind_ is None:
            raise ConfigError(f"this {self.KIND} is not fitted; call fit(X) first")
        raw = as_array(X, layer=layer)
        if input_kind(tuple(raw.shape[1:])) != (self.input_kind_, tuple(self.input_shape_ or ())):
            raise DataError(f"this {self.KIND} was built for inputs {self.input_shape_}, got {tuple(raw.shape[1:])}")
        self.adapter.cpu()
        return self.adapter.transform(self.preprocess(raw), batch=batch_size)[:, : self.latents].numpy()


__all__ = ["MatryoshkaHead"]
