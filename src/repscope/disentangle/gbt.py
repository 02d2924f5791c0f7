"""Exact gradient-boosted trees for DCI importances: scikit-learn's `GradientBoostingClassifier` (defaults), faster.

The estimator: Friedman (2001) gradient boosting with the log loss, as scikit-learn 1.9 fits it with its defaults
(loss="log_loss", learning_rate 0.1, 100 stages, subsample 1, max_depth 3, min_samples_split 2, min_samples_leaf 1,
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

Our design (why hand-written: DCI needs disentanglement_lib's exact estimator, and no library fits it faster): each
feature is sorted once per fit (a stable argsort); every tree keeps one sorted sample list per feature and, at each
split, partitions all of the node's lists stably into its children's ranges (an O(n·d) pass per level), so no node
sorts again; candidate splits are screened with precomputed reciprocals before the exact proxy is computed. A feature
without two equal values in the node has one sorted order, read from its list; a feature with tied values is sorted
again, from the node's current order, by `_tie_order_sort`, which leaves tied samples where scikit-learn's introsort
leaves them (and copies every tie-free stretch from the presorted list, so rare ties cost O(n), not O(n log n)). The
node sums run over the node's samples in that order (sorted by each examined feature in turn), then partitioned by
the chosen split: the order scikit-learn's splitter leaves them in. Leaf values are computed after each tree, outside
the compiled grower, with numpy itself: the samples are grouped by leaf in index order and each leaf's means are
numpy sums of its slice (`np.add.reduce`), the arithmetic of scikit-learn's Python leaf update (`np.average`).
Memory: about 20·n·d bytes (float32 copies of the features, int32 lists).

Reproduced behaviour, for reference equality of tie-breaking and rounding (after scikit-learn, BSD-3-Clause):
scikit-learn's seeded feature visiting order, i.e. one 32-bit xorshift seed per tree drawn from numpy's
RandomState(random_state), and per node a Fisher–Yates draw over the features not known to be constant, the constant
features found in a node being passed down to its children (`_visit_order`). The visiting order decides which
feature wins an exact tie (e.g. duplicated columns) and, through the sample order it leaves, the rounding of the
sums that decide near-tied splits; without it DCI differs from scikit-learn by up to ~1e-2 even on continuous latents.
And the order in which scikit-learn's node sort (introsort, median-of-3 pivots, 3-way partitions, insertion sort
below 16 values, heapsort past its depth budget) leaves samples with equal values (`_tie_order_sort`).

Agreement with scikit-learn 1.9.1 (`GradientBoostingClassifier(random_state=...)`): bit-for-bit equal fits
(importances, tree values, predictions), on continuous and on tied float32 features (discrete, quantised, rounded or
rectified latents) alike: tests/test_disentangle_gbt.py checks both, DCI on rounded and 10-level quantised latents over
several seeds, and the tie-order sort against scikit-learn's own sort (its heapsort fallback included). While tied
samples kept the stable presorted order instead (earlier versions), tied latents gave |ΔD| up to ~1e-3.
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
_SEED_BOUND = 2147483647  # per-tree seeds are drawn in [0, 2³¹ − 1) (scikit-learn's RAND_R_MAX)


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


# Reproduces the feature visiting order of scikit-learn's tree splitter (scikit-learn, BSD-3-Clause, © the
# scikit-learn developers) for reference equality of tie-breaking and rounding; written here from its behaviour.
@njit(cache=True, nogil=True)
def _visit_order(order: np.ndarray, known: np.ndarray, n_known: int, constant: np.ndarray, rng: np.ndarray,
                 visit: np.ndarray) -> tuple[int, int]:  # pragma: no cover - compiled
    """The features one node examines, in scikit-learn's seeded feature visiting order.

    Behaviour reproduced (scikit-learn's BestSplitter with max_features = d; scikit-learn is BSD-3-Clause licensed):
    one 32-bit xorshift seed per tree, drawn from numpy's RandomState(random_state) (see `fit`); per node a
    Fisher–Yates draw over the features not known to be constant, the constant features found in a node passed down
    to its children. It is reproduced only so that exact ties (which feature wins) and rounding (the node's sample
    order, hence its sums) come out as in scikit-learn; the fitted estimator does not otherwise depend on it.

    order (d,): the tree's feature permutation, carried from node to node (the draws permute it in place); its first
    n_known entries are the features known constant in this node's ancestors. known (d,): the tree's list of those
    features, known[:n_known] for this node (known[n_known:] is overwritten with the ones found here). constant (d,):
    whether each feature is constant (max − min ≤ 1e-7) in this node. rng (1,): the tree's xorshift state. Writes the
    features to examine, in order, to visit[:m] (constant ones included: they are examined and set aside) and returns
    (m, the number of constant features known to this node's children)."""
    d = order.shape[0]
    unseen_end = d  # order[n_known + n_found : unseen_end] holds the features not yet drawn in this node
    n_skipped = 0  # features known constant drawn so far (moved to the front of order)
    n_found = 0  # features found constant in this node (kept right after the known ones)
    n_draws = 0
    m = 0
    while unseen_end > n_known + n_found and (n_draws < d or n_draws <= n_found + n_skipped):
        n_draws += 1
        # one xorshift32 step (shifts 13, 17, 5; a zero state restarts at 1), reduced mod 2³¹, then into the range
        s = rng[0] if rng[0] != 0 else 1
        s ^= (s << 13) & 0xFFFFFFFF
        s ^= s >> 17
        s ^= (s << 5) & 0xFFFFFFFF
        rng[0] = s
        j = n_skipped + (s % 2147483648) % (unseen_end - n_found - n_skipped)
        if j < n_known:  # known constant: set aside without examining it
            order[n_skipped], order[j] = order[j], order[n_skipped]
            n_skipped += 1
            continue
        j += n_found
        f = order[j]
        visit[m] = f
        m += 1
        if constant[f]:  # examined, found constant: joins the block handed to the children
            order[j], order[n_known + n_found] = order[n_known + n_found], order[j]
            n_found += 1
        else:
            unseen_end -= 1
            order[unseen_end], order[j] = order[j], order[unseen_end]
    for i in range(n_known):
        order[i] = known[i]
    for i in range(n_known, n_known + n_found):
        known[i] = order[i]
    return m, n_known + n_found


# Reproduces the order in which scikit-learn's tree splitter leaves tied samples when it sorts a node by one feature
# (scikit-learn, BSD-3-Clause, © the scikit-learn developers), for reference equality of rounding; written here from
# its documented behaviour (introsort, Musser 1997, with Bentley–McIlroy median-of-3 pivots and 3-way partitions).
@njit(cache=True, nogil=True)
def _tie_order_sort(vals: np.ndarray, idx: np.ndarray, lo: int, n: int, ref: np.ndarray,
                    tp: np.ndarray) -> None:  # pragma: no cover - compiled
    """Sort vals[lo:lo + n] ascending, permuting idx[lo:lo + n] alongside, leaving equal values in the order
    scikit-learn's `simultaneous_sort(..., use_three_way_partition=True)` leaves them in.

    Behaviour reproduced: a depth budget of 2·⌊log₂ n⌋; while a part holds more than 15 values, either (budget
    spent) heapsort it, or spend one unit, take the median of its first, middle (offset ⌊m/2⌋) and last values as
    pivot and split it in one left-to-right pass into < pivot | = pivot | > pivot (a smaller value swaps with the
    front of the middle block, a larger one with the slot before the > block, whose new value is examined next);
    the < part is sorted with the budget left at that point, the > part continues. Parts of ≤ 15 values: insertion
    sort (stable). Only the order of equal values depends on these details.

    Shortcut (ours): every part holds exactly the values of one value interval, i.e. one range of sorted positions,
    so a part without two equal values can only end in its unique sorted order, which is copied from `ref` (the same
    samples sorted, ref[lo:lo + n]); tp[p] counts the equal neighbours in ref[lo:p + 1]. With few ties a sort then
    costs O(n) instead of O(n log n). A part holding a single value is left as it is unless it would be heapsorted (a
    pass or an insertion moves nothing there)."""
    if n <= 1:
        return
    budget = 2 * int(math.floor(math.log2(n)))
    # explicit stack of parts still to sort: (start, size, depth budget); parts are disjoint, so the order in which
    # they are processed does not change the result
    st_lo = np.empty(64 + 2 * budget, np.int64)
    st_n = np.empty(64 + 2 * budget, np.int64)
    st_b = np.empty(64 + 2 * budget, np.int64)
    st_lo[0], st_n[0], st_b[0] = lo, n, budget
    top = 1
    while top > 0:
        top -= 1
        a, m, b = st_lo[top], st_n[top], st_b[top]
        while m > 0:
            if tp[a + m - 1] == tp[a]:  # no two equal values in the part: its sorted order is unique
                for p in range(a, a + m):
                    idx[p] = ref[p]
                break
            if tp[a + m - 1] - tp[a] == m - 1 and (m <= 15 or b > 0):
                break  # one value only: passes and insertion sort leave its order as it is (heapsort would not)
            if m <= 15:  # insertion sort of a small part (stable)
                for i in range(a + 1, a + m):
                    v = vals[i]
                    w = idx[i]
                    j = i
                    while j > a and vals[j - 1] > v:
                        vals[j] = vals[j - 1]
                        idx[j] = idx[j - 1]
                        j -= 1
                    vals[j] = v
                    idx[j] = w
                break
            if b <= 0:
                _heap_sort(vals, idx, a, m)
                break
            b -= 1
            x, y, z = vals[a], vals[a + m // 2], vals[a + m - 1]
            if x < y:
                pivot = y if y < z else (z if x < z else x)
            elif y < z:
                pivot = x if x < z else z
            else:
                pivot = y
            i = 0
            less = 0
            more = m
            while i < more:
                v = vals[a + i]
                if v < pivot:
                    _swap2(vals, idx, a + i, a + less)
                    i += 1
                    less += 1
                elif v > pivot:
                    more -= 1
                    _swap2(vals, idx, a + i, a + more)
                else:
                    i += 1
            if less > 0:
                st_lo[top], st_n[top], st_b[top] = a, less, b  # the < part, with the budget left now
                top += 1
            a += more
            m -= more


@njit(cache=True, nogil=True, inline="always")
def _swap2(vals: np.ndarray, idx: np.ndarray, i: int, j: int) -> None:  # pragma: no cover - compiled
    vals[i], vals[j] = vals[j], vals[i]
    idx[i], idx[j] = idx[j], idx[i]


@njit(cache=True, nogil=True)
def _heap_sort(vals: np.ndarray, idx: np.ndarray, a: int, m: int) -> None:  # pragma: no cover - compiled
    """Heapsort of vals[a:a + m] (max-heap built bottom-up from ⌊(m − 2)/2⌋, then the root swapped to the end and
    sifted down; a child replaces its parent only when strictly larger, the left one first)."""
    start = (m - 2) // 2
    while True:
        _sift(vals, idx, a, start, m)
        if start == 0:
            break
        start -= 1
    for end in range(m - 1, 0, -1):
        _swap2(vals, idx, a, a + end)
        _sift(vals, idx, a, 0, end)


@njit(cache=True, nogil=True)
def _sift(vals: np.ndarray, idx: np.ndarray, a: int, root: int, end: int) -> None:  # pragma: no cover - compiled
    while True:
        child = 2 * root + 1
        top = root
        if child < end and vals[a + top] < vals[a + child]:
            top = child
        if child + 1 < end and vals[a + top] < vals[a + child + 1]:
            top = child + 1
        if top == root:
            return
        _swap2(vals, idx, a + root, a + top)
        root = top


@njit(cache=True, nogil=True)
def _grow_tree(xt: np.ndarray, glob: np.ndarray, inv: np.ndarray, g: np.ndarray, seed: int, max_depth: int,
               min_split: int, min_leaf: int, min_decrease: float, work: np.ndarray, side: np.ndarray, sk: np.ndarray,
               feat: np.ndarray, thr: np.ndarray, left: np.ndarray, right: np.ndarray, imp: np.ndarray,
               leaf_of: np.ndarray, has_ties: np.ndarray, vals: np.ndarray,
               tp: np.ndarray) -> None:  # pragma: no cover - compiled
    """One regression tree on targets g, grown depth first (left child first; scikit-learn's node numbering).

    xt (d, n): the float32 features, one row per feature. Fills feat/thr/left/right (H,) (left = −1: leaf), imp (d,)
    (Σ of n·imp − n_L·imp_L − n_R·imp_R per feature, undivided) and leaf_of (n,). glob (d, n): every feature's
    stable sorted sample order; work (2, d, n): the same lists partitioned node by node (depth parity alternates the
    two buffers); inv (n + 1,): 1/m, for the split screen; sk (n,): the node's samples in the order its sums use
    (the order scikit-learn's splitter leaves them in: sorted by each examined feature in turn, tied samples in the
    order `_tie_order_sort` gives them, then partitioned by the chosen split); has_ties (d,): whether a feature has
    exactly equal values anywhere; vals (n,) float32 and tp (n,) int64: scratch for `_tie_order_sort`."""
    d, n = xt.shape
    feat[:] = -1
    left[:] = -1
    right[:] = -1
    imp[:] = 0.0
    for i in range(n):
        sk[i] = i
    order = np.arange(d)
    known = np.empty(d, np.int64)
    constant = np.empty(d, np.bool_)
    visit = np.empty(d, np.int64)
    rng = np.array([seed], np.int64)
    cap = 2 * max_depth + 4
    st_parent = np.empty(cap, np.int64)
    st_left = np.empty(cap, np.bool_)
    st_start = np.empty(cap, np.int64)
    st_end = np.empty(cap, np.int64)
    st_depth = np.empty(cap, np.int64)
    st_imp = np.empty(cap)
    st_known = np.empty(cap, np.int64)
    top = 1
    st_parent[0], st_left[0], st_start[0], st_end[0], st_depth[0], st_imp[0], st_known[0] = -1, False, 0, n, 0, \
        np.inf, 0
    count = 0
    while top > 0:
        top -= 1
        start, end, depth, impurity, n_known = st_start[top], st_end[top], st_depth[top], st_imp[top], st_known[top]
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
        n_known_below = n_known
        if not is_leaf:
            for f in range(d):
                constant[f] = xt[f, rows[f, end - 1]] <= xt[f, rows[f, start]] + _THR
            m, n_known_below = _visit_order(order, known, n_known, constant, rng, visit)
            best = -np.inf
            # the node's current sample order (scikit-learn sorts the node by every feature it examines, constant
            # ones included): sk[start:end] when cur < 0, else rows[cur][start:end], the unique sorted order of a
            # feature without tied values in the node
            cur = -1
            for v_i in range(m):
                f = visit[v_i]
                row = rows[f]
                n_eq = 0
                if has_ties[f]:
                    tp[start] = 0
                    col = xt[f]
                    prev = col[row[start]]
                    for p in range(start + 1, end):
                        v = col[row[p]]
                        if v == prev:
                            n_eq += 1
                        tp[p] = n_eq
                        prev = v
                if n_eq == 0:
                    cur = f
                elif xt[f, row[start]] != xt[f, row[end - 1]]:  # an all-equal key leaves the order as it is
                    if cur >= 0:
                        src = rows[cur]
                        for p in range(start, end):
                            sk[p] = src[p]
                        cur = -1
                    for p in range(start, end):
                        vals[p] = xt[f, sk[p]]
                    _tie_order_sort(vals, sk, start, end - start, row, tp)
                    row = sk
                if constant[f]:
                    continue
                col = xt[f]
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
            if cur >= 0:
                src = rows[cur]
                for p in range(start, end):
                    sk[p] = src[p]
        pos = best_pos
        nl = pos - start
        nr = end - pos
        imp_l = 0.0
        imp_r = 0.0
        if pos < end:
            col = xt[best_f]
            lo, hi = start, end
            while lo < hi:  # in-place two-sided partition of sk by the threshold (not stable)
                if col[sk[lo]] <= best_thr:
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
        st_depth[top], st_imp[top], st_known[top] = depth + 1, imp_r, n_known_below
        top += 1
        st_parent[top], st_left[top], st_start[top], st_end[top] = h, True, start, pos
        st_depth[top], st_imp[top], st_known[top] = depth + 1, imp_l, n_known_below
        top += 1


@njit(cache=True, nogil=True)
def _group_by_leaf(leaf_of: np.ndarray, g: np.ndarray, y: np.ndarray, t: int, binary: bool, g_by_leaf: np.ndarray,
                   hess_by_leaf: np.ndarray, bounds: np.ndarray) -> None:  # pragma: no cover - compiled
    """Group the samples by leaf, each leaf's samples in index order (a counting sort on the leaf id): g_by_leaf
    holds their negative gradients g, hess_by_leaf their p(1 − p) with p = y_t − g (y_t: the 0/1 label for two
    classes, 1[y = t] otherwise); leaf h's samples lie at [bounds[h], bounds[h + 1])."""
    n = leaf_of.shape[0]
    bounds[:] = 0
    for i in range(n):
        bounds[leaf_of[i] + 1] += 1
    for h in range(bounds.shape[0] - 1):
        bounds[h + 1] += bounds[h]
    fill = bounds[:-1].copy()
    for i in range(n):
        h = leaf_of[i]
        target = float(y[i]) if binary else (1.0 if y[i] == t else 0.0)
        prob = target - g[i]
        g_by_leaf[fill[h]] = g[i]
        hess_by_leaf[fill[h]] = prob * (1.0 - prob)
        fill[h] += 1


def _leaf_values(g_by_leaf: np.ndarray, hess_by_leaf: np.ndarray, bounds: np.ndarray, is_leaf: np.ndarray,
                 n_classes: int, out: np.ndarray) -> None:
    """One Newton step per leaf (Friedman 2001): mean(g) / mean(p(1 − p)) over the leaf's samples, × (K − 1)/K for
    K > 2 classes, 0 where the mean hessian is below 1e-150. The means are numpy sums (`np.add.reduce`) of each
    leaf's contiguous slice in index order divided by its size, the arithmetic of scikit-learn's Python leaf update
    (`np.average` without weights), hence the same values to the bit."""
    factor = (n_classes - 1) / n_classes
    add = np.add.reduce
    for h in np.flatnonzero(is_leaf):
        a, b = int(bounds[h]), int(bounds[h + 1])
        size = b - a
        if size == 0:
            continue
        num = add(g_by_leaf[a:b]) / size
        if n_classes > 2:
            num *= factor
        den = add(hess_by_leaf[a:b]) / size
        out[h] = 0.0 if abs(den) < 1e-150 else float(num) / float(den)


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
        srt = np.take_along_axis(xt, glob, axis=1)
        has_ties = (srt[:, 1:] == srt[:, :-1]).any(axis=1)  # features with exactly equal values somewhere
        vals, tp = np.empty(n, np.float32), np.empty(n, np.int64)
        rng = np.random.RandomState(self.random_state)  # one xorshift seed per tree, as scikit-learn draws them
        seeds = [[rng.randint(0, _SEED_BOUND) for _ in range(t_count)] for _ in range(self.n_estimators)]
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
        leaf_of = np.empty(n, np.int64)
        g_by_leaf, hess_by_leaf, bounds = np.empty(n), np.empty(n), np.empty(h_count + 1, np.int64)
        for s in range(self.n_estimators):
            _neg_gradient(codes, raw, neg)
            for t in range(t_count):
                _grow_tree(xt, glob, inv, neg[t], seeds[s][t], self.max_depth, self.min_samples_split,
                           self.min_samples_leaf, self.min_impurity_decrease, work, side, sk, feat[s, t], thr[s, t],
                           left[s, t], right[s, t], imp[s, t], leaf_of, has_ties, vals, tp)
                _group_by_leaf(leaf_of, neg[t], codes, t, k == 2, g_by_leaf, hess_by_leaf, bounds)
                _leaf_values(g_by_leaf, hess_by_leaf, bounds, left[s, t] < 0, k, val[s, t])
                raw[:, t] += self.learning_rate * val[s, t][leaf_of]
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
