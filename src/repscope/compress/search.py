"""Search over quantized embeddings: exact Hamming top-k over packed binary codes, and rescoring of the top k·r
candidates with float32 query × int8/binary document (the rescoring of Shakir et al. 2024, sentence-transformers).

Tie rule everywhere: neighbours are ordered by (distance, database index), as in `repscope.probe.knn.knn_search`."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np
import torch

from repscope.errors import ConfigError, DataError


@functools.cache
def _numba_kernel() -> Any:
    """The compiled CPU kernel (numba, when installed): per query, a scan of all codes with hardware popcount and
    an insertion-sorted top-k; None without numba."""
    try:
        from numba import njit, prange, types
        from numba.extending import intrinsic
    except ImportError:  # pragma: no cover - numba is optional
        return None

    @intrinsic
    def popcount(typingctx, x):  # noqa: ANN001 - numba intrinsic signature
        if not isinstance(x, types.Integer):
            return None

        def codegen(context, builder, signature, args):  # noqa: ANN001
            return builder.ctpop(args[0])

        return x(x), codegen

    @njit(parallel=True, nogil=True, cache=False)
    def kernel(q, db, k, out_d, out_i):  # noqa: ANN001
        nq, w = q.shape
        n = db.shape[0]
        big = w * 64 + 1
        for i in prange(nq):
            bd = out_d[i]
            bi = out_i[i]
            for p in range(k):
                bd[p] = big
                bi[p] = -1
            worst = big
            qi = q[i]
            for j in range(n):
                s = 0
                dj = db[j]
                for t in range(w):
                    s += popcount(qi[t] ^ dj[t])
                if s < worst:  # equal distances keep the earlier index
                    p = k - 1
                    while p > 0 and bd[p - 1] > s:
                        bd[p] = bd[p - 1]
                        bi[p] = bi[p - 1]
                        p -= 1
                    bd[p] = s
                    bi[p] = j
                    worst = bd[k - 1]

    return kernel


def _as_words(codes: torch.Tensor | np.ndarray) -> np.ndarray:
    """Packed uint8 codes (n, b) as uint64 words (n, ⌈b/8⌉), zero-padded (padding bits never differ)."""
    c = np.ascontiguousarray(np.asarray(codes.cpu() if isinstance(codes, torch.Tensor) else codes), dtype=np.uint8)
    pad = (-c.shape[1]) % 8
    if pad:
        c = np.concatenate([c, np.zeros((c.shape[0], pad), np.uint8)], 1)
    return c.view(np.uint64)


def _check(queries: Any, codes: Any, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    q, c = torch.as_tensor(np.asarray(queries)), torch.as_tensor(np.asarray(codes))
    if q.dtype != torch.uint8 or c.dtype != torch.uint8 or q.ndim != 2 or c.ndim != 2:
        raise DataError("Hamming search takes packed uint8 codes (n, bytes); pack with repscope.compress.pack_bits")
    if q.shape[1] != c.shape[1]:
        raise DataError(f"query codes have {q.shape[1]} bytes but database codes {c.shape[1]}; pack the same dims")
    if not 1 <= k <= c.shape[0]:
        raise ConfigError(f"k must be between 1 and the {c.shape[0]} database codes, got {k}")
    return q, c


def hamming_topk_torch(queries: Any, codes: Any, k: int, *, device: str = "cpu",
                       block: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Hamming top-k by a ±1 matmul: ham(a, b) = (D − ⟨±a, ±b⟩)/2 (exact in float), ordered by (distance, index)."""
    from repscope.compress.quantize_embeddings import unpack_bits

    q, c = _check(queries, codes, k)
    dev = torch.device(device)
    nbits = c.shape[1] * 8
    dt = torch.float16 if dev.type == "cuda" and nbits <= 2048 else torch.float32  # |⟨±a, ±b⟩| ≤ 2048: exact
    cs = (unpack_bits(c, nbits).to(dev, dt) * 2 - 1)
    n = c.shape[0]
    out_d, out_i = [], []
    for s in range(0, q.shape[0], block):
        qs = unpack_bits(q[s : s + block], nbits).to(dev, dt) * 2 - 1
        ham = ((nbits - qs @ cs.T) / 2).round().to(torch.int64)
        key = ham * n + torch.arange(n, device=dev)  # (distance, index) in one exact integer
        top = torch.topk(key, k, dim=1, largest=False, sorted=True).values
        out_d.append((top // n).cpu())
        out_i.append((top % n).cpu())
    return torch.cat(out_d).to(torch.int32), torch.cat(out_i).to(torch.int64)


def hamming_topk(queries: Any, codes: Any, k: int, *, device: str = "auto") -> tuple[torch.Tensor, torch.Tensor]:
    """Exact Hamming top-k of packed binary codes: (distances (m, k) int32, indices (m, k) int64), ascending by
    (distance, index). CPU: a compiled popcount scan (numba) when available; CUDA or no numba: a ±1 matmul."""
    from repscope.device import resolve_device

    q, c = _check(queries, codes, k)
    dev = resolve_device(device)
    kernel = _numba_kernel() if dev.type == "cpu" else None
    if kernel is None:
        return hamming_topk_torch(q, c, k, device=str(dev))
    qw, cw = _as_words(q), _as_words(c)
    out_d = np.empty((qw.shape[0], k), np.int32)
    out_i = np.empty((qw.shape[0], k), np.int64)
    kernel(qw, cw, k, out_d, out_i)
    return torch.from_numpy(out_d), torch.from_numpy(out_i)


def hamming_distances(queries: Any, codes: Any) -> torch.Tensor:
    """All Hamming distances (m, n) of packed codes, by unpacking (a reference, O(m·n·bits) memory)."""
    from repscope.compress.quantize_embeddings import unpack_bits

    q, c = torch.as_tensor(np.asarray(queries)), torch.as_tensor(np.asarray(codes))
    nbits = q.shape[1] * 8
    a, b = unpack_bits(q, nbits).to(torch.int32), unpack_bits(c, nbits).to(torch.int32)
    return (a[:, None, :] != b[None, :, :]).sum(2)


def int8_ip_topk(queries: Any, codes: Any, k: int, *, exclude_self: bool = False,
                 block: int = 1024) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-k by the inner product of int8 codes ⟨q, c⟩ (the int8 first stage of sentence-transformers'
    `semantic_search_usearch`, an "ip" index over int8 codes with int8-coded queries): (scores (m, k) int64,
    indices (m, k) int64), ordered by (−score, index). Exact: the products are summed in float64 (|sum| ≤ d·128²).
    `exclude_self` drops database item i for query i (queries and database the same rows)."""
    q, c = torch.as_tensor(np.asarray(queries)), torch.as_tensor(np.asarray(codes))
    if q.dtype != torch.int8 or c.dtype != torch.int8 or q.ndim != 2 or c.ndim != 2 or q.shape[1] != c.shape[1]:
        raise DataError("int8 inner-product search takes int8 codes (n, d) of the same width; quantize with "
                        "repscope.compress.quantize(x, 'int8', ...)")
    n = c.shape[0]
    if not 1 <= k <= n - int(exclude_self):
        raise ConfigError(f"k must be between 1 and the {n - int(exclude_self)} database codes, got {k}")
    cd = c.to(torch.float64)
    top = int(c.shape[1]) * 128 * 128  # |⟨q, c⟩| ≤ top
    out_s, out_i = [], []
    for s in range(0, q.shape[0], block):
        score = (q[s : s + block].to(torch.float64) @ cd.T).round().to(torch.int64)
        key = (top - score) * (n + 1) + torch.arange(n)  # (−score, index) as one exact integer
        if exclude_self:
            rows = torch.arange(s, s + score.shape[0])
            key[torch.arange(score.shape[0]), rows] = torch.iinfo(torch.int64).max
        best = torch.topk(key, k, dim=1, largest=False, sorted=True).values
        out_s.append(top - best // (n + 1))
        out_i.append(best % (n + 1))
    return torch.cat(out_s), torch.cat(out_i)


def drop_self(idx: torch.Tensor, k: int) -> torch.Tensor:
    """Remove each row's own index from its neighbour list (or the last one when absent); keeps k columns."""
    rows = torch.arange(idx.shape[0])[:, None]
    keep = idx != rows
    keep[:, -1] &= ~keep.all(1)  # self not found: drop the last candidate instead
    return idx[keep].view(idx.shape[0], -1)[:, :k]


def rescore(query: torch.Tensor, candidates: torch.Tensor, docs: torch.Tensor, k: int) -> torch.Tensor:
    """Re-rank each query's candidate indices by the float32 score ⟨query, docs[candidate]⟩ (docs: decoded int8 or
    ±1 binary vectors); returns the top-k indices (m, k), ties kept in candidate order."""
    cand = candidates.to(torch.int64)
    valid = cand >= 0
    scores = torch.einsum("md,mcd->mc", query.to(torch.float32), docs[cand.clamp_min(0)].to(torch.float32))
    scores = torch.where(valid, scores, torch.full_like(scores, -float("inf")))
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices[:, :k]
    return torch.gather(cand, 1, order)
