"""TopK SAE training, repscope vs SAELens, side by side on CPU in one process.

Same data, same width (d = 384, 16× expansion = 6144 latents, k = 32), same batch size, same number of steps, same
Adam learning rate (constant, no warm-up or decay for either), same b_dec init (geometric median), same input
normalisation (data pre-scaled so E‖x‖² = d, so repscope's own scaling is the identity). SAELens runs its own
`TopKTrainingSAE.training_forward_pass` inside a loop that copies its trainer's step (backward, grad-norm clip 1.0,
Adam step); repscope runs `SAE.fit`, timed including its own init (scales, geometric median).

Printed: training samples/s of each and the ratio (goal ≥ 1×), and held-out FVU at equal L0 (both are TopK with
the same k, so L0 = 32 for both; goal: repscope ≤ SAELens).

Data: final-layer masked-mean MiniLM embeddings of SST-2 (2,000 train sentences for training, the 872 dev sentences
held out), read from tests/.cache when the test fixture has cached them, else extracted here (needs ../shared);
without shared data it falls back to planted superposition in d = 384 and says so.

Run: .venv/bin/python benchmarks/sae.py [--steps 60] [--batch 1024]
"""

from __future__ import annotations

import argparse
import math
import os
import time
from pathlib import Path

import numpy as np
import torch

D, EXPANSION, K = 384, 16, 32


def load_data() -> tuple[np.ndarray, np.ndarray, str]:
    """(train, held-out, description)."""
    cache = Path(__file__).resolve().parents[1] / "tests" / ".cache" / "minilm_sst2_2000.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return z["X_train"], z["X_test"], "MiniLM SST-2 (cached test fixture)"
    from repscope.paths import shared_data

    tr, dv = shared_data("text", "sst2", "train.tsv"), shared_data("text", "sst2", "dev.tsv")
    if tr is not None and dv is not None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from repscope.extract.pooling import pool
        from repscope.sources.datasets import load_tsv_text
        from repscope.sources.zoo.minilm import load_minilm

        model = load_minilm(device="cpu")

        def feats(texts: list[str]) -> np.ndarray:
            out = []
            for i in range(0, len(texts), 64):
                raw, mask = model.run(texts[i : i + 64], ["encoder.layer.5"])
                out.append(pool(raw["encoder.layer.5"], "masked-mean", mask).float().numpy())
            return np.concatenate(out)

        return (feats(load_tsv_text(tr, limit=2000).samples["text"].tolist()),
                feats(load_tsv_text(dv).samples["text"].tolist()), "MiniLM SST-2 (extracted now)")
    g = torch.Generator().manual_seed(0)
    F = torch.randn(4096, D, generator=g)
    F /= F.norm(dim=1, keepdim=True)
    c = torch.rand(2872, 4096, generator=g) * (torch.rand(2872, 4096, generator=g) < 24 / 4096)
    X = (c @ F).numpy().astype(np.float32)
    return X[:2000], X[2000:], "planted superposition (no shared data)"


def fvu(x: torch.Tensor, xh: torch.Tensor) -> float:
    x, xh = x.double(), xh.double()
    return float((x - xh).pow(2).sum() / (x - x.mean(0)).pow(2).sum())


def run_saelens(Xtr: torch.Tensor, Xte: torch.Tensor, steps: int, batch: int, lr: float, b_dec: torch.Tensor,
                order: list[torch.Tensor]) -> dict[str, float]:
    from sae_lens.saes.sae import TrainStepInput
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    torch.manual_seed(0)
    cfg = TopKTrainingSAEConfig(d_in=D, d_sae=D * EXPANSION, k=K, dtype="float32", device="cpu")
    sae = TopKTrainingSAE(cfg)
    with torch.no_grad():
        sae.b_dec.copy_(b_dec)
    opt = torch.optim.Adam(sae.parameters(), lr=lr, betas=(0.9, 0.999))
    since_fired = torch.zeros(cfg.d_sae)
    t0 = time.perf_counter()
    for step in range(steps):
        x = order[step]
        sae.train()
        out = sae.training_forward_pass(TrainStepInput(
            sae_in=x, coefficients={}, dead_neuron_mask=(since_fired > 1000).bool(), n_training_steps=step,
            is_logging_step=False))
        with torch.no_grad():
            fired = out.feature_acts.bool().float().sum(-2).bool()
            since_fired += 1
            since_fired[fired] = 0
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(sae.parameters(), 1.0)
        opt.step()
        opt.zero_grad()
    secs = time.perf_counter() - t0
    sae.eval()
    with torch.no_grad():
        z = sae.encode(Xte)
        xh = sae.decode(z)
        train_fvu = fvu(Xtr, sae.decode(sae.encode(Xtr)))
    return {"samples_per_s": steps * batch / secs, "seconds": secs, "fvu": fvu(Xte, xh),
            "l0": float((z != 0).sum(-1).float().mean()), "train_fvu": train_fvu}


def run_repscope(Xtr: torch.Tensor, Xte: torch.Tensor, steps: int, batch: int, lr: float) -> dict[str, float]:
    from repscope.dictionary.sae import SAE

    est = SAE(arch="topk", k=K, expansion=EXPANSION, batch_size=batch, n_steps=steps, lr=lr, warmup_steps=0,
              decay_frac=0.0, dead_after=1000 * batch, device="cpu", seed=0)
    t0 = time.perf_counter()
    est.fit(Xtr)
    secs = time.perf_counter() - t0
    z = est.transform(Xte)
    return {"samples_per_s": steps * batch / secs, "seconds": secs, "fvu": fvu(Xte, est.inverse_transform(z)),
            "l0": float((z != 0).sum(-1).float().mean()), "train_fvu": fvu(Xtr, est.reconstruct(Xtr))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=60)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: leave as is)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    try:
        import sae_lens
    except ImportError:
        print("SAELens is not installed (pip install sae-lens); nothing to compare against")
        return
    Xtr_np, Xte_np, desc = load_data()
    # one shared normalisation so E‖x‖² = d for both libraries
    scale = math.sqrt(D / float((Xtr_np.astype(np.float64) ** 2).sum(1).mean()))
    Xtr = torch.from_numpy(Xtr_np * scale).float()
    Xte = torch.from_numpy(Xte_np * scale).float()

    from repscope.dictionary.stream import ArraySource, ShuffledChunkStream
    from repscope.dictionary.train import geometric_median

    # SAELens sees exactly the batches repscope's stream produces (same order, same rows)
    stream = ShuffledChunkStream(ArraySource(Xtr), seed=0)
    order = [stream.batch(s, args.batch)[0] for s in range(args.steps)]
    b_dec = geometric_median(stream.rows(0, min(8192, stream.n_kept))[0]).float()
    print(f"data: {desc}; train {tuple(Xtr.shape)}, held-out {tuple(Xte.shape)}; TopK d={D} m={D * EXPANSION} "
          f"k={K}; batch {args.batch}, {args.steps} steps, lr {args.lr}; torch {torch.__version__} "
          f"({torch.get_num_threads()} threads); SAELens {sae_lens.__version__}")
    run_repscope(Xtr, Xte, 2, args.batch, args.lr)  # warm-up (lazy kernel/allocator init), untimed
    run_saelens(Xtr, Xte, 2, args.batch, args.lr, b_dec, order)
    ours = run_repscope(Xtr, Xte, args.steps, args.batch, args.lr)
    theirs = run_saelens(Xtr, Xte, args.steps, args.batch, args.lr, b_dec, order)
    for name, r in (("repscope", ours), ("SAELens", theirs)):
        print(f"{name:9s} {r['samples_per_s']:9.0f} samples/s ({r['seconds']:.1f}s)  held-out FVU {r['fvu']:.4f} "
              f"at L0 {r['l0']:.1f} (train FVU {r['train_fvu']:.4f})")
    print(f"samples/s ratio repscope/SAELens: {ours['samples_per_s'] / theirs['samples_per_s']:.2f}x (goal >= 1)")
    print(f"FVU at equal L0 ({ours['l0']:.0f} vs {theirs['l0']:.0f}): repscope {ours['fvu']:.4f} vs SAELens "
          f"{theirs['fvu']:.4f} (goal: repscope <= SAELens)")


if __name__ == "__main__":
    main()
