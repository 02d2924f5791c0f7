"""Training loop for dictionary modules: bias init, LR warm-up/decay, unit-norm decoder, dead-latent tracking,
AuxK, resumable safetensors checkpoints and a Rich progress bar (loss, L0, dead fraction)."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from repscope.dictionary.checkpoint import (
    load_tensors,
    load_trainer_state,
    read_config,
    save_module,
    save_trainer_state,
)
from repscope.dictionary.modules import DictionaryModule
from repscope.dictionary.stream import ShuffledChunkStream
from repscope.errors import ConfigError
from repscope.tensorfile import load_state


@dataclass
class TrainConfig:
    """Training hyper-parameters (everything that must match for an exact resume)."""

    n_steps: int
    batch_size: int = 4096
    lr: float = 1e-3
    warmup_steps: int = 0
    decay_frac: float = 0.2
    seed: int = 0
    buffer_rows: int = 65536
    holdout_every: int = 0
    bias_init: str = "geometric_median"
    normalize: bool = True
    dead_after: int = 1_000_000
    init_rows: int = 8192
    adam_betas: tuple[float, float] = (0.9, 0.999)
    decoder_lr_scale: float = 3.0


def lr_at(step: int, cfg: TrainConfig) -> float:
    """Linear warm-up over `warmup_steps`, constant, then linear decay to 0 over the last `decay_frac` of steps."""
    warm = min(1.0, (step + 1) / cfg.warmup_steps) if cfg.warmup_steps > 0 else 1.0
    decay_steps = int(cfg.decay_frac * cfg.n_steps)
    start = cfg.n_steps - decay_steps
    dec = 1.0 if decay_steps <= 0 or step < start else max(0.0, (cfg.n_steps - step) / decay_steps)
    return cfg.lr * warm * dec


def geometric_median(x: Tensor, n_iter: int = 100, eps: float = 1e-8) -> Tensor:
    """Geometric median argmin_m Σ_i ‖x_i − m‖ by Weiszfeld's algorithm (float64), started at the mean."""
    x = x.to(torch.float64)
    m = x.mean(0)
    for _ in range(n_iter):
        w = 1.0 / (x - m).norm(dim=1).clamp_min(eps)
        new = (w[:, None] * x).sum(0) / w.sum()
        if (new - m).norm() <= 1e-10 * (1 + m.norm()):
            m = new
            break
        m = new
    return m


@torch.no_grad()
def initialize(module: DictionaryModule, stream: ShuffledChunkStream, cfg: TrainConfig, device: torch.device) -> None:
    """Set input/output scales (E‖x·s‖² = d) and the biases (geometric median or mean) from the first stream rows."""
    x, y = stream.rows(0, min(cfg.init_rows, stream.n_kept))
    x = x.to(device, torch.float64)
    y = y.to(device, torch.float64) if y is not None else x
    if cfg.normalize:
        module.in_scale.fill_(math.sqrt(module.d_in / float(x.pow(2).sum(-1).mean().clamp_min(1e-12))))
        module.out_scale.fill_(math.sqrt(module.d_out / float(y.pow(2).sum(-1).mean().clamp_min(1e-12))))
    if cfg.bias_init not in ("geometric_median", "mean", "zero"):
        raise ConfigError(f"unknown bias_init '{cfg.bias_init}'; use geometric_median, mean or zero")

    def centre(v: Tensor) -> Tensor:
        if cfg.bias_init == "geometric_median":
            return geometric_median(v)
        if cfg.bias_init == "mean":
            return v.mean(0)
        return torch.zeros(v.shape[1], dtype=v.dtype, device=v.device)

    module.b_dec.copy_(centre(y * module.out_scale).to(module.b_dec.dtype))
    if module.transcoder:
        module.b_in.copy_(centre(x * module.in_scale).to(module.b_in.dtype))


class Trainer:
    """Runs `cfg.n_steps` Adam steps of `module` over `stream`, checkpointing to `checkpoint_dir` when asked."""

    def __init__(self, module: DictionaryModule, stream: ShuffledChunkStream, cfg: TrainConfig,
                 device: torch.device, checkpoint_dir: str | Path | None = None, checkpoint_every: int = 0,
                 meta: dict[str, Any] | None = None, progress: bool = False, log_every: int = 10):
        self.module, self.stream, self.cfg, self.device = module, stream, cfg, device
        self.checkpoint_dir = Path(checkpoint_dir) if checkpoint_dir else None
        self.checkpoint_every = int(checkpoint_every)
        self.meta = meta or {}
        self.progress, self.log_every = progress, max(1, int(log_every))
        dec = [module.W_dec] if module.unit_norm_decoder else []
        rest = [p for p in module.parameters() if all(p is not q for q in dec)]
        groups = [{"params": rest, "lr_scale": 1.0}]
        if dec:
            groups.append({"params": dec, "lr_scale": cfg.decoder_lr_scale})
        self.optimizer = torch.optim.Adam(groups, lr=cfg.lr, betas=tuple(cfg.adam_betas))
        self.since_fired = torch.zeros(module.n_latents, dtype=torch.long, device=device)
        self.step = 0
        self.history: list[dict[str, float]] = []

    # ---- checkpoints ---------------------------------------------------------------------------------------------
    def save(self, directory: Path | None = None, final: bool = False) -> Path:
        d = directory or self.checkpoint_dir
        assert d is not None
        meta = {**self.meta, "train": asdict(self.cfg), "step": self.step, "complete": final,
                "history": self.history[-200:]}
        save_module(d, self.module, meta)
        save_trainer_state(d, self.optimizer, {"since_fired": self.since_fired,
                                               "torch_rng": torch.get_rng_state()})
        return d

    def can_resume(self) -> bool:
        d = self.checkpoint_dir
        return bool(d and (d / "config.json").is_file() and (d / "trainer.safetensors").is_file())

    def resume(self) -> None:
        """Load module, optimizer, counters and step from `checkpoint_dir` (training config must match)."""
        assert self.checkpoint_dir is not None
        cfg = read_config(self.checkpoint_dir)
        saved = dict(cfg.get("train", {}))
        mine = asdict(self.cfg)
        keys = ("n_steps", "batch_size", "lr", "seed", "buffer_rows", "holdout_every", "warmup_steps", "decay_frac",
                "decoder_lr_scale")
        for key in keys:
            if key in saved and saved[key] != mine[key]:
                raise ConfigError(f"checkpoint in '{self.checkpoint_dir}' was trained with {key}={saved[key]}, "
                                  f"not {mine[key]}; use the same settings to resume or a new --out directory")
        if cfg["module"] != self.module.config():
            raise ConfigError(f"checkpoint in '{self.checkpoint_dir}' holds a different SAE ({cfg['module']['arch']}, "
                              f"{cfg['module']['n_latents']} latents); use a new --out directory")
        load_state(self.module, load_tensors(self.checkpoint_dir), self.checkpoint_dir / "model.safetensors",
                   "SAE checkpoint")
        extra = load_trainer_state(self.checkpoint_dir, self.optimizer)
        self.since_fired.copy_(extra["since_fired"].to(self.device))
        torch.set_rng_state(extra["torch_rng"])
        self.step = int(cfg["step"])
        self.history = list(cfg.get("history", []))

    # ---- loop ----------------------------------------------------------------------------------------------------
    def train_step(self) -> dict[str, Tensor]:
        m, cfg = self.module, self.cfg
        for g in self.optimizer.param_groups:
            g["lr"] = lr_at(self.step, cfg) * g.get("lr_scale", 1.0)
        x, y = self.stream.batch(self.step, cfg.batch_size)
        x = x.to(self.device)
        y = y.to(self.device) if y is not None else None
        dead = self.since_fired >= cfg.dead_after
        loss, parts = m.loss(x, y, dead=dead)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        m.remove_parallel_grad()
        self.optimizer.step()
        m.normalize_decoder()
        m.after_step(parts)
        fired = (parts["z"] != 0).any(0)
        self.since_fired += x.shape[0]
        self.since_fired[fired] = 0
        self.step += 1
        return parts

    def fit(self, stop_after: int | None = None) -> list[dict[str, float]]:
        """Train until n_steps (or `stop_after` total steps, to simulate an interruption); returns the log."""
        self.module.train()
        end = self.cfg.n_steps if stop_after is None else min(self.cfg.n_steps, int(stop_after))
        bar = _Progress(self.cfg.n_steps, self.step, enabled=self.progress)
        with bar:
            while self.step < end:
                parts = self.train_step()
                if self.step % self.log_every == 0 or self.step == end:
                    rec = {"step": self.step, "loss": float(parts["loss"]),
                           "fvu": float(parts["mse"] / parts["var"].clamp_min(1e-12)),
                           "l0": float((parts["z"] != 0).sum(-1).double().mean()),
                           "dead": float((self.since_fired >= self.cfg.dead_after).double().mean()),
                           "lr": lr_at(self.step - 1, self.cfg)}
                    self.history.append(rec)
                    bar.update(self.step, rec)
                if not torch.isfinite(parts["loss"]):
                    from repscope.errors import NonFiniteError

                    raise NonFiniteError(f"SAE loss became non-finite at step {self.step}; lower the learning rate")
                if self.checkpoint_dir and self.checkpoint_every and self.step % self.checkpoint_every == 0:
                    self.save()
        if self.step >= self.cfg.n_steps:
            n_cal = min(self.cfg.n_steps, max(1, -(-self.stream.n_kept // self.cfg.batch_size)), 64)
            first = self.cfg.n_steps - n_cal
            self.module.after_training(
                (x.to(self.device), None) for x, _ in (self.stream.batch(s, self.cfg.batch_size)
                                                       for s in range(first, self.cfg.n_steps)))
        self.module.eval()
        if self.checkpoint_dir and self.step < self.cfg.n_steps:
            self.save()
        return self.history


class _Progress:
    """Rich progress bar with loss, L0 and dead fraction; a no-op when disabled."""

    def __init__(self, total: int, start: int, enabled: bool):
        self.enabled = enabled
        if enabled:
            from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

            from repscope.cli_common import console

            self.p = Progress(TextColumn("[bold]SAE"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(),
                              TextColumn("{task.fields[info]}"), console=console, transient=False)
            self.task = self.p.add_task("train", total=total, completed=start, info="")

    def __enter__(self) -> _Progress:
        if self.enabled:
            self.p.__enter__()
        return self

    def __exit__(self, *exc: Any) -> None:
        if self.enabled:
            self.p.__exit__(*exc)

    def update(self, step: int, rec: dict[str, float]) -> None:
        if self.enabled:
            info = f"loss {rec['loss']:.4g}  fvu {rec['fvu']:.3f}  L0 {rec['l0']:.1f}  dead {rec['dead']:.1%}"
            self.p.update(self.task, completed=step, info=info)
