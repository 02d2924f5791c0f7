"""`Learner`: an nn.Module with sklearn-like `fit(X)`/`transform(X)`, safetensors checkpoints and exact resume.

Inputs are vectors (n, d) or images: (n, H, W) grey or (n, H, W, C) channels-last, uint8 or float in [0, 1] (the
layout `repscope` image datasets hand out); a `RepStore` plus `layer=` or a `Dataset` work too. Every epoch draws its
batch order and noise from a generator seeded by (seed, epoch), so a run resumed from a checkpoint (weights, Adam
moments, epoch) ends with the same weights as an uninterrupted one on CPU.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors import safe_open
from torch import Tensor, nn

from repscope.device import resolve_device
from repscope.errors import ConfigError, DataError, StoreError
from repscope.learn.registry import DEFAULT_EPOCHS
from repscope.tensorfile import load_state, read_tensors, save_tensors
from repscope.threads import limit_threads

FORMAT = "repscope-learner"
VERSION = "1"


def as_array(X: Any, *, layer: str | None = None) -> Tensor:
    """Raw training items as one tensor: arrays/tensors as given, a `Dataset`'s items, or a store layer."""
    if hasattr(X, "get") and hasattr(X, "layers") and hasattr(X, "n_rows"):  # RepStore
        if layer is None:
            raise ConfigError(f"store '{X.name}' needs layer=; available: {', '.join(X.layers)}")
        return X.get(layer, slice(0, int(X.n_rows))).float()
    if hasattr(X, "items") and hasattr(X, "samples"):  # Dataset
        if X.modality == "text":
            raise DataError(f"dataset '{X.name}' holds text; learners take arrays or images (extract a store first)")
        X = X.items(0, len(X))
    t = X if isinstance(X, Tensor) else torch.as_tensor(np.asarray(X))
    if t.ndim < 2 or len(t) < 2:
        raise DataError(f"learner input must be (n, d) vectors or (n, H, W[, C]) images with n ≥ 2, got "
                        f"{tuple(t.shape)}")
    return t


def input_kind(shape: tuple[int, ...]) -> tuple[str, tuple[int, ...]]:
    """('vector', (d,)) or ('image', (C, H, W)) for one raw item's shape (channels-last images with C ≤ 4)."""
    if len(shape) == 1:
        return "vector", (int(shape[0]),)
    if len(shape) == 2:
        return "image", (1, int(shape[0]), int(shape[1]))
    if len(shape) == 3 and shape[-1] <= 4:
        return "image", (int(shape[2]), int(shape[0]), int(shape[1]))
    raise DataError(f"cannot read items shaped {shape}: give vectors (d,), grey images (H, W) or (H, W, C≤4)")


def preprocess(raw: Any, kind: str) -> Tensor:
    """Raw items → float32 model inputs: vectors as they are; images to (n, C, H, W) in [0, 1]."""
    x = raw if isinstance(raw, Tensor) else torch.as_tensor(np.asarray(raw))
    if kind == "vector":
        return x.float().reshape(len(x), -1)
    scale = not torch.is_floating_point(x) or (x.numel() > 0 and float(x.max()) > 1.0)
    x = x.float() / 255.0 if scale else x.float()
    return x.unsqueeze(1) if x.ndim == 3 else x.permute(0, 3, 1, 2).contiguous()


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear–ReLU stack over `sizes` (no activation after the last layer)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def conv_depth(h: int, w: int) -> int:
    """Number of stride-2 convolutions that bring min(H, W) down to ≤ 8 (at most 4)."""
    n, s = 0, min(h, w)
    while s > 8 and n < 4:
        s, n = s // 2, n + 1
    return max(n, 1)


class ConvEncoder(nn.Module):
    """Stride-2 4×4 convolutions (ReLU) to a ≤ 8×8 map, flattened, then a hidden Linear–ReLU and a Linear to `out`."""

    def __init__(self, shape: tuple[int, int, int], out: int, *, width: int = 32, hidden: int = 256):
        super().__init__()
        c, h, w = shape
        convs: list[nn.Module] = []
        for i in range(conv_depth(h, w)):
            convs += [nn.Conv2d(c if i == 0 else width, width, 4, 2, 1), nn.ReLU()]
            h, w = h // 2, w // 2
        self.convs = nn.Sequential(*convs)
        self.map_shape = (width, h, w)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(width * h * w, hidden), nn.ReLU(), nn.Linear(hidden, out))

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(self.convs(x))


class ConvDecoder(nn.Module):
    """Mirror of `ConvEncoder`: Linear layers to the map, 4×4 stride-2 transposed convolutions, resized to (H, W)."""

    def __init__(self, latents: int, shape: tuple[int, int, int], map_shape: tuple[int, int, int], *,
                 hidden: int = 256):
        super().__init__()
        c, self.h, self.w = shape
        width, mh, mw = map_shape
        self.map_shape = map_shape
        self.fc = nn.Sequential(nn.Linear(latents, hidden), nn.ReLU(), nn.Linear(hidden, width * mh * mw), nn.ReLU())
        depth = conv_depth(self.h, self.w)
        ups: list[nn.Module] = []
        for i in range(depth):
            last = i == depth - 1
            ups.append(nn.ConvTranspose2d(width, c if last else width, 4, 2, 1))
            if not last:
                ups.append(nn.ReLU())
        self.ups = nn.Sequential(*ups)

    def forward(self, z: Tensor) -> Tensor:
        y = self.ups(self.fc(z).view(len(z), *self.map_shape))
        if y.shape[-2:] != (self.h, self.w):
            y = nn.functional.interpolate(y, size=(self.h, self.w), mode="bilinear", align_corners=False)
        return y


def build_encoder(kind: str, shape: tuple[int, ...], out: int, hidden: int) -> nn.Module:
    """MLP (vectors) or small ConvNet (images) from inputs to `out` features."""
    if kind == "vector":
        return mlp([shape[0], hidden, hidden, out])
    return ConvEncoder(shape, out, hidden=hidden)  # type: ignore[arg-type]


def build_decoder(kind: str, shape: tuple[int, ...], latents: int, hidden: int, encoder: nn.Module) -> nn.Module:
    """The decoder that mirrors `build_encoder` (outputs logits for images, values for vectors)."""
    if kind == "vector":
        return mlp([latents, hidden, hidden, shape[0]])
    return ConvDecoder(latents, shape, encoder.map_shape, hidden=hidden)  # type: ignore[arg-type]


def reconstruction_loss(logits: Tensor, x: Tensor, kind: str, weight: Tensor | None = None) -> Tensor:
    """Per-sample summed reconstruction loss, averaged over the batch: Bernoulli (BCE on logits) for images in
    [0, 1], squared error for vectors; `weight` (same shape, 0/1) keeps only some entries (masked modelling)."""
    if kind == "image":
        err = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
    else:
        err = (logits - x) ** 2
    if weight is not None:
        err = err * weight
    return err.reshape(len(x), -1).sum(1).mean()


class Learner(nn.Module):
    """Base representation learner: subclasses set `KIND` and implement `build()`, `encode(x)` and `loss(x, g)`."""

    KIND = "learner"
    INIT_STD = 0.5  # std of each encoder output at init (see `data_init`)
    DATASETS = ("tensor", "image")  # dataset modalities `fit` takes (raw arrays and store layers are not checked)
    DATASETS_WHY = ""  # why other modalities are refused (the error's fix)

    def __init__(self, *, latents: int = 10, hidden: int = 256, epochs: int = DEFAULT_EPOCHS, batch_size: int = 128,
                 lr: float = 1e-3, weight_decay: float = 0.0, seed: int = 0, device: str = "auto",
                 threads: int | None = None, progress: bool = True):
        super().__init__()
        if latents < 1 or hidden < 1 or epochs < 0 or batch_size < 2 or not 0 < lr < math.inf \
                or not 0 <= weight_decay < math.inf:  # NaN fails both comparisons
            raise ConfigError(f"bad {self.KIND} config: latents, hidden ≥ 1, epochs ≥ 0, batch_size ≥ 2, lr > 0 and "
                              f"weight_decay ≥ 0 (got {latents}, {hidden}, {epochs}, {batch_size}, {lr}, "
                              f"{weight_decay})")
        self.latents, self.hidden, self.epochs, self.batch_size = latents, hidden, epochs, batch_size
        self.lr, self.weight_decay, self.seed = lr, weight_decay, seed
        self.device_name, self.threads, self.progress = device, threads, progress
        self.input_kind_: str | None = None
        self.input_shape_: tuple[int, ...] | None = None
        self.epoch_ = 0
        self.history_: list[float] = []
        self._optim_state: dict[str, Any] | None = None

    # ---- what subclasses define -------------------------------------------------------------------------------
    def build(self) -> None:
        """Create the submodules for `self.input_kind_` / `self.input_shape_`."""
        raise NotImplementedError

    def encode(self, x: Tensor) -> Tensor:
        """The representation (n, latents) of preprocessed inputs."""
        raise NotImplementedError

    def loss(self, x: Tensor, g: torch.Generator) -> Tensor:
        """Training loss of one preprocessed batch (noise from `g`)."""
        raise NotImplementedError

    def hparams(self) -> dict[str, Any]:
        """Constructor arguments that define the model (saved in checkpoints)."""
        return {"latents": self.latents, "hidden": self.hidden, "epochs": self.epochs, "batch_size": self.batch_size,
                "lr": self.lr, "weight_decay": self.weight_decay, "seed": self.seed}

    def optimizer(self) -> torch.optim.Optimizer:
        """Adam (AdamW when weight_decay > 0)."""
        if self.weight_decay > 0:
            return torch.optim.AdamW(self.parameters(), lr=self.lr, weight_decay=self.weight_decay)
        return torch.optim.Adam(self.parameters(), lr=self.lr)

    # ---- sklearn-like API -------------------------------------------------------------------------------------
    def forward(self, x: Tensor) -> Tensor:
        """Latents of preprocessed inputs (what `repscope extract` hooks through the submodules)."""
        return self.encode(x)

    def _setup(self, raw: Tensor) -> None:
        kind, shape = input_kind(tuple(raw.shape[1:]))
        if self.input_kind_ is None:
            self.input_kind_, self.input_shape_ = kind, shape
            torch.manual_seed(self.seed)  # init only; training noise comes from per-epoch generators
            self.build()
            self.data_init(preprocess(raw[:512], kind))
        elif (kind, shape) != (self.input_kind_, tuple(self.input_shape_ or ())):
            raise DataError(f"this {self.KIND} was built for {self.input_kind_} inputs {self.input_shape_}, got "
                            f"{kind} {shape}; train a new learner for this data")

    def preprocess(self, raw: Any) -> Tensor:
        """Raw items (arrays, uint8 images) → float model inputs."""
        return preprocess(raw, self.input_kind_ or "vector")

    def fit(self, X: Any, *, layer: str | None = None, checkpoint: str | Path | None = None,
            checkpoint_every: int = 0) -> Learner:
        """Train until `self.epochs` epochs are done (continuing from `epoch_` after `load_learner`); with
        `checkpoint`, save there every `checkpoint_every` epochs (0: at the end) with the optimizer state."""
        modality = getattr(X, "modality", None) if hasattr(X, "items") and hasattr(X, "samples") else None
        if modality is not None and modality != "text" and modality not in self.DATASETS:
            plain = {"tensor": "tabular"}
            raise DataError(f"{self.KIND} does not train on {plain.get(modality, modality)} datasets such as "
                            f"'{X.name}' (it takes {' or '.join(plain.get(m, m) for m in self.DATASETS)} data); "
                            f"{self.DATASETS_WHY}")
        raw = as_array(X, layer=layer)
        self._setup(raw)
        dev = resolve_device(self.device_name)
        self.to(dev)
        data = self.preprocess(raw)
        if not torch.isfinite(data).all():
            raise DataError(f"{self.KIND} training data holds NaN/Inf; clean it first")
        opt = self.optimizer()
        if self._optim_state is not None:
            opt.load_state_dict(self._optim_state)
            self._optim_state = None
        n, bs = len(data), min(self.batch_size, len(data))
        from repscope.extract.progress import make_progress

        with limit_threads(self.threads), make_progress(disable=not self.progress, extra="loss {task.fields[loss]}") \
                as bar:
            task = bar.add_task(f"train {self.KIND}", total=n * max(self.epochs - self.epoch_, 0), loss="–")
            while self.epoch_ < self.epochs:
                self.train()
                g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch_)
                order = torch.randperm(n, generator=g)
                total, count = 0.0, 0
                for i in range(0, n, bs):
                    idx = order[i:i + bs]
                    if len(idx) < 2:  # a last batch of one sample carries no batch statistics
                        continue
                    loss = self.loss(data[idx].to(dev), g)
                    if not torch.isfinite(loss):
                        raise DataError(f"{self.KIND} loss became {float(loss)} at epoch {self.epoch_}; lower lr")
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    self.before_step()
                    opt.step()
                    self.after_step()
                    total, count = total + float(loss.detach()) * len(idx), count + len(idx)
                    bar.update(task, advance=len(idx), loss=f"{total / count:.4g}")
                self.history_.append(total / max(count, 1))
                self.epoch_ += 1
                if checkpoint is not None and checkpoint_every and self.epoch_ % checkpoint_every == 0:
                    self.save(checkpoint, optimizer=opt)
        self.eval()
        if checkpoint is not None:
            self.save(checkpoint, optimizer=opt)
        return self

    @torch.no_grad()
    def data_init(self, x: Tensor) -> None:
        """Data-dependent init (LSUV-style, Mishkin & Matas 2016): rescale the encoder's last Linear so each output
        has mean 0 and std `INIT_STD` on a first batch; otherwise a ConvNet on sparse images starts with outputs
        that barely vary between samples (std ~1e-3), and every sample then falls in the same QLAE code cell."""
        last = [m for m in self.encoder.modules() if isinstance(m, nn.Linear)][-1]
        z = self.encoder(x)
        std = z.std(0).clamp_min(1e-8)
        last.weight.mul_((self.INIT_STD / std)[:, None])
        last.bias.copy_((last.bias - z.mean(0)) * self.INIT_STD / std)

    def before_step(self) -> None:
        """Hook between `backward()` and the optimizer step, e.g. gradient clipping (nothing by default)."""

    def after_step(self) -> None:
        """Hook after each optimizer step (nothing by default)."""

    @torch.no_grad()
    def transform(self, X: Any, *, layer: str | None = None, batch_size: int = 1024) -> np.ndarray:
        """Latents (n, latents) as float32 numpy."""
        if self.input_kind_ is None:
            raise ConfigError(f"this {self.KIND} is not fitted; call fit(X) first")
        raw = as_array(X, layer=layer)
        self._setup(raw)
        self.eval()
        dev = next(self.parameters()).device
        out = [self.encode(self.preprocess(raw[i:i + batch_size]).to(dev)).float().cpu()
               for i in range(0, len(raw), batch_size)]
        return torch.cat(out).numpy()

    def fit_transform(self, X: Any, **kw: Any) -> np.ndarray:
        """`fit(X)` then `transform(X)`."""
        layer = kw.get("layer")
        return self.fit(X, **kw).transform(X, layer=layer)

    # ---- checkpoints ------------------------------------------------------------------------------------------
    def save(self, path: str | Path, *, optimizer: torch.optim.Optimizer | None = None) -> Path:
        """safetensors file: weights (+ `optim.*` Adam state) and JSON metadata (kind, hparams, shape, epoch)."""
        if self.input_kind_ is None:
            raise ConfigError(f"this {self.KIND} is not fitted; nothing to save")
        tensors = {f"model.{k}": v.detach().cpu().contiguous() for k, v in self.state_dict().items()}
        layout: dict[str, Any] = {}
        if optimizer is not None:
            sd = optimizer.state_dict()
            for pid, st in sd["state"].items():
                for key, val in st.items():
                    t = val if isinstance(val, Tensor) else torch.tensor(float(val))
                    tensors[f"optim.{pid}.{key}"] = t.detach().cpu().contiguous()
            layout = {"param_groups": sd["param_groups"]}
        meta = {"format": FORMAT, "version": VERSION, "kind": self.KIND, "hparams": json.dumps(self.hparams()),
                "input_kind": self.input_kind_, "input_shape": json.dumps(list(self.input_shape_ or ())),
                "epoch": str(self.epoch_), "history": json.dumps(self.history_), "optim": json.dumps(layout)}
        return save_tensors(path, tensors, metadata=meta)


def read_metadata(path: str | Path) -> dict[str, str] | None:
    """The safetensors metadata of a learner checkpoint, or None when the file is not one."""
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception:  # not safetensors, or damaged: a learner's header may still be readable (then load reports it)
        from repscope.tensorfile import safetensors_metadata

        meta = safetensors_metadata(path) or {}
    return meta if meta.get("format") == FORMAT else None


def load_learner(path: str | Path, *, device: str = "auto", progress: bool = True) -> Learner:
    """Rebuild a learner from `Learner.save` (weights, epoch and Adam state: `fit` resumes where it stopped)."""
    from repscope.learn.registry import learner_class

    meta = read_metadata(path)
    if meta is None:
        raise StoreError(f"'{path}' is not a repscope learner checkpoint; give a file saved by `repscope learn train`")
    cls = learner_class(str(meta.get("kind")))
    try:
        model = cls(**json.loads(meta["hparams"]), device=device, progress=progress)
        model.input_kind_, model.input_shape_ = meta["input_kind"], tuple(json.loads(meta["input_shape"]))
        model.build()
        model.epoch_ = int(meta["epoch"])
        model.history_ = json.loads(meta.get("history", "[]"))
        layout = json.loads(meta.get("optim", "{}"))
    except (KeyError, TypeError, ValueError, AttributeError) as err:  # JSON errors are ValueErrors
        why = (str(err).strip().splitlines() or [""])[0][:160]
        raise StoreError(f"the header of learner checkpoint '{path}' is damaged ({type(err).__name__}: {why}); "
                         "restore it from a copy or train it again") from None
    tensors = read_tensors(path, "learner checkpoint")
    load_state(model, {k[6:]: v for k, v in tensors.items() if k.startswith("model.")}, path, "learner checkpoint")
    if layout:
        state: dict[int, dict[str, Tensor]] = {}
        for k, v in tensors.items():
            if k.startswith("optim."):
                _, pid, key = k.split(".", 2)
                state.setdefault(int(pid), {})[key] = v
        model._optim_state = {"state": state, "param_groups": layout["param_groups"]}
    model.eval()
    model.repscope_name = Path(path).stem  # type: ignore[attr-defined]
    return model


__all__ = ["FORMAT", "Learner", "as_array", "build_decoder", "build_encoder", "input_kind", "load_learner",
           "mlp", "preprocess", "read_metadata", "reconstruction_loss"]
