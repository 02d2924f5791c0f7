"""Cost of verified reads: store reads and a store-reading analysis, verified vs `RepStore.open(verify=False)`.

A verified open checks the manifest self-checksum and the samples.parquet sha256; a verified chunk read compares the
CRC32C trailer zarr reads (and verifies) with the one recorded at commit. Each timing opens the store afresh, so it
includes the open. Workloads, on a store of L float32 layers × n rows × d (chunks of 1024 rows, in the page cache):
1. read every layer whole (`get`): the worst case, no compute at all;
2. read every layer chunk by chunk (`iter_chunks`);
3. exact streaming linear CKA over all layer pairs (`compare_stores_streaming`, what `compare --streaming` runs);
4. a naive-Bayes probe on every layer (`layer_sweep`, what `repscope probe --probe nb` runs).
Verified and unverified runs alternate (ABBA); each figure is best-of-R verified ÷ best-of-R unverified, with the
median of the R paired ratios beside it. torch runs on `--threads` threads (default 1: less scheduling noise).
Goal: ≤ 1.03. On a busy machine these ratios carry the run-to-run noise, so the script also times the added work
alone: the per-chunk check (as zarr calls it, on one chunk's bytes) against the time to read a chunk.

Run: python benchmarks/verified_reads.py [--n 20000 --d 512 --layers 4 --repeats 9 --threads 1]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from repscope.store import RepStore, write_store


def make_store(root: Path, n: int, d: int, n_layers: int, seed: int = 0) -> Path:
    """A store of `n_layers` related float32 layers (10 classes) written in chunks of 1024 rows."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, n)
    h = rng.normal(size=(10, d))[labels] + rng.normal(size=(n, d))
    layers = {}
    for i in range(n_layers):
        h = np.tanh(h @ (rng.normal(size=(d, d)) / d**0.5)) + 0.3 * rng.normal(size=(n, d))
        layers[f"layer{i}"] = h.astype(np.float32)
    samples = pd.DataFrame({"id": np.arange(n), "label": labels})
    write_store(root, layers, samples=samples, chunk_rows=1024)
    return root


def ab(fn: Callable[[bool], object], repeats: int) -> tuple[float, float, float]:
    """Best times of fn(verify=True) and fn(verify=False), run alternately (ABBA) `repeats` times each, and the
    median of the per-round ratios verified / unverified."""
    times: dict[bool, list[float]] = {True: [], False: []}
    for r in range(repeats):
        for v in ((True, False) if r % 2 == 0 else (False, True)):
            t = time.perf_counter()
            fn(v)
            times[v].append(time.perf_counter() - t)
    ratios = np.array(times[True]) / np.array(times[False])
    return min(times[True]), min(times[False]), float(np.median(ratios))


def workloads(root: Path) -> dict[str, Callable[[bool], object]]:
    """name -> fn(verify) running one workload on a freshly opened store."""
    from repscope.probe.protocols import layer_sweep
    from repscope.similarity.matrix import compare_stores_streaming

    def get_all(v: bool) -> None:
        s = RepStore.open(root, verify=v)
        for la in s.layers:
            s.get(la)

    def chunks(v: bool) -> None:
        s = RepStore.open(root, verify=v)
        for la in s.layers:
            for _ in s.iter_chunks(la):
                pass

    return {
        "read all layers (get)": get_all,
        "read chunk by chunk (iter_chunks)": chunks,
        "streaming linear CKA, all pairs": lambda v: compare_stores_streaming(RepStore.open(root, verify=v),
                                                                              None, "linear_cka", device="cpu"),
        "naive-Bayes probe sweep": lambda v: layer_sweep(RepStore.open(root, verify=v), probes="nb", device="cpu"),
    }


def check_cost(root: Path, repeats: int = 2000) -> tuple[float, float]:
    """(seconds per call of the per-chunk check on one chunk's bytes, seconds per chunk of a verified full read)."""
    from zarr.core.buffer import default_buffer_prototype

    s = RepStore.open(root)
    layer = s.layers[0]
    s.get(layer)  # opens the array (and warms the page cache)
    check = s._chunk_check(layer, "")
    n_chunks = s._n_chunks[s._key(layer)]
    buf = default_buffer_prototype().buffer.from_bytes((root / "arrays" / s._key(layer) / "c" / "1" / "0").read_bytes())
    t = time.perf_counter()
    for _ in range(repeats):
        check(1, buf)
    per_check = (time.perf_counter() - t) / repeats
    best = float("inf")
    for _ in range(20):
        t = time.perf_counter()
        s.get(layer)
        best = min(best, time.perf_counter() - t)
    return per_check, best / n_chunks


def main() -> None:
    """Print verified/unverified time ratios per workload."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--d", type=int, default=512)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=9)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as d:
        root = make_store(Path(d) / "s", args.n, args.d, args.layers)
        mb = args.n * args.d * args.layers * 4 / 2**20
        print(f"store: {args.layers} layers × {args.n} rows × {args.d} float32 ({mb:.0f} MiB), chunks of 1024 rows")
        t_open = ab(lambda v: RepStore.open(root, verify=v), 31)
        print(f"open: verified {t_open[0] * 1e3:.2f} ms, unverified {t_open[1] * 1e3:.2f} ms")
        per_check, per_chunk = check_cost(root)
        print(f"chunk check alone: {per_check * 1e6:.2f} us per chunk = {per_check / per_chunk:.2%} of reading a "
              f"chunk ({per_chunk * 1e3:.3f} ms for {1024 * args.d * 4 / 2**20:.1f} MiB)")
        for name, fn in workloads(root).items():
            fn(True)  # warm-up: page cache, imports
            tv, tu, med = ab(fn, args.repeats)
            print(f"{name}: verified {tv:.3f}s / unverified {tu:.3f}s = {tv / tu:.3f}x, median paired ratio "
                  f"{med:.3f}x (goal <= 1.03)")


if __name__ == "__main__":
    main()
