"""Benchmark: repscope TwoNN vs scikit-dimension's TwoNN at n = 20,000, d = 384, in one process.

Data: a 12-dimensional latent pushed through a random two-layer tanh map into 384-D (a curved 12-d manifold) plus
a little isotropic noise, so the matrix is full rank like real embeddings; and a planted 5-d linear subspace at the
same size; and an isotropic Gaussian, the worst case for repscope's lower-bound screen (it is skipped and the
search is brute force). Real data rows, when ../shared is present: MiniLM sentence embeddings (d = 384) of n shared
sentences, and MNIST pixels. Both libraries get the same thread count (`--threads`, default 1: on a shared,
oversubscribed CPU the threaded BLAS/LAPACK paths are erratic). Prints wall and CPU seconds, the time ratio
(goal ≥ 5× faster) and the relative difference of the estimates (goal ≤ 2%).
"""

from __future__ import annotations

import argparse
import time

import numpy as np


def make_manifold(n: int, d: int, latent: int, seed: int = 0) -> np.ndarray:
    """Curved `latent`-dimensional manifold in R^d: tanh(z W₁) W₂, z ~ U[-1, 1]^latent."""
    rng = np.random.default_rng(seed)
    z = rng.uniform(-1, 1, (n, latent))
    h = np.tanh(z @ rng.standard_normal((latent, 64)))
    return (h @ rng.standard_normal((64, d)) + 0.05 * rng.standard_normal((n, d))).astype(np.float32)


def make_subspace(n: int, d: int, k: int, seed: int = 1) -> np.ndarray:
    """Gaussian in a random k-dimensional linear subspace of R^d."""
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, k)))[0]
    return (rng.standard_normal((n, k)) @ basis.T).astype(np.float32)


def make_isotropic(n: int, d: int, seed: int = 2) -> np.ndarray:
    """Standard Gaussian in R^d: no low-dimensional structure at all."""
    return np.random.default_rng(seed).standard_normal((n, d)).astype(np.float32)


def load_mnist() -> np.ndarray | None:
    """Real data: the 5000 MNIST test digits in ../shared (pixels as 784-d float32 rows), or None if absent."""
    from repscope.paths import shared_data

    path = shared_data("images", "mnist_test_a.npz")
    if path is None:
        return None
    with np.load(path) as z:
        return (z["images"].reshape(len(z["images"]), -1) / 255.0).astype(np.float32)


def load_minilm_embeddings(n: int) -> np.ndarray | None:
    """Real data: MiniLM sentence embeddings of the first n distinct sentences of the shared SST-2, SST-5, TREC and
    STS-B files (about 31k exist), cached in benchmarks/.cache; None if the data or the text extra is missing."""
    from pathlib import Path

    from repscope.paths import shared_data
    from repscope.sources.datasets import read_tsv

    cache = Path(__file__).parent / ".cache" / f"minilm_sentences_{n}.npy"
    if cache.exists():
        return np.load(cache, allow_pickle=False)
    root = shared_data("text")
    if root is None:
        return None
    seen: dict[str, None] = {}
    for f in sorted(root.glob("*/*.tsv")):
        df = read_tsv(f, ())
        cols = [c for c in ("text", "sentence1", "sentence2") if c in df.columns]
        seen.update(dict.fromkeys(t for row in df[cols].itertuples(index=False) for t in row if t))  # row order
    texts = list(seen)[:n]
    if len(texts) < n:
        return None
    try:
        from sentence_transformers import SentenceTransformer

        from repscope.sources.zoo.minilm import minilm_path
    except ImportError:
        return None
    print(f"(encoding {n} sentences with MiniLM once; cached in {cache.parent})", flush=True)
    emb = SentenceTransformer(str(minilm_path()), device="cpu").encode(texts, batch_size=128).astype(np.float32)
    cache.parent.mkdir(exist_ok=True)
    np.save(cache, emb)
    return emb


def _timed(fn):
    t, c = time.perf_counter(), time.process_time()
    v = fn()
    return v, time.perf_counter() - t, time.process_time() - c


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--d", type=int, default=384)
    ap.add_argument("--device", default="cpu", help="repscope device; skdim is CPU only")
    ap.add_argument("--threads", type=int, default=1, help="threads for both (torch and BLAS); 0 = leave defaults")
    args = ap.parse_args()

    import skdim
    import torch
    from threadpoolctl import threadpool_limits

    if args.threads:
        torch.set_num_threads(args.threads)
        threadpool_limits(args.threads)

    from repscope.geometry.intrinsic import twonn_dimension

    twonn_dimension(make_subspace(500, 16, 3), device=args.device)  # warm-up (thread pools, allocator)
    print(f"TwoNN, n={args.n}, d={args.d}, repscope device={args.device}, threads={args.threads or 'default'}")
    print(f"{'data':22s} {'repscope wall/cpu s':>19s} {'skdim wall/cpu s':>17s} {'speedup wall/cpu':>16s} "
          f"{'repscope_id':>11s} {'skdim_id':>9s} {'rel_diff':>9s}")
    cases = [("noisy manifold, ID≈12", make_manifold(args.n, args.d, 12)),
             ("subspace k=5", make_subspace(args.n, args.d, 5)),
             ("isotropic Gaussian", make_isotropic(args.n, args.d))]
    minilm = load_minilm_embeddings(args.n)
    if minilm is not None:
        cases.append((f"MiniLM sentences {args.n // 1000}k", minilm))
    mnist = load_mnist()
    if mnist is not None:
        cases.append(("MNIST pixels 5000x784", mnist))
    for name, x in cases:
        ours, w_ours, c_ours = _timed(lambda x=x: twonn_dimension(x, device=args.device))
        ref, w_ref, c_ref = _timed(lambda x=x: skdim.id.TwoNN().fit(x).dimension_)
        rel = abs(ours - ref) / abs(ref)
        speed = f"{w_ref / w_ours:.1f}x/{c_ref / c_ours:.1f}x"
        print(f"{name:22s} {w_ours:9.2f}/{c_ours:<9.2f} {w_ref:8.2f}/{c_ref:<8.2f} {speed:>16s} "
              f"{ours:11.4f} {ref:9.4f} {rel:9.2e}", flush=True)
    print("goals: speedup >= 5x, rel_diff <= 2e-2")


if __name__ == "__main__":
    main()
