"""SimCLR training throughput: repscope.learn.SimCLR's step vs lightly's NTXentLoss in a plain torch loop, one process.

Same small ConvNet (repscope's ConvEncoder + projection head), same pre-computed views, same optimizer; prints
samples/s of both, the ratio, and |loss_repscope − loss_lightly| on one fixed batch (goal ≤ 1e-5). lightly is only
in the `bench` extra; without it only repscope's side runs. Run: python benchmarks/learn.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def _time(step, batches: list[tuple[torch.Tensor, torch.Tensor]], repeats: int) -> float:
    step(*batches[0])  # warm-up
    t0 = time.perf_counter()
    for _ in range(repeats):
        for v1, v2 in batches:
            step(v1, v2)
    return repeats * sum(len(v1) for v1, _ in batches) / (time.perf_counter() - t0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=1024)
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--temperature", type=float, default=0.5)
    args = ap.parse_args()
    from repscope.learn import SimCLR, image_view, nt_xent

    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, size=(args.n, 32, 32, 3), dtype=np.uint8)
    model = SimCLR(latents=128, epochs=0, progress=False, device="cpu", temperature=args.temperature).fit(images)
    x = model.preprocess(images)
    g = torch.Generator().manual_seed(0)
    batches = [(image_view(x[i:i + args.batch], g), image_view(x[i:i + args.batch], g))
               for i in range(0, args.n, args.batch)]
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def make_step(loss_fn):
        def step(v1: torch.Tensor, v2: torch.Tensor) -> float:
            loss = loss_fn(model.head(model.encode(v1)), model.head(model.encode(v2)))
            opt.zero_grad()
            loss.backward()
            opt.step()
            return float(loss.detach())
        return step

    ours = _time(make_step(lambda a, b: nt_xent(a, b, args.temperature)), batches, args.repeats)
    print(f"repscope SimCLR step: {ours:,.0f} samples/s")
    try:
        from lightly.loss import NTXentLoss
    except ImportError:
        print("lightly not installed (pip install 'repscope[bench]'); comparison skipped")
        return
    lightly_loss = NTXentLoss(temperature=args.temperature)
    theirs = _time(make_step(lightly_loss), batches, args.repeats)
    with torch.no_grad():
        z1, z2 = model.head(model.encode(batches[0][0])), model.head(model.encode(batches[0][1]))
        diff = abs(float(nt_xent(z1, z2, args.temperature)) - float(lightly_loss(z1, z2)))
    print(f"lightly NTXentLoss loop: {theirs:,.0f} samples/s; ratio repscope/lightly {ours / theirs:.2f}×; "
          f"|Δloss| on a fixed batch {diff:.2e}")


if __name__ == "__main__":
    main()
