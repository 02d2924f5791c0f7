"""Benchmark: all-layer-pairs CKA, repscope vs pytorch-cka (PyPI `pytorch-cka`, `cka_from_features`).

13 layers × n = 10,000 × d = 768, float32, in memory (override with REPSCOPE_BENCH_N / _D / _L). Prints:
- the time ratio against pytorch-cka on the same features for the same estimator (debiased CKA = its unbiased HSIC);
- the fraction of the sgemm roofline reached by repscope's linear CKA: FLOPs of the needed products
  (all XᵢᵀXⱼ, i ≤ j: 2·n·dᵢ·dⱼ each) ÷ time, over the matmul FLOP/s measured on this box in the same run;
- the time of every registered measure on one layer pair.
pytorch-cka forms all L Gram matrices (L·n² floats, twice); when that does not fit in free memory the anchor is
run through its own `hsic_cross` on one stack of Grams built like its `cka_from_features` (noted in the output).
"""

from __future__ import annotations

import os
import time

import numpy as np
import torch

from repscope.similarity.matrix import similarity_matrices
from repscope.similarity.registry import REGISTRY, get_measure

N = int(os.environ.get("REPSCOPE_BENCH_N", "10000"))
D = int(os.environ.get("REPSCOPE_BENCH_D", "768"))
L = int(os.environ.get("REPSCOPE_BENCH_L", "13"))


def make_layers(n: int = N, d: int = D, n_layers: int = L, seed: int = 0) -> list[torch.Tensor]:
    """A chain of related float32 layers h_{k+1} = tanh(h_k W_k / √d) + noise (so CKA values are non-trivial)."""
    g = torch.Generator().manual_seed(seed)
    h = torch.randn(n, d, generator=g)
    out = []
    for _ in range(n_layers):
        w = torch.randn(d, d, generator=g) / d**0.5
        h = torch.tanh(h @ w * 1.5) + 0.3 * torch.randn(n, d, generator=g)
        out.append(h.float().contiguous())
    return out


def best_time(fn, repeat: int = 1) -> tuple[float, object]:
    best, res = float("inf"), None
    for _ in range(repeat):
        t = time.perf_counter()
        res = fn()
        best = min(best, time.perf_counter() - t)
    return best, res


def sgemm_flops(n: int = N, d: int = D) -> float:
    """Measured float32 matmul FLOP/s: the best of the product shape itself (dᵀ n × n d) and a 4096² square."""
    a = torch.randn(n, d)
    b = torch.randn(n, d)
    t1, _ = best_time(lambda: a.T @ b, repeat=5)
    s = torch.randn(4096, 4096)
    t2, _ = best_time(lambda: s @ s, repeat=3)
    return max(2.0 * n * d * d / t1, 2.0 * 4096**3 / t2)


def pytorch_cka_matrix(feats: torch.Tensor) -> tuple[np.ndarray, str]:
    """pytorch-cka's debiased CKA matrix on (L, n, d) features; falls back to hsic_cross when memory is short."""
    import psutil
    from cka import cka_from_features, hsic_cross

    n_layers, n, _ = feats.shape
    gram_bytes = n_layers * n * n * 4
    avail = psutil.virtual_memory().available
    if avail > 3.2 * gram_bytes:
        return cka_from_features(feats, feats).numpy(), "cka_from_features"
    if avail < 1.3 * gram_bytes:
        raise SystemExit(f"not enough free memory for pytorch-cka's {gram_bytes / 1e9:.1f} GB of Gram matrices")
    grams = torch.bmm(feats, feats.transpose(1, 2))  # as cka_from_features' to_grams
    h = hsic_cross(grams, grams)
    diag = torch.diagonal(h)
    denom = torch.sqrt(torch.clamp(torch.outer(diag, diag), min=0.0))
    return torch.clamp(h / torch.where(denom == 0, 1e-6, denom), 0.0, 1.0).numpy(), "hsic_cross (one Gram stack)"


def main() -> None:
    torch.manual_seed(0)
    print(f"threads={torch.get_num_threads()}  layers={L}  n={N}  d={D}  float32")
    layers = make_layers()
    named = {f"layer{i}": x for i, x in enumerate(layers)}
    peak = sgemm_flops()
    print(f"measured sgemm: {peak / 1e9:.1f} GFLOP/s")
    needed = L * (L + 1) / 2 * 2.0 * N * D * D

    lin = get_measure("linear_cka", dtype=torch.float32)
    t_lin, m_lin = best_time(lambda: similarity_matrices(named, None, [lin], device="cpu")["linear_cka"])
    deb = get_measure("debiased_cka", dtype=torch.float32)
    t_deb, m_deb = best_time(lambda: similarity_matrices(named, None, [deb], device="cpu")["debiased_cka"])
    print(f"repscope linear CKA   {L}x{L}: {t_lin:7.2f} s   roofline fraction {needed / t_lin / peak:6.1%}")
    print(f"repscope debiased CKA {L}x{L}: {t_deb:7.2f} s   roofline fraction {needed / t_deb / peak:6.1%}")

    feats = torch.stack(layers)
    layers = []
    t_ref, (m_ref, how) = best_time(lambda: pytorch_cka_matrix(feats))
    diff = np.abs(np.clip(m_deb.to_numpy(), 0, 1) - m_ref).max()
    print(f"pytorch-cka debiased  {L}x{L}: {t_ref:7.2f} s   via {how}")
    print(f"speed-up repscope vs pytorch-cka (debiased, same features): {t_ref / t_deb:.1f}x   "
          f"max |Δ| = {diff:.2e}")
    feats = None

    x, y = named["layer0"], named["layer1"]
    named = {}
    total = 0.0
    print(f"every registered measure on one layer pair (n={N}, d={D}):")
    for name, m in REGISTRY.items():
        t, v = best_time(lambda m=m: m(x, y, device="cpu"))
        total += t
        print(f"  {name:15s} {t:7.2f} s   value {v:.4f}")
    print(f"full measure set on one pair: {total:.1f} s")


if __name__ == "__main__":
    main()
