"""SimCLR training throughput: repscope.learn.SimCLR vs lightly's NTXentLoss, same encoder, in a plain torch loop.

Both sides train the same small ConvNet (repscope's ConvEncoder + projection head, identical initial weights) on the
same uint8 images with the same views (`SimCLR.view`: lightly's own transforms need torchvision), batch
size, Adam and thread count, so the difference is repscope's training loop + `nt_xent` against a bare loop +
lightly's `NTXentLoss`. Prints samples/s of both (best of `--rounds` interleaved rounds, which damps noise from other
processes), the ratio (goal ≥ 1×), and |loss_repscope − loss_lightly| and the largest gradient difference on one
fixed batch (goal ≤ 1e-5).

lightly 1.6.0 is installed without its dependencies (`pip install --no-deps lightly==1.6.0`): it requires torchvision,
and no torchvision build imports beside this torch wheel. Without lightly only repscope's side runs.
Run: python benchmarks/learn.py [--epochs 2 --rounds 3 --threads 1]
"""

from __future__ import annotations

import argparse
import copy
import importlib
import importlib.util
import sys
import time
import types

import numpy as np
import torch


def load_lightly_ntxent() -> type[torch.nn.Module] | None:
    """lightly's `NTXentLoss` class from its unchanged source, or None when lightly is not installed.

    Why not `from lightly.loss import NTXentLoss`: importing `lightly.loss` runs `lightly/__init__.py` and
    `lightly/loss/__init__.py`, which import torchvision (transforms, models) — not installable beside our torch.
    The loss module itself needs only torch plus `lightly.models.modules.memory_bank` and `lightly.utils.dist`
    (torch only). So we put bare package modules for `lightly`, `lightly.loss`, `lightly.models`,
    `lightly.models.modules` and `lightly.utils` into `sys.modules` (their `__path__` points at the installed folders,
    their `__init__.py` is never run) and let the normal import system load `ntx_ent_loss.py`, `memory_bank.py` and
    `dist.py` under their real names. `memory_bank.py` also does `from lightly.models import utils`, whose real
    module imports `torchvision.ops` at the top; it is registered as an empty module: memory_bank only calls
    `utils.concat_all_gather` when gathering across processes with a memory bank, which this benchmark (size 0, one
    process) never does — calling it would raise AttributeError, not silently change the loss.
    The extra `sys.modules` entries are removed again afterwards; the loaded class keeps its module globals.
    """
    spec = importlib.util.find_spec("lightly")  # locates the package without executing lightly/__init__.py
    if spec is None or not spec.submodule_search_locations:
        return None
    root = list(spec.submodule_search_locations)[0]
    before = set(sys.modules)
    try:
        for name in ("lightly", "lightly.loss", "lightly.models", "lightly.models.modules", "lightly.utils"):
            pkg = types.ModuleType(name)
            pkg.__path__ = [root + "/" + name.partition(".")[2].replace(".", "/")] if "." in name else [root]
            sys.modules[name] = pkg
        sys.modules["lightly.models.utils"] = types.ModuleType("lightly.models.utils")  # needs torchvision; unused
        sys.modules["lightly.models"].utils = sys.modules["lightly.models.utils"]  # type: ignore[attr-defined]
        return importlib.import_module("lightly.loss.ntx_ent_loss").NTXentLoss
    finally:
        for name in set(sys.modules) - before:
            del sys.modules[name]


def _plain_loop(model, data: torch.Tensor, loss_fn, *, epochs: int, batch_size: int, lr: float, seed: int) -> None:
    """The plain torch loop: per epoch a seeded shuffle, two views per batch, encoder + head, loss, Adam step."""
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for epoch in range(epochs):
        g = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(len(data), generator=g)
        for i in range(0, len(data), batch_size):
            x = data[order[i:i + batch_size]]
            z1 = model.head(model.encoder(model.view(x, g)))  # the learner's augmentation, no training-loop code
            z2 = model.head(model.encoder(model.view(x, g)))
            loss = loss_fn(z1, z2)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()


def loss_agreement(model, ntxent_cls, x: torch.Tensor, temperature: float) -> tuple[float, float, float]:
    """(repscope loss, |Δloss|, max |Δ∂loss/∂z|) of `nt_xent` vs lightly's loss on one fixed batch of projections."""
    from repscope.learn import image_view, nt_xent

    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        z1, z2 = model.head(model.encode(image_view(x, g))), model.head(model.encode(image_view(x, g)))
    out = []
    for fn in (lambda a, b: nt_xent(a, b, temperature), ntxent_cls(temperature=temperature)):
        a, b = z1.clone().requires_grad_(True), z2.clone().requires_grad_(True)
        loss = fn(a, b)
        loss.backward()
        out.append((float(loss.detach()), torch.cat([a.grad, b.grad])))
    (ours, g_ours), (theirs, g_theirs) = out
    return ours, abs(ours - theirs), float((g_ours - g_theirs).abs().max())


def loss_only_seconds(ntxent_cls, batch: int, temperature: float, dim: int = 32, calls: int = 200) -> dict[str, float]:
    """Seconds per forward + backward of each loss alone on random projections (median of 5 blocks of `calls`)."""
    from repscope.learn import nt_xent

    g = torch.Generator().manual_seed(0)
    z1, z2 = (torch.randn(batch, dim, generator=g).requires_grad_(True) for _ in range(2))
    fns = {"repscope": lambda a, b: nt_xent(a, b, temperature), "lightly": ntxent_cls(temperature=temperature)}
    out = {}
    for name, fn in fns.items():
        blocks = []
        for _ in range(5):
            t0 = time.perf_counter()
            for _ in range(calls):
                fn(z1, z2).backward()
            blocks.append((time.perf_counter() - t0) / calls)
        out[name] = float(np.median(blocks))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024, help="training images (32×32 RGB)")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--epochs", type=int, default=2, help="epochs per timed round")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved timing rounds (best of each side is kept)")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--temperature", type=float, default=0.5)
    args = ap.parse_args()
    from repscope.learn import SimCLR
    from repscope.threads import limit_threads

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n, 32, 32, 3), dtype=np.uint8)
    cfg = {"latents": 128, "batch_size": args.batch, "lr": 1e-3, "temperature": args.temperature, "seed": 0,
           "progress": False, "device": "cpu", "threads": args.threads}
    init = SimCLR(epochs=0, **cfg).fit(images)  # built and data-initialised; both sides start from these weights
    data = init.preprocess(images)
    ntxent_cls = load_lightly_ntxent()
    if ntxent_cls is None:
        print("lightly not installed (pip install --no-deps lightly==1.6.0); only repscope's side runs")
    best = {"repscope": 0.0, "lightly": 0.0}

    def run_ours() -> None:
        ours = copy.deepcopy(init)
        ours.epochs = args.epochs
        t0 = time.perf_counter()
        ours.fit(images)  # the learner's own loop: preprocessing, seeded shuffles/views, finite checks, history
        best["repscope"] = max(best["repscope"], args.n * args.epochs / (time.perf_counter() - t0))

    def run_theirs() -> None:
        theirs = copy.deepcopy(init)
        t0 = time.perf_counter()
        _plain_loop(theirs, data, ntxent_cls(temperature=args.temperature), epochs=args.epochs,
                    batch_size=args.batch, lr=1e-3, seed=0)
        best["lightly"] = max(best["lightly"], args.n * args.epochs / (time.perf_counter() - t0))

    with limit_threads(args.threads):
        for r in range(args.rounds):  # alternate which side goes first, so neither always gets a warmer machine
            for side in ((run_ours, run_theirs) if r % 2 == 0 else (run_theirs, run_ours)):
                if side is run_ours or ntxent_cls is not None:
                    side()
    print(f"repscope SimCLR.fit: {best['repscope']:,.0f} samples/s ({args.threads} thread(s), batch {args.batch}, "
          f"32×32×3, best of {args.rounds})")
    if ntxent_cls is None:
        return
    temps = sorted({args.temperature, 0.1, 0.2, 0.5})
    checks = [loss_agreement(init, ntxent_cls, data[: args.batch], t) for t in temps]
    loss = checks[temps.index(args.temperature)][0]
    dloss, dgrad = max(c[1] for c in checks), max(c[2] for c in checks)
    with limit_threads(args.threads):
        per_call = loss_only_seconds(ntxent_cls, args.batch, args.temperature)
    print(f"lightly NTXentLoss plain loop: {best['lightly']:,.0f} samples/s; ratio repscope/lightly "
          f"{best['repscope'] / best['lightly']:.2f}× (goal ≥ 1)")
    print(f"loss alone (forward + backward, batch {args.batch}, dim {init.proj_dim}): nt_xent "
          f"{per_call['repscope'] * 1e6:,.0f} µs, lightly {per_call['lightly'] * 1e6:,.0f} µs")
    print(f"fixed batch: loss {loss:.6f} at τ = {args.temperature}; over τ ∈ {temps}: max |Δloss| {dloss:.2e}, "
          f"max |Δgrad| {dgrad:.2e} "
          f"({'ok' if dloss <= 1e-5 else 'FAIL'}: goal ≤ 1e-5)")
    if dloss > 1e-5:
        sys.exit("nt_xent and lightly's NTXentLoss disagree on a fixed batch")


if __name__ == "__main__":
    main()
