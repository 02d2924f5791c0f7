"""A small MLP for scikit-learn's digits, trained deterministically by seed (the demo's multi-seed model family)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from repscope.sources.models import state_hash
from repscope.tensorfile import read_tensors, save_tensors
from repscope.threads import limit_threads

DIGITS_LAYERS = ["fc1", "act1", "fc2", "act2", "out"]
TRAIN_THREADS = 1  # training runs on this many torch/BLAS threads on every machine, so a seed gives one set of weights


def build_digits_mlp(hidden: int = 64, seed: int = 0) -> nn.Sequential:
    """64 → hidden → hidden → 10 MLP with named layers fc1, act1, fc2, act2, out; init fixed by `seed`."""
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential()
    model.add_module("fc1", nn.Linear(64, hidden))
    model.add_module("act1", nn.ReLU())
    model.add_module("fc2", nn.Linear(hidden, hidden))
    model.add_module("act2", nn.ReLU())
    model.add_module("out", nn.Linear(hidden, 10))
    with torch.no_grad():
        for m in model:
            if isinstance(m, nn.Linear):
                bound = 1.0 / np.sqrt(m.in_features)
                m.weight.copy_(torch.empty_like(m.weight).uniform_(-bound, bound, generator=g))
                m.bias.copy_(torch.empty_like(m.bias).uniform_(-bound, bound, generator=g))
    return model


def digits_inputs() -> tuple[torch.Tensor, np.ndarray]:
    """Digits pixels scaled to [0, 1] as float32 (1797, 64), and labels (the same data `load_sklearn` gives)."""
    from repscope.sources.datasets import load_sklearn

    ds = load_sklearn("digits")
    return ds.x, ds.samples["label"].to_numpy(dtype=np.int64, copy=True)


def train_digits_mlp(seed: int = 0, epochs: int = 20, hidden: int = 64, train_frac: float = 0.8,
                     lr: float = 1e-2) -> nn.Sequential:
    """Train the digits MLP with Adam on a seed-fixed split (first `train_frac` of a seeded permutation).

    Deterministic on CPU for a given seed: init, split and batch order all come from `seed`, and training runs on
    `TRAIN_THREADS` threads whatever the machine's or the caller's thread count (a CPU matmul or reduction can round
    differently with another thread count, and 20 epochs of Adam turn that into differences of ~1e-3).
    """
    x, y = digits_inputs()
    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(len(x), generator=g)
    tr = perm[: int(train_frac * len(x))]
    model = build_digits_mlp(hidden, seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    yt = torch.as_tensor(y)
    with limit_threads(TRAIN_THREADS):
        for _ in range(epochs):
            order = tr[torch.randperm(len(tr), generator=g)]
            for i in range(0, len(order), 64):
                b = order[i : i + 64]
                opt.zero_grad()
                loss = nn.functional.cross_entropy(model(x[b]), yt[b])
                loss.backward()
                opt.step()
    model.eval()
    model.repscope_name = f"digits_mlp_s{seed}"  # type: ignore[attr-defined]
    model.repscope_hash = state_hash(model)  # type: ignore[attr-defined]
    return model


def save_mlp(model: nn.Module, path: str | Path) -> Path:
    """Save weights as safetensors (never pickle)."""
    return save_tensors(path, dict(model.state_dict()))


def load_mlp(path: str | Path, hidden: int | None = None) -> nn.Sequential:
    """Load a digits MLP saved by `save_mlp`."""
    sd = read_tensors(path, "model")
    model = build_digits_mlp(hidden or sd["fc1.weight"].shape[0])
    model.load_state_dict(sd)
    model.eval()
    model.repscope_name = Path(path).stem  # type: ignore[attr-defined]
    model.repscope_hash = state_hash(model)  # type: ignore[attr-defined]
    return model
