"""Matryoshka adapter on frozen embeddings (Matryoshka-Adaptor: Yoon et al. 2024) trained with the nested MRL loss
(Kusupati et al. 2022) L = Σ_m ℓ(f(x)[:m]) summed over prefix dims m: supervised ℓ = cross-entropy of a linear head
on the prefix; unsupervised ℓ = mean (cos(f(xᵢ)[:m], f(xⱼ)[:m]) − cos(xᵢ, xⱼ))² over the pairs of a batch."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from repscope.compress.evaluate import as_matrix
from repscope.compress.truncate import PCABasis, prefix_dims
from repscope.errors import ConfigError, DataError, RepscopeError, StoreError, check_choice

OBJECTIVES = ("unsupervised", "supervised")
KINDS = ("linear", "mlp")


class MatryoshkaAdapter(nn.Module):
    """f(x) = x W + b (+ a residual MLP g(x W + b) for kind='mlp'); W, b start at the PCA map (x − μ) V of the fit
    rows and g at zero, so an untrained adapter is PCA truncation."""

    def __init__(self, dim: int, *, kind: str = "linear", hidden: int = 512):
        super().__init__()
        check_choice(kind, KINDS, "adapter kind")
        self.kind, self.dim, self.hidden = kind, int(dim), int(hidden)
        self.proj = nn.Linear(dim, dim)
        self.mlp = None
        if kind == "mlp":
            self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))
            nn.init.zeros_(self.mlp[2].weight)
            nn.init.zeros_(self.mlp[2].bias)

    def init_pca(self, x: torch.Tensor) -> MatryoshkaAdapter:
        """Set W = V and b = −μV from a PCA of x (the starting point of training)."""
        pca = PCABasis().fit(x)
        with torch.no_grad():
            self.proj.weight.copy_(pca.components_.T.float())
            self.proj.bias.copy_((-pca.mean_ @ pca.components_).float())
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.proj(x)
        return z + self.mlp(z) if self.mlp is not None else z

    @torch.no_grad()
    def transform(self, x: Any, batch: int = 8192) -> torch.Tensor:
        """Adapted embeddings (float32, CPU) of x (n, d)."""
        t = as_matrix(x)
        dev = self.proj.weight.device
        self.eval()
        return torch.cat([self(t[s : s + batch].to(dev)).cpu() for s in range(0, t.shape[0], batch)]) \
            if t.shape[0] else t


def _cos(z: torch.Tensor) -> torch.Tensor:
    zn = torch.nn.functional.normalize(z, dim=1)
    return zn @ zn.T


def matryoshka_loss(z: torch.Tensor, dims: Sequence[int], *, target_cos: torch.Tensor | None = None,
                    labels: torch.Tensor | None = None, heads: nn.ModuleList | None = None) -> torch.Tensor:
    """Nested MRL loss Σ_m ℓ_m on the prefixes z[:, :m]: cosine-matching (given `target_cos`) or cross-entropy
    of `heads[i]` (given `labels`)."""
    total = z.new_zeros(())
    for i, m in enumerate(dims):
        if target_cos is not None:  # the diagonal is 1 on both sides and adds nothing
            total = total + ((_cos(z[:, :m]) - target_cos) ** 2).mean()
        else:
            total = total + nn.functional.cross_entropy(heads[i](z[:, :m]), labels)
    return total


def train_adapter(x: Any, *, y: Any = None, objective: str = "unsupervised", dims: Sequence[int] | None = None,
                  kind: str = "linear", hidden: int = 512, epochs: int = 30, batch_size: int = 512,
                  lr: float = 1e-3, seed: int = 0, device: str = "auto", progress: bool = True) -> MatryoshkaAdapter:
    """Fit a `MatryoshkaAdapter` on rows x (n, d) with the nested loss over `dims` (default 8, 16, … , d);
    `y` (labels) is needed for objective='supervised'. Progress (rich) goes to stderr."""
    from repscope.device import resolve_device
    from repscope.extract.progress import make_progress
    from repscope.threads import limit_threads

    check_choice(objective, OBJECTIVES, "adapter objective")
    t = as_matrix(x)
    n, d = t.shape
    if n < 4:
        raise DataError(f"adapter training needs at least 4 rows, got {n}")
    ms = prefix_dims(d, dims)
    dev = resolve_device(device)
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    model = MatryoshkaAdapter(d, kind=kind, hidden=hidden).init_pca(t).to(dev)
    heads, codes = None, None
    if objective == "supervised":
        if y is None:
            raise ConfigError("the supervised objective needs labels; pass --target COLUMN (or use unsupervised)")
        _, inv = np.unique(np.asarray(y), return_inverse=True)
        codes = torch.as_tensor(inv, dtype=torch.int64)
        k = int(codes.max()) + 1
        if k < 2:
            raise DataError("the supervised objective needs at least 2 classes in the target")
        heads = nn.ModuleList([nn.Linear(m, k) for m in ms]).to(dev)
    params = list(model.parameters()) + (list(heads.parameters()) if heads is not None else [])
    opt = torch.optim.Adam(params, lr=lr)
    bs = min(batch_size, n)
    steps_per_epoch = max(1, n // bs)
    small = dev.type == "cpu" and bs * max(d, hidden if kind == "mlp" else 0) <= 1 << 20
    with limit_threads(1 if small else None), \
            make_progress("steps", disable=not progress, extra="loss {task.fields[loss]}") as bar:
        task = bar.add_task(f"adapter ({objective})", total=epochs * steps_per_epoch, loss="–")
        model.train()
        for _ in range(epochs):
            perm = torch.randperm(n, generator=gen)
            for s in range(steps_per_epoch):
                b = perm[s * bs : (s + 1) * bs]
                xb = t[b].to(dev)
                z = model(xb)
                if objective == "unsupervised":
                    with torch.no_grad():
                        tc = _cos(xb)
                    loss = matryoshka_loss(z, ms, target_cos=tc)
                else:
                    loss = matryoshka_loss(z, ms, labels=codes[b].to(dev), heads=heads)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                bar.update(task, advance=1, loss=f"{float(loss.detach()):.4f}")
    model.eval()
    model.dims_ = ms
    model.objective_ = objective
    return model.cpu()


def save_adapter(model: MatryoshkaAdapter, path: str | Path, *, meta: dict[str, Any] | None = None) -> Path:
    """Write the adapter as safetensors; its config (kind, dim, hidden, dims, objective, `meta`) in the header."""
    from repscope.tensorfile import save_tensors

    config = {"kind": model.kind, "dim": model.dim, "hidden": model.hidden, "dims": list(getattr(model, "dims_", [])),
              "objective": getattr(model, "objective_", None), **(meta or {})}
    return save_tensors(path, dict(model.state_dict()),
                        metadata={"repscope_adapter": json.dumps(config, default=str)})


def load_adapter(path: str | Path) -> MatryoshkaAdapter:
    """Read an adapter written by `save_adapter` (safetensors only; never unpickles)."""
    from safetensors import SafetensorError, safe_open

    from repscope.tensorfile import load_state

    p = Path(path)
    if not p.is_file():
        raise StoreError(f"adapter file '{p}' not found; train one with `repscope adapter train`")
    try:
        with safe_open(str(p), framework="pt") as f:
            config = json.loads((f.metadata() or {})["repscope_adapter"])
            tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except (KeyError, ValueError, OSError, SafetensorError) as err:
        raise StoreError(f"'{p}' is not a repscope adapter ({type(err).__name__}); train one with "
                         "`repscope adapter train`") from None
    try:
        model = MatryoshkaAdapter(int(config["dim"]), kind=config["kind"], hidden=int(config["hidden"]))
    except (KeyError, TypeError, ValueError) as err:
        if isinstance(err, RepscopeError):  # a config the adapter refuses names the problem itself
            raise
        raise StoreError(f"adapter '{p}' has a damaged config ({type(err).__name__}: {str(err)[:120]}); restore it "
                         "from a copy or train it again") from None
    load_state(model, tensors, p, "adapter")
    model.dims_ = config.get("dims")
    model.objective_ = config.get("objective")
    model.config_ = config
    return model.eval()
