"""scikit-learn-style wrappers: `SAE` (fit/transform/inverse_transform/score) and `Transcoder` (fit(X, Y)/predict)."""

from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, TransformerMixin
from torch import Tensor

from repscope.device import resolve_device
from repscope.dictionary import metrics as M
from repscope.dictionary.checkpoint import load_tensors, read_config, save_module
from repscope.dictionary.modules import ARCHS, DictionaryModule, build_module
from repscope.dictionary.stream import ArraySource, ShuffledChunkStream, StoreSource, iter_source
from repscope.dictionary.train import TrainConfig, Trainer, initialize
from repscope.errors import ConfigError, DataError, RepscopeError, StoreError
from repscope.tensorfile import load_state
from repscope.validation import require_fitted, validate_array, validate_input


def _like(out: Tensor, ref: Any) -> Any:
    """Return `out` as numpy when the reference input was not a tensor."""
    return out if isinstance(ref, Tensor) else out.numpy()


def default_lr(n_latents: int) -> float:
    """Learning-rate heuristic of Gao et al. 2024, 2e-4·(2^14/m)^½, capped to [1e-4, 3e-3] for small dictionaries."""
    return float(min(3e-3, max(1e-4, 2e-4 * math.sqrt(16384 / n_latents))))


class SAE(TransformerMixin, BaseEstimator):
    """Sparse autoencoder estimator over activations (arrays or a RepStore layer streamed chunk by chunk).

    Parameters: arch (relu, topk, batchtopk, jumprelu, mp), k (TopK/BatchTopK/MP), expansion or n_latents,
    l1_coeff (relu), l0_coeff (jumprelu), aux_coeff/aux_k (AuxK), lr (default: Gao et al. heuristic),
    batch_size, n_steps or n_epochs, warmup_steps, decay_frac, bias_init, seed, device, checkpoint_dir,
    checkpoint_every, resume, progress, decoder_lr_scale (learning-rate multiplier for the unit-norm decoder; SAELens'
    0.1-norm decoder with norm rescaling steps its directions ~10× faster, 3× fit best among 1/3/10 in
    benchmarks/sae.py). Learned: module_, n_features_in_, history_, n_steps_, fit_seconds_.

    A scikit-learn transformer (clone, Pipeline, GridSearchCV): `transform` gives the latent codes, `score` 1 − FVU.
    """

    def __init__(self, arch: str = "topk", k: int | None = 32, expansion: float = 16.0, n_latents: int | None = None,
                 l1_coeff: float = 1.0, l0_coeff: float = 1.0, aux_coeff: float = 1 / 32, aux_k: int | None = None,
                 lr: float | None = None, batch_size: int = 4096, n_steps: int | None = None, n_epochs: float = 10.0,
                 warmup_steps: int | None = None, decay_frac: float = 0.2, bias_init: str = "geometric_median",
                 normalize: bool = True, buffer_rows: int = 65536, dead_after: int | None = None,
                 holdout_every: int = 0, seed: int = 0, device: str = "auto",
                 checkpoint_dir: str | Path | None = None, checkpoint_every: int = 0, resume: bool = False,
                 progress: bool = False, decoder_lr_scale: float = 3.0):
        self.decoder_lr_scale = decoder_lr_scale
        self.arch, self.k, self.expansion, self.n_latents = arch, k, expansion, n_latents
        self.l1_coeff, self.l0_coeff, self.aux_coeff, self.aux_k = l1_coeff, l0_coeff, aux_coeff, aux_k
        self.lr, self.batch_size, self.n_steps, self.n_epochs = lr, batch_size, n_steps, n_epochs
        self.warmup_steps, self.decay_frac = warmup_steps, decay_frac
        self.bias_init, self.normalize = bias_init, normalize
        self.buffer_rows, self.dead_after, self.holdout_every = buffer_rows, dead_after, holdout_every
        self.seed, self.device = seed, device
        self.checkpoint_dir, self.checkpoint_every, self.resume = checkpoint_dir, checkpoint_every, resume
        self.progress = progress

    # ---- fitting -------------------------------------------------------------------------------------------------
    def _source(self, X: Any, Y: Any, layer: str | None, target_layer: str | None) -> Any:
        from repscope.store import RepStore

        if isinstance(X, RepStore):
            if layer is None:
                raise ConfigError(f"fitting on store '{X.name}' needs layer=; available: {', '.join(X.layers)}")
            return StoreSource(X, layer, target_layer)
        cpu = torch.device("cpu")
        x = validate_input(self, X.detach() if isinstance(X, Tensor) else X, reset=True, device=cpu, min_samples=2,
                           purpose="training an SAE")
        y = None if Y is None else validate_array(Y.detach() if isinstance(Y, Tensor) else Y, device=cpu, name="Y")
        return ArraySource(x, y)

    def _module(self, d_in: int, d_out: int | None) -> DictionaryModule:
        if self.arch not in ARCHS:
            raise ConfigError(f"unknown SAE arch '{self.arch}'; choose one of {', '.join(ARCHS)}")
        m = self.n_latents or int(round(self.expansion * d_in))
        if m < 1:
            raise ConfigError(f"expansion {self.expansion} gives no latents for d={d_in}; use a larger expansion")
        gen = torch.Generator().manual_seed(int(self.seed))
        try:
            mod = build_module(self.arch, d_in=d_in, n_latents=m, d_out=d_out, k=self.k, l1_coeff=self.l1_coeff,
                               l0_coeff=self.l0_coeff, aux_coeff=self.aux_coeff, aux_k=self.aux_k)
        except ConfigError as err:
            if self.n_latents:
                raise
            raise ConfigError(f"{err} (n_latents = expansion {self.expansion} × n_features={d_in}); use a smaller k "
                              "or a larger expansion") from err
        mod.reset_parameters(gen)
        return mod

    def fit(self, X: Any, Y: Any = None, *, layer: str | None = None, target_layer: str | None = None,
            stop_after: int | None = None) -> SAE:
        """Train on X (array/tensor (n, d) or a RepStore with `layer=`); Y/target_layer only for transcoders.

        `stop_after` ends training after that many total steps (leaving a resumable checkpoint)."""
        device = resolve_device(self.device)
        # a plain SAE ignores y (scikit-learn passes it through Pipelines); only a Transcoder learns to predict it
        source = self._source(X, Y if isinstance(self, Transcoder) else None, layer, target_layer)
        stream = ShuffledChunkStream(source, seed=self.seed, buffer_rows=self.buffer_rows,
                                     holdout_every=self.holdout_every)
        module = self._module(source.d_in, source.d_out).to(device)
        n_steps = int(self.n_steps or max(1, math.ceil(self.n_epochs * stream.n_kept / self.batch_size)))
        cfg = TrainConfig(
            n_steps=n_steps, batch_size=int(self.batch_size), lr=float(self.lr or default_lr(module.n_latents)),
            warmup_steps=int(self.warmup_steps if self.warmup_steps is not None else min(100, n_steps // 20)),
            decay_frac=float(self.decay_frac), seed=int(self.seed), buffer_rows=int(self.buffer_rows),
            holdout_every=int(self.holdout_every), bias_init=self.bias_init, normalize=bool(self.normalize),
            dead_after=int(self.dead_after or min(10_000_000, stream.n_kept)),
            decoder_lr_scale=float(self.decoder_lr_scale),
        )
        meta = {"source": source.describe(), "estimator": type(self).__name__}
        trainer = Trainer(module, stream, cfg, device, checkpoint_dir=self.checkpoint_dir,
                          checkpoint_every=self.checkpoint_every, meta=meta, progress=self.progress)
        t0 = time.perf_counter()
        if self.resume and trainer.can_resume():
            trainer.resume()
        else:
            initialize(module, stream, cfg, device)
        start = trainer.step
        trainer.fit(stop_after=stop_after)
        self.steps_run_ = trainer.step - start
        self.fit_seconds_ = time.perf_counter() - t0
        self.module_ = module.eval()
        self.trainer_ = trainer
        self.history_ = trainer.history
        self.n_steps_ = trainer.step
        self.train_config_ = cfg
        self.source_ = source.describe()
        self.n_features_in_ = source.d_in
        if self.checkpoint_dir and trainer.step >= cfg.n_steps:
            trainer.save(final=True)
        return self

    # ---- inference -----------------------------------------------------------------------------------------------
    def _check(self) -> DictionaryModule:
        require_fitted(self, "module_")
        return self.module_

    def _rows(self, X: Any) -> Tensor:
        """Validated inputs (width checked against n_features_in_), float32 on CPU."""
        self._check()
        t = X.detach() if isinstance(X, Tensor) else X
        return validate_input(self, t, reset=False, device=torch.device("cpu"), purpose="encoding")

    def _batches(self, t: Tensor, batch: int = 8192):
        dev = next(self._check().parameters()).device
        for s in range(0, len(t), batch):
            yield t[s : s + batch].to(dev, torch.float32)

    @torch.no_grad()
    def transform(self, X: Any) -> Any:
        """Latent codes z (n, n_latents) for inputs X (numpy in → numpy out)."""
        mod = self._check()
        out = torch.cat([mod.encode(b).cpu() for b in self._batches(self._rows(X))])
        return _like(out, X)

    @torch.no_grad()
    def inverse_transform(self, Z: Any) -> Any:
        """Reconstructions (n, d_out) from latent codes."""
        mod = self._check()
        z = validate_array(Z.detach() if isinstance(Z, Tensor) else Z, device=torch.device("cpu"), name="Z")
        if z.shape[1] != mod.n_latents:
            raise DataError(f"Z has {z.shape[1]} columns but the {type(self).__name__} has {mod.n_latents} latents; "
                            "pass codes from transform()")
        out = torch.cat([mod.decode(b).cpu() for b in self._batches(z)])
        return _like(out, Z)

    @torch.no_grad()
    def reconstruct(self, X: Any) -> Any:
        """inverse_transform(transform(X)), batched."""
        mod = self._check()
        out = torch.cat([mod(b).cpu() for b in self._batches(self._rows(X))])
        return _like(out, X)

    def score(self, X: Any, y: Any = None) -> float:
        """1 − FVU of the reconstruction (of the targets y for a transcoder; a plain SAE ignores y)."""
        x_hat = self.reconstruct(X)
        return 1.0 - M.fvu(y if y is not None and isinstance(self, Transcoder) else X, x_hat)

    def evaluate(self, X: Any, Y: Any = None) -> dict[str, float]:
        """FVU, MSE, mean L0, dead and dense latent fractions on X (targets Y for a transcoder)."""
        z = self.transform(X)
        x_hat = self.inverse_transform(z)
        target = Y if Y is not None else X
        return {"fvu": M.fvu(target, x_hat), "mse": M.mse(target, x_hat), "mean_l0": M.mean_l0(z),
                "dead_fraction": M.dead_fraction(z), "dense_fraction": M.dense_fraction(z)}

    def evaluate_store(self, store: Any, layer: str, target_layer: str | None = None,
                       rows: np.ndarray | None = None) -> dict[str, float]:
        """Streaming evaluate over a store layer (optionally only `rows`): FVU, MSE, L0, dead/dense fractions."""
        mod = self._check()
        dev = next(mod.parameters()).device
        src = StoreSource(store, layer, target_layer)
        sse = sx = sxx = n = l0 = 0.0
        s1 = None
        fires = torch.zeros(mod.n_latents, dtype=torch.float64)
        with torch.no_grad():
            for _, x, y in iter_source(src, rows=rows):
                t = (y if y is not None else x).double()
                z = mod.encode(x.to(dev)).cpu()
                xh = mod.decode(z.to(dev)).cpu().double()
                sse += float((t - xh).pow(2).sum())
                s1 = t.sum(0) if s1 is None else s1 + t.sum(0)
                sxx += float(t.pow(2).sum())
                n += len(t)
                l0 += float((z != 0).sum())
                fires += (z != 0).double().sum(0)
        if n == 0:
            raise DataError("no rows to evaluate")
        sx = float(s1.pow(2).sum()) / n
        var = sxx - sx
        freq = fires / n
        return {"fvu": sse / var if var > 0 else float("nan"), "mse": sse / n, "mean_l0": l0 / n,
                "dead_fraction": float((freq == 0).double().mean()),
                "dense_fraction": float((freq > 0.1).double().mean())}

    # ---- persistence ---------------------------------------------------------------------------------------------
    def save(self, directory: str | Path, **meta: Any) -> Path:
        """Write model.safetensors + config.json (module, training config, source, extra meta)."""
        from dataclasses import asdict

        mod = self._check()
        info = {"estimator": type(self).__name__, "source": getattr(self, "source_", {}),
                "step": getattr(self, "n_steps_", 0), "complete": True,
                "train": asdict(self.train_config_) if hasattr(self, "train_config_") else {}, **meta}
        return save_module(directory, mod, info)

    @classmethod
    def load(cls, directory: str | Path, device: str = "auto") -> SAE:
        """Rebuild a fitted estimator from a checkpoint directory (safetensors + JSON; no pickle)."""
        cfg = read_config(directory)
        mc = dict(cfg["module"])
        est = Transcoder() if mc.get("d_out") is not None and cls is SAE else cls()
        try:
            est.arch, est.k, est.n_latents = mc["arch"], mc.get("k"), mc["n_latents"]
            est.seed = cfg.get("train", {}).get("seed", 0)
            mod = build_module(mc.pop("arch"), **mc)
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            if isinstance(err, RepscopeError):  # an unknown arch names the choices
                raise
            raise StoreError(f"'{Path(directory) / 'config.json'}' is damaged (module config: {type(err).__name__}: "
                             f"{str(err)[:120]}); restore the folder from a copy or train it again") from None
        load_state(mod, load_tensors(directory), Path(directory) / "model.safetensors", "SAE checkpoint")
        est.module_ = mod.to(resolve_device(device)).eval()
        est.source_ = cfg.get("source", {})
        est.n_steps_ = int(cfg.get("step", 0))
        est.history_ = cfg.get("history", [])
        est.config_ = cfg
        est.n_features_in_ = mod.d_in
        return est

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = False  # dense rows only: sparse input is refused with a one-line DataError
        tags.transformer_tags.preserves_dtype = ["float32"]  # trained and encoded in float32
        tags.non_deterministic = False  # seeded
        return tags

    @property
    def decoder_(self) -> Tensor:
        """Decoder atoms (n_latents, d_out) in raw units (rows of W_dec / out_scale)."""
        mod = self._check()
        return (mod.W_dec.detach() / mod.out_scale).cpu()


class Transcoder(SAE):
    """Transcoder (Dunefsky et al. 2024): sparse latents from layer A that reconstruct layer B; fit(X_a, X_b)."""

    def fit(self, X: Any, Y: Any = None, *, layer: str | None = None, target_layer: str | None = None,
            stop_after: int | None = None) -> Transcoder:
        """Train on paired rows X (layer A) and Y (layer B), or a RepStore with layer= and target_layer=."""
        from repscope.store import RepStore

        if isinstance(X, RepStore) and target_layer is None:
            raise ConfigError("a transcoder needs target_layer= (the layer it predicts)")
        if not isinstance(X, RepStore) and Y is None:
            raise ConfigError("a transcoder needs targets: call fit(X_layer_a, X_layer_b)")
        if self.arch in ARCHS and not ARCHS.metadata(self.arch).get("transcoder", True):
            able = ", ".join(ARCHS.names(transcoder=True))
            raise ConfigError(f"the {self.arch} arch cannot be a transcoder; use one of {able}")
        super().fit(X, Y, layer=layer, target_layer=target_layer, stop_after=stop_after)
        return self

    def predict(self, X: Any) -> Any:
        """Predicted layer-B activations for layer-A inputs."""
        return self.reconstruct(X)
