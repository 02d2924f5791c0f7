"""Exact gradient-boosted trees for DCI importances: scikit-learn's `GradientBoostingClassifier` (defaults), faster.

Friedman (2001) gradient boosting with the log loss, as scikit-learn 1.9 fits it with its defaults (loss="log_loss",
learning_rate 0.1, 100 stages, subsample 1, max_depth 3, min_samples_split 2, min_samples_leaf 1,
min_impurity_decrease 0, every feature considered at every split; its trees use the squared-error criterion, its
`criterion` parameter being deprecated):
- features are cast to float32 (as scikit-learn does); the initial raw prediction is the link of the class prior
  (logit for two classes, symmetric multinomial logit log(p_k / gmean(p)) for K > 2), priors clipped to [ε, 1 − ε];
- each stage fits one regression tree (two classes) or K trees (one per class) to the negative gradient of the half
  binomial / multinomial loss at the stage's start: y − expit(F), or 1[y = k] − softmax(F)_k;
- each node takes the best exact split over all features: candidate thresholds are the midpoints (float32 values
  halved and summed in float64) between consecutive sorted values that differ by more than 1e-7 (scikit-learn's
  FEATURE_THRESHOLD, in float32); the best maximises the squared-error proxy S_L²/n_L + S_R²/n_R (in exact arithmetic
  the same ranking as Friedman's n_L·n_R/n·(ȳ_L − ȳ_R)², used by scikit-learn < 1.9, which may break near-ties in
  rounding differently); a node stays a leaf at max depth, below min_samples_split samples, with impurity ≤ machine
  ε, without a candidate, or when its weighted impurity decrease + ε < min_impurity_decrease;
- a leaf takes one Newton step, mean(g) / mean(p(1 − p)) (× (K − 1)/K for K > 2; 0 when the hessian < 1e-150), and
  the raw predictions move by learning_rate × leaf value;
- `feature_importances_`: per tree, Σ over its splits of n·imp − n_L·imp_L − n_R·imp_R (MSE impurities) divided by
  the sample count; averaged over the trees with at least one split; normalised to sum 1.

Ties and rounding: trees are grown depth first, and each node draws its feature visiting order with scikit-learn's
own generator (one seed per tree from numpy's RandomState(random_state), then xorshift draws in a Fisher–Yates
shuffle that skips constant features), so when two features give exactly the same best score (e.g. duplicated
columns) the same one wins. Sums run in scikit-learn's sample order (samples sorted by each visited feature in turn,
then partitioned), and leaf means use numpy's pairwise summation, so with distinct feature values the fit is
bit-for-bit scikit-learn's. Tied float32 values: scikit-learn's unstable introsort puts tied samples in an order that
depends on the previous order; features whose ties cover more than 1/16 of the samples (discrete, quantised or
rectified latents) are re-sorted with that same introsort wherever a node holds ties, which reproduces it; features
with only a few float32 collisions (continuous latents) keep the stable order, so a sum over a tied pair may differ
from scikit-learn's in its last bit, which can only change a split where two candidates score within rounding.

Why hand-written: DCI needs disentanglement_lib's exact estimator, and no library fits it faster. To make the same
choices, three pieces deliberately reproduce documented behaviour of scikit-learn (BSD-3-Clause) in an independent
numba implementation: Marsaglia's xorshift32 draws (its `rand_int`), its Fisher–Yates feature sampling per node, and
its introsort variant (Musser 1997; median-of-3 pivot, 3-way partition, heapsort fallback, insertion sort below 16
elements). Without the last one, tied float32 latents (e.g. QLAE's quantised codes) change importances by ~1e-4.

Speed: each feature is sorted once per fit, and each tree keeps every feature's sorted sample list partitioned node by
node (a stable O(n) pass per level), instead of re-sorting the samples of every node for every feature; candidate
splits are screened with precomputed reciprocals before the exact proxy is computed. Tie-heavy features cost an
introsort per node, as in scikit-learn. Memory: about 20·n·d bytes (float32 copies of the features, int32 lists).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from numba import njit

from repscope.errors import ConfigError, DataError

_THR = np.float32(1e-7)  # scikit-learn's FEATURE_THRESHOLD: sorted values closer than this (in float32) are tied
_EPS = float(np.finfo(np.float64).eps)  # scikit-learn's tree-builder tolerance for pure nodes / null improvements
_SCREEN = 1.0 + 1e-12  # safety factor of the reciprocal screen in the split scan
_RAND_R_MAX = 2147483647  # scikit-learn's RAND_R_MAX (bound of the per-tree seed, modulus of its xorshift draws)


@njit(cache=True, nogil=True)
def _pairwise_sum(a: np.ndarray, lo: int, n: int) -> float:  # pragma: no cover - compiled
    """numpy's pairwise summation of a[lo:lo + n] (8 accumulators per block of ≤ 128, halves above), bit for bit."""
    if n < 8:
        res = -0.0
        for i in range(n):
            res += a[lo + i]
        return res
    if n <= 128:
        r0, r1, r2, r3 = a[lo], a[lo + 1], a[lo + 2], a[lo + 3]
        r4, r5, r6, r7 = a[lo + 4], a[lo + 5], a[lo + 6], a[lo + 7]
        i = 8
        stop = n - (n % 8)
        while i < stop:
            r0 += a[lo + i]
            r1 += a[lo + i + 1]
            r2 += a[lo + i + 2]
            r3 += a[lo + i + 3]
            r4 += a[lo + i + 4]
            r5 += a[lo + i + 5]
            r6 += a[lo + i + 6]
            r7 += a[lo + i + 7]
            i += 8
        res = ((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7))
        while i < n:
            res += a[lo + i]
            i += 1
        return res
    n2 = n // 2
    n2 -= n2 % 8
    return _pairwise_sum(a, lo, n2) + _pairwise_sum(a, lo + n2, n - n2)


@njit(cache=True, nogil=True)
def _neg_gradient(y: np.ndarray, raw: np.ndarray, neg: np.ndarray) -> None:  # pragma: no cover - compiled
    """neg (T, n) = −∂loss/∂F: y − expit(F) (half binomial, T = 1) or 1[y = k] − softmax(F)_k (half multinomial)."""
    n, t_count = raw.shape
    if t_count == 1:
        for i in range(n):
            r = raw[i, 0]
            yt = float(y[i])
            if r > -37.0:
                e = math.exp(-r)
                g = ((1.0 - yt) - yt * e) / (1.0 + e)
            else:
                g = math.exp(r) - yt
            neg[0, i] = -g
    else:
        p = np.empty(t_count)
        for i in range(n):
            mx = raw[i, 0]
            for k in range(1, t_count):
                if mx < raw[i, k]:
                    mx = raw[i, k]
            s = 0.0
            for k in range(t_count):
                p[k] = math.exp(raw[i, k] - mx)
                s += p[k]
            for k in range(t_count):
                neg[k, i] = -(p[k] / s - (1.0 if y[i] == k else 0.0))


@njit(cache=True, nogil=True)
def _rand_int(low: int, high: int, state: np.ndarray) -> int:  # pragma: no cover - compiled
    """scikit-learn's rand_int: low + xorshift32(state) mod 2³¹ mod (high − low)."""
    s = state[0]
    if s == 0:
        s = 1
    s ^= (s << 13) & 0xFFFFFFFF
    s ^= s >> 17
    s ^= (s << 5) & 0xFFFFFFFF
    state[0] = s
    return low + (s % 2147483648) % (high - low)


@njit(cache=True, nogil=True)
def _swap(vals: np.ndarray, idx: np.ndarray, i: int, j: int) -> None:  # pragma: no cover - compiled
    vals[i], vals[j] = vals[j], vals[i]
    idx[i], idx[j] = idx[j], idx[i]


@njit(cache=True, nogil=True)
def _sift_down(vals: np.ndarray, idx: np.ndarray, lo: int, root: int, end: int) -> None:  # pragma: no cover
    while True:
        child = root * 2 + 1
        top = root
        if child < end and vals[lo + top] < vals[lo + child]:
            top = child
        if child + 1 < end and vals[lo + top] < vals[lo + child + 1]:
            top = child + 1
        if top == root:
            return
        _swap(vals, idx, lo + root, lo + top)
        root = top


@njit(cache=True, nogil=True)
def _introsort3(vals: np.ndarray, idx: np.ndarray, lo: int, n: int, maxd: int) -> None:  # pragma: no cover
    """Sort vals[lo:lo + n] (carrying idx) exactly as scikit-learn's tree splitter does (introsort: median-of-3 pivot,
    3-way partition, heapsort past the depth limit, insertion sort below 16), so tied values end in its order."""
    while n > 15:
        if maxd <= 0:
            start = (n - 2) // 2
            while True:
                _sift_down(vals, idx, lo, start, n)
                if start == 0:
                    break
                start -= 1
            end = n - 1
            while end > 0:
                _swap(vals, idx, lo, lo + end)
                _sift_down(vals, idx, lo, 0, end)
                end -= 1
            return
        maxd -= 1
        a, b, c = vals[lo], vals[lo + n // 2], vals[lo + n - 1]
        if a < b:
            pivot = b if b < c else (c if a < c else a)
        elif b < c:
            pivot = a if a < c else c
        else:
            pivot = b
        i = 0
        left = 0
        right = n
        while i < right:
            if vals[lo + i] < pivot:
                _swap(vals, idx, lo + i, lo + left)
                i += 1
                left += 1
            elif vals[lo + i] > pivot:
                right -= 1
                _swap(vals, idx, lo + i, lo + right)
            else:
                i += 1
        _introsort3(vals, idx, lo, left, maxd)
        lo += right
        n -= right
    for i in range(1, n):
        v = vals[lo + i]
        k = idx[lo + i]
        j = i
        while j > 0 and vals[lo + j - 1] > v:
            vals[lo + j] = vals[lo + j - 1]
            idx[lo + j] = idx[lo + j - 1]
            j -= 1
        vals[lo + j] = v
        idx[lo + j] = k


@njit(cache=True, nogil=True)
def _grow_tree(x: np.ndarray, xt: np.ndarray, glob: np.ndarray, has_dup: np.ndarray, inv: np.ndarray, g: np.ndarray,
               seed: int, max_depth: int, min_split: int, min_leaf: int, min_decrease: float, work: np.ndarray,
               side: np.ndarray, sk: np.ndarray, vals: np.ndarray, feat: np.ndarray, thr: np.ndarray, left: np.ndarray,
               right: np.ndarray, imp: np.ndarray, leaf_of: np.ndarray) -> None:  # pragma: no cover - compiled
    """One regression tree on targets g, grown as scikit-learn's DepthFirstTreeBuilder with its BestSplitter.

    Nodes are numbered in scikit-learn's order (depth first, left child first). Fills feat/thr/left/right (H,)
    (left = −1: leaf), imp (d,) (Σ of n·imp − n_L·imp_L − n_R·imp_R per feature, undivided) and leaf_of (n,).
    glob (d, n): every feature's (stable) sorted sample order; work (2, d, n): the same lists partitioned by node
    (depth parity alternates the two buffers); inv (n + 1,): 1/m, for the split screen; sk (n,):
    scikit-learn's samples array (sorted by each visited feature in turn, then partitioned), which fixes its sum
    order. A feature without tied values in a node has one sorted order, read from glob/work; one with ties (has_dup)
    is sorted in sk with scikit-learn's introsort so that tied samples take its order."""
    n, d = x.shape
    feat[:] = -1
    left[:] = -1
    right[:] = -1
    imp[:] = 0.0
    for i in range(n):
        sk[i] = i
    feats = np.arange(d)
    const_feats = np.empty(d, np.int64)
    state = np.array([seed], np.int64)
    cap = 2 * max_depth + 4
    st_parent = np.empty(cap, np.int64)
    st_left = np.empty(cap, np.bool_)
    st_start = np.empty(cap, np.int64)
    st_end = np.empty(cap, np.int64)
    st_depth = np.empty(cap, np.int64)
    st_imp = np.empty(cap)
    st_const = np.empty(cap, np.int64)
    top = 1
    st_parent[0], st_left[0], st_start[0], st_end[0], st_depth[0], st_imp[0], st_const[0] = -1, False, 0, n, 0, \
        np.inf, 0
    count = 0
    while top > 0:
        top -= 1
        start, end, depth, impurity, n_known = st_start[top], st_end[top], st_depth[top], st_imp[top], st_const[top]
        h = count
        count += 1
        if st_parent[top] >= 0:
            if st_left[top]:
                left[st_parent[top]] = h
            else:
                right[st_parent[top]] = h
        rows = glob if depth == 0 else work[(depth - 1) % 2]
        nn = end - start
        is_leaf = depth >= max_depth or nn < min_split or nn < 2 * min_leaf
        s_tot = 0.0
        sq_tot = 0.0
        for p in range(start, end):
            yi = g[sk[p]]
            s_tot += yi
            sq_tot += yi * yi
        if h == 0:
            impurity = sq_tot / nn - (s_tot / nn) ** 2
        is_leaf = is_leaf or impurity <= _EPS
        best_f = -1
        best_pos = end
        best_thr = 0.0
        n_total = n_known
        if not is_leaf:
            best = -np.inf
            pending = -1  # sk[start:end] is rows[pending][start:end] (a tie-free sorted order), not yet copied
            f_i = d
            n_found = 0
            n_drawn = 0
            n_visited = 0
            while f_i > n_total and (n_visited < d or n_visited <= n_found + n_drawn):
                n_visited += 1
                f_j = _rand_int(n_drawn, f_i - n_found, state)
                if f_j < n_known:
                    feats[n_drawn], feats[f_j] = feats[f_j], feats[n_drawn]
                    n_drawn += 1
                    continue
                f_j += n_found
                f = feats[f_j]
                col = xt[f]
                row = rows[f]
                tied = False
                if has_dup[f]:
                    for p in range(start + 1, end):
                        if col[row[p]] == col[row[p - 1]]:
                            tied = True
                            break
                if tied:  # scikit-learn's order of the tied samples depends on its sort and on sk's current order
                    if pending >= 0:
                        src = rows[pending]
                        for p in range(start, end):
                            sk[p] = src[p]
                        pending = -1
                    for p in range(start, end):
                        vals[p] = col[sk[p]]
                    _introsort3(vals, sk, start, nn, 2 * int(math.log2(nn)))
                    row = sk
                else:
                    pending = f
                if col[row[end - 1]] <= col[row[start]] + _THR:
                    feats[f_j], feats[n_total] = feats[n_total], feats[f_j]
                    n_found += 1
                    n_total += 1
                    continue
                f_i -= 1
                feats[f_i], feats[f_j] = feats[f_j], feats[f_i]
                pos = start
                sl = 0.0
                p = start
                prev = col[row[start]]
                while True:
                    p += 1
                    while p < end:
                        v = col[row[p]]
                        if v > prev + _THR:
                            break
                        prev = v
                        p += 1
                    if p >= end:
                        break
                    v = col[row[p]]
                    nl = p - start
                    nr = end - p
                    if nl >= min_leaf and nr >= min_leaf:
                        if (p - pos) <= (end - p):
                            for q in range(pos, p):
                                sl += g[row[q]]
                        else:
                            sl = s_tot
                            for q in range(end - 1, p - 1, -1):
                                sl -= g[row[q]]
                        pos = p
                        sr = s_tot - sl
                        # cheap screen with reciprocals (within ~1e-15 of the proxy, both ≥ 0); the exact proxy,
                        # with scikit-learn's divisions, decides whenever the screen cannot rule the candidate out
                        if (sl * sl * inv[nl] + sr * sr * inv[nr]) * _SCREEN > best:
                            proxy = sl * sl / nl + sr * sr / nr
                            if proxy > best:
                                best = proxy
                                best_f = f
                                best_pos = p
                                best_thr = np.float64(prev) / 2.0 + np.float64(v) / 2.0
                    prev = v
            for j in range(n_known):
                feats[j] = const_feats[j]
            for j in range(n_known, n_known + n_found):
                const_feats[j] = feats[j]
            if pending >= 0:
                src = rows[pending]
                for p in range(start, end):
                    sk[p] = src[p]
        pos = best_pos
        nl = pos - start
        nr = end - pos
        imp_l = 0.0
        imp_r = 0.0
        if pos < end:
            lo, hi = start, end
            while lo < hi:
                if x[sk[lo], best_f] <= best_thr:
                    lo += 1
                else:
                    hi -= 1
                    sk[lo], sk[hi] = sk[hi], sk[lo]
            if (pos - start) <= (end - pos):
                sl = 0.0
                for p in range(start, pos):
                    sl += g[sk[p]]
            else:
                sl = s_tot
                for p in range(end - 1, pos - 1, -1):
                    sl -= g[sk[p]]
            sq_l = 0.0
            for p in range(start, pos):
                yi = g[sk[p]]
                sq_l += yi * yi
            sr = s_tot - sl
            imp_l = sq_l / nl - (sl / nl) ** 2
            imp_r = (sq_tot - sq_l) / nr - (sr / nr) ** 2
            improvement = (nn / n) * (impurity - nr / nn * imp_r - nl / nn * imp_l)
            if improvement + _EPS < min_decrease:
                pos = end
        if pos >= end:
            for p in range(start, end):
                leaf_of[sk[p]] = h
            continue
        feat[h] = best_f
        thr[h] = best_thr
        imp[best_f] += nn * impurity - nl * imp_l - nr * imp_r
        if depth + 1 < max_depth:  # the children may split: partition every feature's sorted list of this node
            for p in range(start, pos):
                side[sk[p]] = 1
            for p in range(pos, end):
                side[sk[p]] = 0
            out = work[depth % 2]
            for f in range(d):
                src = rows[f]
                dst = out[f]
                a = start
                b = pos
                for p in range(start, end):
                    i = src[p]
                    if side[i] == 1:
                        dst[a] = i
                        a += 1
                    else:
                        dst[b] = i
                        b += 1
        st_parent[top], st_left[top], st_start[top], st_end[top] = h, False, pos, end
        st_depth[top], st_imp[top], st_const[top] = depth + 1, imp_r, n_total
        top += 1
        st_parent[top], st_left[top], st_start[top], st_end[top] = h, True, start, pos
        st_depth[top], st_imp[top], st_const[top] = depth + 1, imp_l, n_total
        top += 1


@njit(cache=True, nogil=True)
def _leaf_update(y: np.ndarray, t: int, n_classes: int, g: np.ndarray, leaf_of: np.ndarray, learning_rate: float,
                 val: np.ndarray, raw: np.ndarray) -> None:  # pragma: no cover - compiled
    """Newton step per leaf, mean(g) / mean(p(1 − p)) with p = y_t − g (× (K − 1)/K for K > 2; numpy's pairwise
    means over the leaf's samples in index order), then F[:, t] += learning_rate · value(leaf)."""
    n = g.shape[0]
    h_count = val.shape[0]
    cnt = np.zeros(h_count + 1, np.int64)
    for i in range(n):
        cnt[leaf_of[i] + 1] += 1
    for h in range(h_count):
        cnt[h + 1] += cnt[h]
    fill = cnt[:h_count].copy()
    gs = np.empty(n)
    hs = np.empty(n)
    for i in range(n):
        h = leaf_of[i]
        yk = float(y[i]) if n_classes == 2 else (1.0 if y[i] == t else 0.0)
        prob = yk - g[i]
        gs[fill[h]] = g[i]
        hs[fill[h]] = prob * (1.0 - prob)
        fill[h] += 1
    for h in range(h_count):
        m = cnt[h + 1] - cnt[h]
        val[h] = 0.0
        if m > 0:
            num = _pairwise_sum(gs, cnt[h], m) / m
            if n_classes > 2:
                num *= (n_classes - 1) / n_classes
            den = _pairwise_sum(hs, cnt[h], m) / m
            val[h] = 0.0 if abs(den) < 1e-150 else num / den
    for i in range(n):
        raw[i, t] += learning_rate * val[leaf_of[i]]


@njit(cache=True, nogil=True)
def _predict_raw(x: np.ndarray, feat: np.ndarray, thr: np.ndarray, left: np.ndarray, right: np.ndarray,
                 val: np.ndarray, learning_rate: float, raw: np.ndarray) -> None:  # pragma: no cover - compiled
    """raw (n, T) += learning_rate · Σ_stages value(leaf of x) for every tree (x[f] ≤ threshold goes left)."""
    n = x.shape[0]
    n_stages, t_count, _ = feat.shape
    for i in range(n):
        for s in range(n_stages):
            for t in range(t_count):
                h = 0
                while left[s, t, h] >= 0:
                    h = left[s, t, h] if x[i, feat[s, t, h]] <= thr[s, t, h] else right[s, t, h]
                raw[i, t] += learning_rate * val[s, t, h]


def _as_features(x: Any, n_features: int | None = None) -> np.ndarray:
    """(n, d) C-contiguous float32 features (scikit-learn's tree dtype); non-2-D, non-finite or wrong width refused."""
    a = np.asarray(x)
    if a.ndim != 2 or a.shape[0] == 0 or a.shape[1] == 0:
        raise DataError(f"GBT features have shape {a.shape}; pass a non-empty (n_samples, n_features) array")
    with np.errstate(over="ignore"):
        x32 = np.ascontiguousarray(a, dtype=np.float32)
    if not np.isfinite(x32).all():
        raise DataError("GBT features contain NaN or Inf (or values beyond float32); drop or clip those rows")
    if n_features is not None and x32.shape[1] != n_features:
        raise DataError(f"GBT features have {x32.shape[1]} columns but the model was fitted on {n_features}; "
                        "pass the same latents")
    return x32


def _tie_heavy(sorted_values: np.ndarray) -> np.ndarray:
    """(d,) bool: features whose exactly tied float32 values cover more than 1/16 of the samples (discrete,
    quantised or rectified latents). Only those are sorted with scikit-learn's introsort to reproduce its order of
    tied samples; the few float32 collisions of continuous latents keep the stable order (see the module docstring)."""
    eq = np.diff(sorted_values, axis=1) == 0
    tied = np.zeros(sorted_values.shape, dtype=bool)
    tied[:, 1:] |= eq
    tied[:, :-1] |= eq
    return tied.sum(axis=1) * 16 > sorted_values.shape[1]


def _initial_raw(prior: np.ndarray) -> np.ndarray:
    """The raw prediction of the class prior clipped to [ε, 1 − ε]: logit(p₁) for two classes, log(p_k / gmean(p))
    (the symmetric multinomial logit) for K > 2."""
    from scipy.special import logit
    from scipy.stats import gmean

    eps = np.finfo(np.float64).eps
    p = np.clip(prior[None, :], eps, 1 - eps, dtype=np.float64)
    if p.shape[1] == 2:
        return logit(p[:, 1])
    return np.log(p / gmean(p, axis=1)[:, None])[0]


class ExactGBTClassifier:
    """Gradient-boosted trees (Friedman 2001) equal to scikit-learn's `GradientBoostingClassifier` (log loss; see the
    module docstring); `feature_importances_` are its impurity-decrease importances."""

    def __init__(self, *, n_estimators: int = 100, learning_rate: float = 0.1, max_depth: int = 3,
                 min_samples_split: int = 2, min_samples_leaf: int = 1, min_impurity_decrease: float = 0.0,
                 random_state: int = 0) -> None:
        for name, value, low, high in (("n_estimators", n_estimators, 1, None), ("max_depth", max_depth, 1, 62),
                                       ("min_samples_split", min_samples_split, 2, None),
                                       ("min_samples_leaf", min_samples_leaf, 1, None)):
            if int(value) != value or value < low or (high is not None and value > high):
                bound = f"in {low}..{high}" if high is not None else f"≥ {low}"
                raise ConfigError(f"GBT {name}={value!r} is invalid; pass an integer {bound}")
        if not learning_rate > 0 or not min_impurity_decrease >= 0:
            raise ConfigError("GBT learning_rate must be > 0 and min_impurity_decrease ≥ 0; pass valid values")
        self.n_estimators, self.learning_rate, self.max_depth = int(n_estimators), float(learning_rate), int(max_depth)
        self.min_samples_split = max(int(min_samples_split), 2 * int(min_samples_leaf))
        self.min_samples_leaf = int(min_samples_leaf)
        self.min_impurity_decrease, self.random_state = float(min_impurity_decrease), int(random_state)

    def fit(self, x: Any, y: Any) -> ExactGBTClassifier:
        """Fit the boosting stages to features x (n, d) and class labels y (n,) (any sortable labels, ≥ 2 classes)."""
        x32 = _as_features(x)
        y = np.asarray(y)
        if y.ndim != 1 or len(y) != len(x32):
            raise DataError(f"GBT labels have shape {y.shape} for {len(x32)} rows; pass one label per row")
        self.classes_, codes = np.unique(y, return_inverse=True)
        k = len(self.classes_)
        if k < 2:
            raise DataError("GBT labels take a single value; pass labels with at least two classes")
        codes = codes.astype(np.int64).reshape(-1)
        n, d = x32.shape
        if n >= 2**31 - 1:
            raise DataError(f"GBT got {n} rows; this engine indexes rows with int32, pass fewer than 2³¹ − 1 rows")
        t_count = 1 if k == 2 else k
        h_count = min((1 << (self.max_depth + 1)) - 1, 2 * n - 1)  # nodes of one tree, at most
        xt = np.ascontiguousarray(x32.T)
        glob = np.ascontiguousarray(np.argsort(xt, axis=1, kind="stable").astype(np.int32))
        has_dup = _tie_heavy(np.take_along_axis(xt, glob, axis=1))
        rng = np.random.RandomState(self.random_state)
        seeds = [[rng.randint(0, _RAND_R_MAX) for _ in range(t_count)] for _ in range(self.n_estimators)]
        self.init_raw_ = _initial_raw(np.bincount(codes, minlength=k) / n)
        raw = np.tile(self.init_raw_, (n, 1))
        feat = np.full((self.n_estimators, t_count, h_count), -1, np.int64)
        left = np.full((self.n_estimators, t_count, h_count), -1, np.int64)
        right = np.full((self.n_estimators, t_count, h_count), -1, np.int64)
        thr = np.zeros((self.n_estimators, t_count, h_count))
        val = np.zeros((self.n_estimators, t_count, h_count))
        imp = np.zeros((self.n_estimators, t_count, d))
        neg = np.empty((t_count, n))
        work = np.empty((2, d, n), np.int32)
        side = np.empty(n, np.uint8)
        inv = 1.0 / np.maximum(np.arange(n + 1), 1)
        sk = np.empty(n, np.int32)
        vals = np.empty(n, np.float32)
        leaf_of = np.empty(n, np.int64)
        for s in range(self.n_estimators):
            _neg_gradient(codes, raw, neg)
            for t in range(t_count):
                _grow_tree(x32, xt, glob, has_dup, inv, neg[t], seeds[s][t], self.max_depth, self.min_samples_split,
                           self.min_samples_leaf, self.min_impurity_decrease, work, side, sk, vals, feat[s, t],
                           thr[s, t], left[s, t], right[s, t], imp[s, t], leaf_of)
                _leaf_update(codes, t, k, neg[t], leaf_of, self.learning_rate, val[s, t], raw)
        self.n_features_in_, self.n_trees_per_iteration_ = d, t_count
        self.tree_feature_, self.tree_threshold_, self.tree_value_ = feat, thr, val
        self.tree_left_, self.tree_right_ = left, right
        self.tree_importance_ = imp / n  # per tree: scikit-learn's compute_feature_importances(normalize=False)
        return self

    @property
    def feature_importances_(self) -> np.ndarray:
        """Impurity-decrease importances: the mean over trees with ≥ 1 split of each tree's weighted MSE decrease per
        feature, normalised to sum 1 (all zeros when no tree splits), as scikit-learn's gradient boosting."""
        per_tree = self.tree_importance_.reshape(-1, self.n_features_in_)
        relevant = (self.tree_left_[:, :, 0] >= 0).reshape(-1)  # trees whose root splits
        if not relevant.any():
            return np.zeros(self.n_features_in_)
        avg = np.mean(per_tree[relevant], axis=0, dtype=np.float64)
        return avg / np.sum(avg)

    def decision_function(self, x: Any) -> np.ndarray:
        """Raw predictions F(x): (n,) for two classes, (n, K) otherwise."""
        x32 = _as_features(x, self.n_features_in_)
        raw = np.tile(self.init_raw_, (len(x32), 1))
        _predict_raw(x32, self.tree_feature_, self.tree_threshold_, self.tree_left_, self.tree_right_,
                     self.tree_value_, self.learning_rate, raw)
        return raw[:, 0] if self.n_trees_per_iteration_ == 1 else raw

    def predict_proba(self, x: Any) -> np.ndarray:
        """Class probabilities (n, K): expit of F for two classes, softmax of F otherwise."""
        raw = self.decision_function(x)
        if raw.ndim == 1:
            from scipy.special import expit

            p1 = expit(raw)
            return np.stack([1.0 - p1, p1], axis=1)
        e = np.exp(raw - raw.max(axis=1, keepdims=True))
        return e / e.sum(axis=1, keepdims=True)

    def predict(self, x: Any) -> np.ndarray:
        """Predicted labels: class 1 where F ≥ 0 (two classes), else the argmax of F."""
        raw = self.decision_function(x)
        idx = (raw >= 0).astype(np.int64) if raw.ndim == 1 else np.argmax(raw, axis=1)
        return self.classes_[idx]
