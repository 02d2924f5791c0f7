"""Exact k-nearest-neighbour distances in row chunks, so memory stays O(chunk · n) instead of O(n²).

Candidates are ranked with the Gram expansion ‖a−b‖² = ‖a‖² − 2a·b + ‖b‖² in the working dtype (float32 is fast),
then the distances of the few best candidates are recomputed directly as ‖a−b‖ in float64 and re-sorted, so the
returned distances are exact even where the expansion loses digits for close points.

For large inputs whose variance concentrates in few principal directions (low intrinsic dimension, the usual case
for learned representations), `knn_distances` first screens candidates with a lower bound computed in far fewer
dimensions and then proves, row by row, that no point outside the candidates can be closer; see `_pruned_candidates`.
`knn_query` searches a separate query set with the same rules; `knn_search` is its entry point for cosine or
Euclidean neighbours (k-NN probe, compression, neighbourhood similarity).
"""

from __future__ import annotations

import torch
from torch import Tensor

from repscope.device import resolve_device
from repscope.errors import ConfigError, DataError
from repscope.selection import smallest_k

_TARGET_BLOCK_ELEMS = 2**24  # ~64 MB of float32 per (chunk × n) distance block


def pick_chunk_rows(n: int, target: int = _TARGET_BLOCK_ELEMS) -> int:
    """Rows per chunk so a (chunk × n) block holds about `target` elements."""
    return max(1, min(n, target // max(n, 1)))


def _brute_candidates(xw: Tensor, kc: int, block_rows: int) -> tuple[Tensor, Tensor]:
    """Approximate (working-dtype) kc smallest squared distances and their indices per row, self excluded.

    Tiles of the upper triangle only: each tile's distances serve the rows and, read down its columns, the column
    rows. Every row keeps its kc best so far and their largest value as a threshold. The diagonal tiles go first, so
    every threshold starts from the row's own block; afterwards only tile entries below a row's threshold matter.
    They are found through minima over groups of 32 entries (one pass over the tile per side), and the few hits
    are merged in. Written by hand: no library offers an exact, memory-bounded self-join k-NN on CPU and GPU.
    """
    n, dev = xw.shape[0], xw.device
    sq = (xw * xw).sum(1)
    bs = max(1, block_rows)
    starts = list(range(0, n, bs))
    best_v = torch.full((n, kc), float("inf"), dtype=xw.dtype, device=dev)
    best_i = torch.zeros((n, kc), dtype=torch.long, device=dev)

    def tile(s: int, e: int, s2: int, e2: int) -> Tensor:
        t = torch.addmm(sq[None, s2:e2], xw[s:e], xw[s2:e2].T, beta=1.0, alpha=-2.0)
        return t.add_(sq[s:e, None])

    # diagonal blocks as two halves (their cross tile joins the thresholded sweep): a symmetric block computed
    # whole would spend half its products twice
    halves = []
    for s in starts:
        e = min(n, s + bs)
        h = s + (e - s) // 2 if e - s >= 128 else e
        halves.append((s, h, e))
        for s1, e1 in ((s, h), (h, e)):
            if e1 - s1 < 2:
                continue
            t = tile(s1, e1, s1, e1)
            t.fill_diagonal_(float("inf"))  # self by index
            kk = min(kc, e1 - s1 - 1)
            v, i = smallest_k(t, kk)
            best_v[s1:e1, :kk], best_i[s1:e1, :kk] = v, i + s1
    thr = best_v.amax(1)
    for s, h, e in halves:
        if h < e:
            t = tile(s, h, h, e)
            _below_threshold(t, thr, s, h, best_v, best_i)
            _below_threshold(t.T, thr, h, s, best_v, best_i)
    for a, s in enumerate(starts):
        e = min(n, s + bs)
        for s2 in starts[a + 1 :]:
            t = tile(s, e, s2, min(n, s2 + bs))
            _below_threshold(t, thr, s, s2, best_v, best_i)
            _below_threshold(t.T, thr, s2, s, best_v, best_i)
    return best_v, best_i


def _below_threshold(t: Tensor, thr: Tensor, r0: int, c0: int, best_v: Tensor, best_i: Tensor,
                     group: int = 32) -> None:
    """Merge the entries of tile t (rows r0.., columns c0..) that lie below their row's threshold into the rows'
    kc best, and lower the thresholds. `t` may be a transposed view: group minima are then taken down the
    original's columns, vectorised along its contiguous rows."""
    r_n, c_n = t.shape
    c0n = (c_n // group) * group
    ta = thr[r0 : r0 + r_n]
    if t.stride(1) == 1:
        gm = t[:, :c0n].reshape(r_n, c0n // group, group).amin(2)
    else:
        gm = t.T[:c0n].reshape(c0n // group, group, r_n).amin(1).T
    r, g = (gm < ta[:, None]).nonzero(as_tuple=True)
    cols = (g[:, None] * group + torch.arange(group, device=t.device)).reshape(-1)
    rows = r.repeat_interleave(group)
    if c0n < c_n:  # ragged tail: scanned directly
        rt, ct = (t[:, c0n:] < ta[:, None]).nonzero(as_tuple=True)
        rows, cols = torch.cat([rows, rt]), torch.cat([cols, ct + c0n])
    if rows.numel() == 0:
        return
    vals = t[rows, cols]
    hit = vals < ta[rows]
    if bool(hit.any()):
        touched = _merge_hits(best_v, best_i, rows[hit] + r0, vals[hit], cols[hit] + c0)
        thr[touched] = best_v[touched].amax(1)


def _merge_hits(best_v: Tensor, best_i: Tensor, rows: Tensor, vals: Tensor, cols: Tensor) -> Tensor:
    """Merge sparse candidates (rows, vals, cols) into the per-row kc best (in place); returns the touched rows."""
    kc = best_v.shape[1]
    u, inv = torch.unique(rows, return_inverse=True)
    m = u.numel()
    pool_r = torch.cat([torch.arange(m, device=rows.device).repeat_interleave(kc), inv])
    pool_v = torch.cat([best_v[u].reshape(-1), vals])
    pool_i = torch.cat([best_i[u].reshape(-1), cols])
    order = torch.argsort(pool_v, stable=True)
    order = order[torch.argsort(pool_r[order], stable=True)]  # by row, then by value
    r_sorted = pool_r[order]
    counts = torch.bincount(r_sorted, minlength=m)
    rank = torch.arange(r_sorted.numel(), device=rows.device) - (torch.cumsum(counts, 0) - counts)[r_sorted]
    keep = rank < kc
    sel = order[keep]
    best_v[u[r_sorted[keep]], rank[keep]] = pool_v[sel]
    best_i[u[r_sorted[keep]], rank[keep]] = pool_i[sel]
    return u


def _exact(xs: Tensor, rows: Tensor | None, cand: Tensor) -> Tensor:
    """Float64 distances ‖x_r − x_c‖ computed directly for candidate indices cand (len(rows), m).

    `xs` is the caller's (uncentred) data in any float dtype, converted to float64 block by block (exactly): direct
    differences of the original values keep exact ties exact (duplicates, lattice points), which centring would not.
    """
    n, d = cand.shape[0], xs.shape[1]
    m = cand.shape[1]
    out = torch.empty(cand.shape, dtype=torch.float64, device=xs.device)
    # (rows × m × d) gathered block: ~512 KB stays in a CPU core's cache; a GPU wants few, large launches
    step = max(1, (2**16 if xs.device.type == "cpu" else 2**24) // max(1, m * d))
    for s in range(0, n, step):
        e = min(n, s + step)
        xr = (xs[s:e] if rows is None else xs[rows[s:e]]).to(torch.float64)
        g = xs.index_select(0, cand[s:e].reshape(-1)).view(e - s, m, d)
        if g.dtype != torch.float64:
            g = torch.empty(g.shape, dtype=torch.float64, device=g.device).copy_(g)
        out[s:e] = torch.linalg.vector_norm(g.sub_(xr[:, None, :]), dim=2)
    return out


PRUNE_MIN_ROWS = 4096  # below this the brute-force pass is cheap; the pilot would cost more than it saves
PRUNE_MIN_DIM = 48
PRUNE_MIN_WORK = 4e10  # n²·d: below ~0.5 s of brute-force products the pilot and the eigendecomposition do not pay
_PILOT_ROWS = 256
_MAX_CANDIDATES = 128
_F32_EPS = 2.0**-24
_F64_EPS = 2.0**-52
_SKIP_TAIL_VARIANCE = 0.2


def _bound_coordinates(x64: Tensor, p: int, v: Tensor) -> Tensor:
    """Rows [x·V₁..ₚ, ‖x − (x·V₁..ₚ)V₁..ₚᵀ‖] in float64 (V orthonormal): a (p+1)-dim embedding whose distances are
    lower bounds of the true ones, ‖aᵢ − aⱼ‖² = ‖P(xᵢ−xⱼ)‖² + (‖P⊥xᵢ‖ − ‖P⊥xⱼ‖)² ≤ ‖xᵢ − xⱼ‖² (reverse triangle
    inequality on the residual). The residual norm is computed from the residual itself, not by subtracting squared
    norms, so it keeps full relative precision when it is tiny."""
    zp = x64 @ v[:, :p]
    resid = torch.linalg.vector_norm(x64 - zp @ v[:, :p].T, dim=1)
    return torch.cat([zp, resid[:, None]], 1)


def _choose_projection(x32: Tensor, k: int, gen: torch.Generator) -> tuple[Tensor, int, int] | None:
    """Pick an orthonormal basis V, the number p of leading directions for the lower-bound screen and the number c
    of candidates per row, or None when screening would not clearly beat brute force.

    V comes from the covariance of a row sample (any orthonormal V gives a valid bound; good directions only make it
    tight). A pilot of `_PILOT_ROWS` random rows measures, for each p on a grid, how many points have a lower bound
    at or below the pilot row's true k-th neighbour distance: the candidates a row must keep. The p with the lowest
    modelled cost (bound pass ∝ n·p, candidate re-ranking ∝ c·d per row) wins.
    """
    n, d = x32.shape
    dev = x32.device
    sample = torch.randperm(n, generator=gen)[: min(n, 4096)].to(dev)
    xs = x32[sample]
    ev, v = torch.linalg.eigh((xs.T @ xs).to(torch.float64))  # V is orthonormal to float64 precision regardless
    ev, v = ev.flip(0).clamp_min(0), v.flip(1)  # leading directions first
    grid = [p for p in (8, 16, 24, 32, 48, 64, 96, 128, 192) if 2 * (p + 1) < d]
    if not grid or ev[grid[-1] :].sum() > _SKIP_TAIL_VARIANCE * ev.sum():
        return None  # variance too spread out for any p on the grid to bound distances usefully: skip the pilot
    pilot = sample[:_PILOT_ROWS]
    rows = torch.arange(pilot.numel(), device=dev)
    sq = (x32 * x32).sum(1)
    base = sq[pilot, None] + sq[None, :]  # ‖aᵢ‖² + ‖aⱼ‖² = ‖xᵢ‖² + ‖xⱼ‖² for every p
    true_sq = torch.addmm(base, x32[pilot], x32.T, alpha=-2.0)
    true_sq[rows, pilot] = float("inf")
    tau = torch.topk(true_sq, k, dim=1, largest=False).values[:, -1:] * 1.001
    # pilot estimate only: float32 projections, residual norms by subtraction (precision is not needed here).
    # bound ≤ τ  ⟺  aᵢ·aⱼ ≥ (‖xᵢ‖² + ‖xⱼ‖² − τ)/2; the row itself always passes and is not counted
    half = (base - tau).mul_(0.5)
    z = x32 @ v[:, : grid[-1]].to(torch.float32)
    resid = (sq[:, None] - torch.cumsum(z * z, 1)).clamp_min_(0).sqrt_()
    dot = torch.zeros(pilot.numel(), n, dtype=torch.float32, device=dev)
    best: tuple[float, int, int] | None = None
    prev = 0
    for p in grid:
        dot.addmm_(z[pilot, prev:p], z[:, prev:p].T)  # Σ_{j<p} zᵢⱼ zₗⱼ, grown one slice of directions at a time
        prev = p
        hits = torch.addr(dot, resid[pilot, p - 1], resid[:, p - 1]) >= half
        need = hits.view(torch.uint8).sum(1, dtype=torch.int32).to(torch.float64) - 1  # (bool sums are slow)
        c = int(min(n - 1, max(k + 4, torch.quantile(need, 0.99).item() * 1.25 + 4)))
        if c > _MAX_CANDIDATES:
            continue
        # per row, in brute-force multiply-add equivalents measured on CPU: the thin (p+1)-wide bound product runs
        # ~4x below GEMM peak, a gathered re-rank element costs ~8 multiply-adds
        cost = 4.0 * n * (p + 1) + 8.0 * c * d
        if best is None or cost < best[0]:
            best = (cost, p, c)
        elif c <= k + 4 or cost > 1.5 * best[0]:
            break  # the bounds are tight enough, or the bound pass now costs more than re-ranking saves
    if best is None or best[0] > 0.7 * (0.5 * n * d + 10.0 * n):  # brute force: n·d/2 per row + top-k upkeep
        return None
    return v, best[1], best[2]


def _rows_exact(x64: Tensor, rows: Tensor, kc: int, k: int | None = None, xs: Tensor | None = None,
                offset: float = 0.0) -> Tensor:
    """Candidate indices (len(rows), kc) of the given rows, self excluded, exactly the kc best by (float64 distance
    from `xs`, index): the fallback for rows whose fast candidates could not be certified.

    Ranks the float64 Gram expansion on the centred `x64`, keeps every row whose expansion lies within its rounding
    (generous bound, with `offset` = ‖centring shift‖² for the rounding of the shift itself) of the k-th smallest,
    re-ranks those by direct distances and keeps kc by (distance, index), so ties follow the tie rule."""
    k = kc if k is None else k
    xs = x64 if xs is None else xs
    n, d = x64.shape
    norms = (x64 * x64).sum(1)
    eps = torch.finfo(torch.float64).eps
    out = torch.empty(rows.numel(), kc, dtype=torch.long, device=x64.device)
    step = max(1, pick_chunk_rows(n) // 2)
    for s in range(0, rows.numel(), step):
        r = rows[s : s + step]
        sq = pairwise_sq_distances(x64[r], x64)
        sq[torch.arange(r.numel(), device=sq.device), r] = float("inf")
        tau = sq.kthvalue(k, dim=1).values
        err = (4 * d + 32) * eps * (norms[r] + norms.max() + offset)
        within = sq <= (tau + 2 * err)[:, None]
        c2 = min(n - 1, max(kc, int(within.sum(1).max())))
        cand = smallest_k(sq, c2)[1]
        out[s : s + step] = _rank(_exact(xs, r, cand), cand, kc)[1]
    return out


def _pruned_candidates(x64: Tensor, k: int, kc: int, block_rows: int, xs: Tensor | None = None,
                       offset: float = 0.0) -> Tensor | None:
    """Candidate neighbour indices (n, kc) that provably hold every row's k nearest neighbours, or None.

    Exact k-NN by lower-bound screening (the partial-distance idea of Cheng et al. 1984, in a PCA basis):
    1. Embed the rows as a = [x·V₁..ₚ, ‖P⊥x‖] (see `_bound_coordinates`): ‖aᵢ − aⱼ‖ ≤ ‖xᵢ − xⱼ‖ for all pairs.
    2. Take each row's c nearest rows under that bound (p + 1 instead of d dimensions per pair).
    3. Rank those c by their true distance (float32, computed directly from the differences) and keep kc.
    4. Certify: with τᵢ the k-th smallest true distance among the candidates and Lᵢ the largest bound among them,
       every non-candidate lies at distance ≥ its bound ≥ Lᵢ. If τᵢ < Lᵢ, after allowing for float32 rounding of
       both, the k nearest are among the candidates; and so are the rows tied with the k-th when the kc kept are
       clearly separated from the k-th. Rows that cannot be certified are searched by brute force.
    Returns None when the data do not concentrate enough for this to beat brute force.
    """
    n, d = x64.shape
    if n < PRUNE_MIN_ROWS or d < PRUNE_MIN_DIM or n * n * d < PRUNE_MIN_WORK:
        return None
    x32 = x64.to(torch.float32)
    choice = _choose_projection(x32, k, torch.Generator().manual_seed(0))
    if choice is None:
        return None
    v, p, c = choice
    a = _bound_coordinates(x64, p, v)
    a_sq = (a * a).sum(1)
    # Gram-expansion rounding of a float32 bound is below (p + 4)·ε·(‖aᵢ‖² + ‖aⱼ‖²); directly computed float32
    # squared distances are within (d + 3)·ε relative (generous constants, ε = 2⁻²⁴)
    bound_err = (p + 4) * _F32_EPS * (a_sq + a_sq.max())
    rel_err = (d + 3) * _F32_EPS
    a32 = a.to(torch.float32)
    a32_sq, a32_t = (a32 * a32).sum(1), a32.T.contiguous()
    cand = torch.empty(n, kc, dtype=torch.long, device=x64.device)
    ok = torch.empty(n, dtype=torch.bool, device=x64.device)
    bs = max(1, min(block_rows, (1 << 21) // n))  # (rows × n) bound blocks of ≤ 8 MB stay in cache
    sub = max(1, (1 << 20) // (c * d))  # rows per gathered (rows × c × d) block of ~4 MB
    for s in range(0, n, bs):
        e = min(n, s + bs)
        # ‖aⱼ‖² − 2aᵢ·aⱼ ranks row i like the bound itself; ‖aᵢ‖² is added to the c selected values only
        lb = torch.addmm(a32_sq[None, :], a32[s:e], a32_t, alpha=-2.0)
        lb[torch.arange(e - s, device=lb.device), torch.arange(s, e, device=lb.device)] = float("inf")
        lv, li = smallest_k(lb, c)
        lmax = lv.amax(1).to(torch.float64) + a32_sq[s:e] - bound_err[s:e]
        for s2 in range(0, e - s, sub):
            e2 = min(e - s, s2 + sub)
            idx = li[s2:e2]
            g = x32.index_select(0, idx.reshape(-1)).view(e2 - s2, c, d)
            g.sub_(x32[s + s2 : s + e2, None, :])
            true_sq = g.mul_(g).sum(2)
            tv, order = torch.topk(true_sq, kc, dim=1, largest=False, sorted=True)
            cand[s + s2 : s + e2] = torch.gather(idx, 1, order)
            limit = lmax[s2:e2]
            if kc < c:  # candidates left out of the kc must also lie clearly beyond the k-th (ties: see the tie rule)
                limit = torch.minimum(limit, tv[:, kc - 1].to(torch.float64) * (1 - rel_err))
            ok[s + s2 : s + e2] = tv[:, k - 1].to(torch.float64) * (1 + rel_err) < limit
    bad = (~ok).nonzero().squeeze(1)
    if bad.numel():
        cand[bad] = _rows_exact(x64, bad, kc, k, xs, offset)
    return cand


def _certify(x64: Tensor, xw: Tensor, approx: Tensor, cand: Tensor, dist: Tensor, k: int, xs: Tensor | None = None,
             offset: float = 0.0) -> None:
    """Make low-precision brute-force candidates provably complete, in place.

    Every non-candidate has a rounded squared distance ≥ L, the largest rounded value among a row's candidates, so
    its true squared distance is ≥ L − e with e a bound on the rounding (Gram expansion in xw's dtype, and x64 → xw
    itself): e = (2d + 16)·u·(‖xᵢ‖² + maxⱼ‖xⱼ‖²), u the unit roundoff, plus the float64 rounding of the centring
    shift (`offset` = its squared norm), since the exact distances come from the uncentred `xs`. A row whose k-th
    exact squared distance among its candidates is below L − e is done; the others are searched again in float64.
    """
    d = x64.shape[1]
    u = torch.finfo(xw.dtype).eps / 2
    norms = (x64 * x64).sum(1)
    err = (2 * d + 16) * u * (norms + norms.max()) + (4 * d + 32) * _F64_EPS * (norms + norms.max() + offset)
    tau = dist.kthvalue(k, dim=1).values.square()
    bad = (~(tau < approx.to(torch.float64).amax(1) - err)).nonzero().squeeze(1)
    if bad.numel():
        cand[bad] = _rows_exact(x64, bad, cand.shape[1], k, xs, offset)
        dist[bad] = _exact(x64 if xs is None else xs, bad, cand[bad])


def knn_distances(x, k: int, device: str | torch.device | None = "auto", dtype: torch.dtype = torch.float32,
                  block_rows: int = 2048, extra: int = 2, return_indices: bool = False):
    """Euclidean distances (n, k) from each row of `x` to its k nearest other rows, ascending, exact in float64.

    Brute force over (block × block) tiles of the upper triangle only: each tile's distances serve the top-k of its
    rows and of its columns, halving the matrix products; memory O(block² + n·k). Candidates are ranked in `dtype`
    (float32 is fast), k + `extra` of them per row are re-ranked with float64 distances computed directly from the
    caller's (uncentred) values, and each row is certified against the rounding of the fast pass (`_certify`) or
    searched again in float64. Self-matches are excluded by index (duplicates give distance 0). With
    `return_indices`, also returns the (n, k) neighbour indices.

    Tie rule (the one rule of every k-NN in repscope): neighbours are ordered by (float64 distance, index), so rows
    at equal distance go to the lower index, also at the k-th place. Certification sends any row with a tie at the
    k-th place that crosses the candidate boundary to the float64 search, which keeps ties in index order.

    For n ≥ `PRUNE_MIN_ROWS` with variance concentrated in few directions, a certified lower-bound screen replaces
    most of the brute-force work (`_pruned_candidates`); the result is the same.
    """
    dev = resolve_device(device)
    src = torch.as_tensor(x)
    x64 = src.to(device=dev, dtype=torch.float64)
    if x64.ndim != 2:
        x64 = x64.reshape(x64.shape[0], -1)
    if x64.data_ptr() == src.data_ptr():
        x64 = x64.clone()  # it is centred in place below: never the caller's memory
    n = x64.shape[0]
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if n <= k:
        raise DataError(f"need more than k={k} rows for k-nearest neighbours, got {n}; use more samples or smaller k")
    if not torch.isfinite(x64.sum()) and not torch.isfinite(x64).all():  # a sum is a cheap first check
        from repscope.errors import NonFiniteError

        raise NonFiniteError("input holds NaN or Inf; clean the representations before measuring geometry")
    # the caller's values (uncentred, any float dtype, converted exactly block by block) for the exact distances
    xs = src.to(dev).reshape(n, -1)
    if not xs.is_floating_point():
        xs = xs.to(torch.float64)
    mean = x64.mean(0, keepdim=True)
    offset = float((mean * mean).sum())
    x64 -= mean  # centring is distance-preserving and limits cancellation in the ranking passes
    kc = min(n - 1, k + max(0, extra))
    cand = _pruned_candidates(x64, k, kc, block_rows, xs, offset) if dtype == torch.float32 else None
    if cand is not None:
        dist = _exact(xs, None, cand)
    else:
        xw = x64.to(dtype)
        approx, cand = _brute_candidates(xw, kc, block_rows)
        dist = _exact(xs, None, cand)
        # in float64 too: a tie across the candidate boundary is searched again
        _certify(x64, xw, approx, cand, dist, k, xs, offset)
    out_d, out_i = _rank(dist, cand, k)
    return (out_d, out_i) if return_indices else out_d


def _rank(dist: Tensor, cand: Tensor, k: int) -> tuple[Tensor, Tensor]:
    """The k best candidates per row by (distance, index): equal float64 distances go to the lower index."""
    by_index = torch.argsort(cand, dim=1)
    cand, dist = torch.gather(cand, 1, by_index), torch.gather(dist, 1, by_index)
    dist, order = torch.sort(dist, dim=1, stable=True)
    return dist[:, :k].contiguous(), torch.gather(cand, 1, order[:, :k])


def pairwise_sq_distances(a: Tensor, b: Tensor) -> Tensor:
    """Squared Euclidean distances between rows of a and b, clamped at 0 (Gram expansion)."""
    d = torch.addmm((b * b).sum(1)[None, :], a, b.T, beta=1.0, alpha=-2.0)
    d.add_((a * a).sum(1)[:, None])
    return d.clamp_(min=0.0)


def _direct_sq(q: Tensor, g: Tensor, cand: Tensor, q_norm: Tensor | None = None,
               g_norm: Tensor | None = None) -> Tensor:
    """Float64 squared distances ‖q_r − g_c‖² from the differences for candidates cand (len(q), m); with the rows'
    float64 norms given, the squared distances 2 − 2cos(q_r, g_c) of the unit rows instead (cos = 0 for a zero row)."""
    r, m = cand.shape
    d = g.shape[1]
    out = torch.empty(r, m, dtype=torch.float64, device=g.device)
    step = max(1, 2**20 // max(1, m * d))  # ~8 MB float64 blocks: few large ops (small ones pay thread hand-offs)
    for s in range(0, r, step):
        e = min(r, s + step)
        rows = g.index_select(0, cand[s:e].reshape(-1)).view(e - s, m, d).to(torch.float64)
        qs = q[s:e, None, :].to(torch.float64)
        if g_norm is None:
            rows.sub_(qs)
            out[s:e] = rows.mul_(rows).sum(2)
        else:
            den = q_norm[s:e, None] * g_norm[cand[s:e]]
            cos = torch.where(den > 0, (rows.mul_(qs)).sum(2) / den.clamp_min(1e-300), 0.0)
            out[s:e] = 2.0 - 2.0 * cos
    return out


def _unit(x: Tensor, norm: Tensor) -> Tensor:
    """Rows divided by their (float64) norms, in x's dtype; zero rows stay zero."""
    return x / torch.where(norm > 0, norm, 1.0).to(x.dtype)[:, None]


def knn_query(queries, gallery, k: int, *, metric: str = "euclidean", dtype: torch.dtype = torch.float32,
              block_rows: int = 2048, extra: int = 2, exclude_self: bool = False,
              squared: bool = False) -> tuple[Tensor, Tensor]:
    """Exact k-NN of each query row among the gallery rows: (distances (m, k) float64, indices (m, k)), ascending.

    metric "euclidean": ‖q − g‖ (‖q − g‖² with `squared`); "cosine": 1 − q·g/(‖q‖‖g‖), a zero row being at
    distance 1 from everything (as scikit-learn's cosine_distances). The engine of `knn_distances` for a separate
    query set: candidates ranked by the Gram expansion in `dtype` on shifted rows (unit rows for cosine, where
    ‖q̂ − ĝ‖² = 2 − 2cos; a zero gallery row becomes a unit vector on an axis of its own), k + `extra` of them
    re-ranked by float64 distances computed from the original rows, and every row certified against the rounding
    of the fast pass (bound as in `_certify`). A row that cannot be certified (a tie at the k-th place across the
    candidate boundary, say) re-ranks every gallery row whose rounded key allows it to be within its k-th distance,
    so the result is exact. Tie rule as `knn_distances`: order by (float64 distance, gallery index).
    `exclude_self` drops gallery row i for query row i (queries = gallery). Runs on the gallery's device; memory
    O(block_rows · n_gallery).
    """
    if metric not in ("euclidean", "cosine"):
        raise ConfigError(f"metric '{metric}' unknown; use euclidean or cosine")
    g = torch.as_tensor(gallery)
    g = g if g.is_floating_point() else g.to(torch.float64)
    q = torch.as_tensor(queries).to(g.device, g.dtype)
    if g.ndim != 2 or q.ndim != 2 or q.shape[1] != g.shape[1]:
        raise DataError(f"queries {tuple(q.shape)} and gallery {tuple(g.shape)} must be 2-D with equal widths")
    n, d = g.shape
    m, avail = q.shape[0], n - int(exclude_self)
    if k < 1:
        raise ConfigError(f"k must be at least 1, got {k}")
    if k > avail:
        raise DataError(f"k={k} neighbours requested but the gallery has {avail} candidates; use a smaller k")
    f64 = torch.float64
    cosine = metric == "cosine"
    q_norm = g_norm = None
    gf, qf = g, q  # the rows of the fast pass
    if cosine:
        g_norm = torch.linalg.vector_norm(g, dim=1, dtype=f64)
        q_norm = torch.linalg.vector_norm(q, dim=1, dtype=f64)
        gf, qf = _unit(g, g_norm), _unit(q, q_norm)
        zero_g = g_norm == 0
        if bool(zero_g.any()):  # cos 0 to every query: a unit vector orthogonal to all of them
            gf = torch.cat([gf, zero_g[:, None].to(gf.dtype)], 1)
            qf = torch.cat([qf, qf.new_zeros(m, 1)], 1)
    dw = gf.shape[1]
    # a shift is distance-preserving, and centring limits cancellation in the fast pass; any shift t is valid (the
    # mean of up to 4096 rows is close enough), applied to gallery and queries alike, its rounding one more
    # conversion error
    t = gf[:4096].mean(0, dtype=f64).to(gf.dtype)
    gw = (gf - t).to(dtype)
    gw_sq, gw_t = (gw * gw).sum(1), gw.T
    u = torch.finfo(dtype).eps / 2
    g_max = float(gw_sq.max()) * (1 + 4 * dw * u)  # bounds the float64 norm of every shifted gallery row
    kc = min(avail, k + max(0, extra))
    bs = max(1, min(block_rows, m, (1 << 23) // max(n, 1)))
    out_d = torch.empty(m, k, dtype=f64, device=g.device)
    out_i = torch.empty(m, k, dtype=torch.long, device=g.device)
    buf = torch.empty(bs, n, dtype=dtype, device=g.device)  # reused: a fresh block per chunk costs page faults
    for s in range(0, m, bs):
        e = min(m, s + bs)
        qw = (qf[s:e] - t).to(dtype)
        q_sq = qw.to(f64).square().sum(1)  # (not in place: .to() returns qw itself when it is already float64)
        key = torch.addmm(gw_sq[None, :], qw, gw_t, alpha=-2.0, out=buf[: e - s])  # ≈ ‖q − g‖² − ‖q‖²
        if exclude_self:
            rows = torch.arange(e - s, device=key.device)
            key[rows, rows + s] = float("inf")
        approx, cand = smallest_k(key, kc)
        qn = None if q_norm is None else q_norm[s:e]
        d2 = _direct_sq(q[s:e], g, cand, qn, g_norm)
        tau = d2.kthvalue(k, dim=1).values
        err = (2 * dw + 16) * u * (q_sq + g_max)
        if cosine:  # unit rows rounded in `dtype` (‖δ‖ ≤ 2u each): |Δ‖q̂ − ĝ‖²| ≤ 8u‖q̂ − ĝ‖ + 16u² where it matters
            err = err + 16 * u * (tau.sqrt() + u)
        # every non-candidate has key ≥ the candidates' largest, so true squared distance ≥ that + ‖q‖² − err
        bad = (~(tau < approx.amax(1).to(f64) + q_sq - err)).nonzero().squeeze(1)
        bd, bi = _rank(d2, cand, k)
        if bad.numel():  # all rows whose true squared distance may be ≤ τ, re-ranked exactly
            kb = key[bad].to(f64)
            within = kb <= (tau[bad] + err[bad] - q_sq[bad])[:, None]
            c2 = min(avail, max(k, int(within.sum(1).max())))
            cand2 = smallest_k(kb, c2)[1]
            qb = None if qn is None else qn[bad]
            bd[bad], bi[bad] = _rank(_direct_sq(q[s:e][bad], g, cand2, qb, g_norm), cand2, k)
        out_d[s:e], out_i[s:e] = bd, bi
    if cosine:
        zero_q = (q_norm == 0).nonzero().squeeze(1)
        if zero_q.numel():  # cos 0 to everything: all tied at distance 1, so the lowest gallery indices
            first = torch.arange(k + 1, device=g.device).expand(zero_q.numel(), k + 1)
            if exclude_self:
                first = first + (first >= zero_q[:, None]).long()
            out_d[zero_q], out_i[zero_q] = 2.0, first[:, :k]
        return out_d.mul_(0.5), out_i
    return (out_d if squared else out_d.sqrt()), out_i


METRICS = ("cosine", "euclidean")


def knn_search(queries: Tensor, gallery: Tensor, k: int, metric: str = "cosine",
               chunk_size: int = 2048, exclude_self: bool = False) -> tuple[Tensor, Tensor]:
    """Exact k-NN: (distances (m, k) float64, indices (m, k)), ascending, by repscope's one certified engine
    (`knn_query`).

    Tie rule: neighbours are ordered by (float64 distance, gallery index), so equal distances go to the lower gallery
    index, also at the k-th place. Distances are cosine distances 1 − cos (zero rows: 1 to everything) or Euclidean
    (not squared) distances. Candidates are ranked in the gallery's dtype, chunk_size queries at a time (memory
    O(chunk_size × n_gallery)). `exclude_self` drops gallery item i for query i (queries and gallery the same rows).
    """
    from repscope.kernels.estimator import cpu_threads_for  # (imports scikit-learn: only when searching)

    if metric not in METRICS:
        raise ConfigError(f"metric '{metric}' unknown; use one of {', '.join(METRICS)}")
    dtype = gallery.dtype if gallery.dtype in (torch.float32, torch.float64) else torch.float32
    work = float(min(queries.shape[0], chunk_size)) * gallery.shape[0] * gallery.shape[1]
    with cpu_threads_for(work, gallery.device):
        return knn_query(queries, gallery, k, metric=metric, dtype=dtype, block_rows=chunk_size,
                         exclude_self=exclude_self)
