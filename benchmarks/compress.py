"""Packed-binary Hamming top-10 search: repscope.compress.hamming_topk vs faiss IndexBinaryFlat, one process.

10k queries × 100k codes of 384 bits (defaults); prints both times, the ratio and whether the results are identical
(distances everywhere; indices everywhere, since both order ties by database index). Run: python benchmarks/compress.py
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--queries", type=int, default=10_000)
    ap.add_argument("--codes", type=int, default=100_000)
    ap.add_argument("--bits", type=int, default=384)
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    import faiss

    from repscope.compress.search import _numba_kernel, hamming_topk, hamming_topk_torch

    rng = np.random.default_rng(0)
    nb = args.bits // 8
    db = rng.integers(0, 256, size=(args.codes, nb), dtype=np.uint8)
    q = rng.integers(0, 256, size=(args.queries, nb), dtype=np.uint8)
    hamming_topk(q[:10], db[:1000], args.k, device="cpu")  # compile the kernel outside the timing
    index = faiss.IndexBinaryFlat(args.bits)
    index.add(db)
    ours_t, faiss_t = [], []
    for _ in range(args.repeats):
        t = time.perf_counter()
        d_ours, i_ours = hamming_topk(q, db, args.k, device="cpu")
        ours_t.append(time.perf_counter() - t)
        t = time.perf_counter()
        d_f, i_f = index.search(q, args.k)
        faiss_t.append(time.perf_counter() - t)
    same_d = bool((d_ours.numpy() == d_f).all())
    same_i = bool((i_ours.numpy() == i_f).all())
    print(f"hamming top-{args.k}: {args.queries} queries x {args.codes} codes x {args.bits} bits, "
          f"threads: faiss {faiss.omp_get_max_threads()}")
    print(f"repscope {min(ours_t):.3f}s  faiss IndexBinaryFlat {min(faiss_t):.3f}s  "
          f"ratio {min(ours_t) / min(faiss_t):.2f}x  identical distances {same_d}  identical indices {same_i}  "
          f"(kernel: {'numba popcount' if _numba_kernel() is not None else 'torch ±1 matmul'})")
    m = min(1000, args.queries)  # the torch fallback (no numba / CUDA path) on a subset, for reference
    t = time.perf_counter()
    d_t, i_t = hamming_topk_torch(q[:m], db, args.k, device="cpu")
    sec = time.perf_counter() - t
    f_sub = min(faiss_t) * m / args.queries
    print(f"torch ±1-matmul fallback on {m} queries: {sec:.3f}s  ratio vs faiss (scaled) {sec / f_sub:.2f}x  "
          f"identical {bool((d_t.numpy() == d_f[:m]).all() and (i_t.numpy() == i_f[:m]).all())}")


if __name__ == "__main__":
    main()
