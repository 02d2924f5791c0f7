"""Extraction overhead and memory.

1. repscope `extract` time ÷ a bare `torch.inference_mode` loop over the same batches (same model, same layers
   captured, nothing stored). Goal ≤ 1.05. Model: MiniLM on template sentences (all 7 hidden states, masked-mean).
2. Peak RSS of a fresh process extracting N = 2,000 vs N = 20,000 samples from a wide MLP (3 × 2048-wide layers,
   i.e. 470 MB of activations at 20k if anything accumulated in memory). Goal: within 10%.

Run: python benchmarks/extract_overhead.py [--n-text 1000]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

RSS_CHILD = r"""
import json, resource, sys, tempfile, torch
from torch import nn
from repscope.extract import extract
from repscope.sources.datasets import ArrayDataset
from repscope.sources.models import TorchModuleAdapter
n = int(sys.argv[1])
torch.manual_seed(0)
model = nn.Sequential(nn.Linear(64, 2048), nn.ReLU(), nn.Linear(2048, 2048))
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
x = torch.randn(n, 64)
with tempfile.TemporaryDirectory() as d:
    extract(TorchModuleAdapter(model, device="cpu"), ArrayDataset(x), d + "/s", batch_size=256, chunk_rows=512,
            progress=False)
print(json.dumps({"peak_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, "before_kb": base}))
"""


def bare_loop(adapter, texts: list[str], layers: list[str], batch_size: int) -> float:
    """Tokenize + forward with hidden states over the same batches; nothing pooled or stored."""
    t = time.perf_counter()
    for i in range(0, len(texts), batch_size):
        enc = adapter.tokenize(texts[i : i + batch_size])
        with torch.inference_mode():
            adapter.model(**enc, output_hidden_states=True)
    return time.perf_counter() - t


def overhead(n_text: int, repeats: int = 3) -> dict[str, float]:
    """Best-of-`repeats` times of repscope extract vs the bare loop on MiniLM."""
    from repscope.extract import extract
    from repscope.sources.templates import generate_sentences
    from repscope.sources.zoo.minilm import load_minilm

    adapter = load_minilm(device="cpu")
    ds = generate_sentences(n_text, seed=0)
    texts = ds.samples["text"].tolist()
    layers = adapter.layer_names()
    bare_loop(adapter, texts[:64], layers, 64)  # warm-up
    t_bare, t_rep = [], []
    for _ in range(repeats):
        t_bare.append(bare_loop(adapter, texts, layers, 64))
        with tempfile.TemporaryDirectory() as d:
            t = time.perf_counter()
            extract(adapter, ds, Path(d) / "s", pooling="masked-mean", batch_size=64, chunk_rows=256,
                    progress=False)
            t_rep.append(time.perf_counter() - t)
    return {"bare_s": min(t_bare), "repscope_s": min(t_rep), "ratio": min(t_rep) / min(t_bare)}


def peak_rss(n: int) -> int:
    """Peak RSS (KiB) of a fresh process extracting n samples."""
    out = subprocess.run([sys.executable, "-c", RSS_CHILD, str(n)], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_kb"]


def main() -> None:
    """Print both figures."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n-text", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    o = overhead(args.n_text, args.repeats)
    print(f"extract overhead (MiniLM, {args.n_text} sentences, 7 layers): repscope {o['repscope_s']:.2f}s / "
          f"bare inference_mode loop {o['bare_s']:.2f}s = {o['ratio']:.3f}x (goal <= 1.05)")
    r2, r20 = peak_rss(2_000), peak_rss(20_000)
    print(f"peak RSS (wide MLP, 2 x 2048 layers stored): N=2k {r2 / 1024:.0f} MiB, N=20k {r20 / 1024:.0f} MiB, "
          f"ratio {r20 / r2:.3f} (goal within 10%)")


if __name__ == "__main__":
    main()
