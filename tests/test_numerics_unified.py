"""One engine per numeric job (issue 10): one exact k-NN with one tie rule, one linear readout, one row-subset
helper, and no hidden global state."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import NearestNeighbors
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from repscope.dictionary.metrics import probe_after_reconstruction
from repscope.errors import ConfigError
from repscope.kernels.knn import knn_distances
from repscope.kernels.readout import transfer_accuracy
from repscope.selection import subset_rows
from repscope.similarity import neighbors
from repscope.similarity.relative import zero_shot_stitching
from repscope.similarity.stitching import stitching_score

SRC = Path(__file__).resolve().parents[1] / "src" / "repscope"


def _lexi_knn(x: np.ndarray, k: int) -> np.ndarray:
    """Reference: neighbours ordered by (exact squared distance, index), self excluded."""
    d = ((x[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    n = len(x)
    return np.stack([np.lexsort((np.arange(n), d[i]))[:k] for i in range(n)])


@pytest.mark.parametrize("block", [64, 2048])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_knn_tie_rule_is_distance_then_lower_index(dtype, block):
    # points on a small integer lattice, with duplicates: distances tie massively and exactly
    rng = np.random.default_rng(0)
    x = rng.integers(0, 3, size=(300, 3)).astype(np.float64)
    for k in (1, 4, 9):
        _, idx = knn_distances(x, k, device="cpu", dtype=dtype, return_indices=True, block_rows=block)
        np.testing.assert_array_equal(idx.numpy(), _lexi_knn(x, k))


def test_knn_tie_rule_holds_on_the_pruned_path(monkeypatch):
    import repscope.kernels.knn as knn

    monkeypatch.setattr(knn, "PRUNE_MIN_WORK", 0)
    engaged = []
    real = knn._pruned_candidates
    monkeypatch.setattr(knn, "_pruned_candidates", lambda *a, **kw: engaged.append(real(*a, **kw)) or engaged[-1])
    rng = np.random.default_rng(4)
    lat = rng.integers(0, 16, size=(4200, 3))
    x = lat @ rng.integers(-3, 4, size=(3, 200))  # integer points of a 3-D lattice in 200 dimensions: exact ties
    x = x + rng.integers(0, 2, size=x.shape) * (rng.random(len(x)) < 0.05)[:, None]  # a few off-lattice points
    xf = x.astype(np.float64)
    g = xf @ xf.T  # integers below 2⁵³: the float64 products and sums are exact
    sq = np.diag(g)[:, None] + np.diag(g)[None, :] - 2 * g
    np.fill_diagonal(sq, np.inf)
    k = 5
    key = sq * len(x) + np.arange(len(x))  # (distance, index) as one exact number: integers below 2⁵³
    part = np.argpartition(key, k, axis=1)[:, :k]
    ref = np.take_along_axis(part, np.argsort(np.take_along_axis(key, part, 1), axis=1), 1)
    _, idx = knn_distances(x.astype(np.float32), k, device="cpu", return_indices=True)
    assert engaged and engaged[0] is not None  # the screen ran (and its uncertified rows fell back)
    np.testing.assert_array_equal(idx.numpy(), ref)


def test_mutual_knn_uses_the_exact_engine_and_matches_sklearn():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(200, 7))
    y = x @ rng.normal(size=(7, 5)) + 0.3 * rng.normal(size=(200, 5))
    k = 6
    sets = []
    for a in (x, y):
        nn = NearestNeighbors(n_neighbors=k + 1).fit(a)
        sets.append([set(r[1:]) for r in nn.kneighbors(a, return_distance=False)])
    ref = np.mean([len(sets[0][i] & sets[1][i]) for i in range(len(x))]) / k
    assert neighbors.mutual_knn(x, y, k, "euclidean", "cpu") == pytest.approx(ref, abs=1e-12)
    stats = neighbors.prepare_knn(x, k, "euclidean", "cpu")
    np.testing.assert_array_equal(stats.indices.numpy(), knn_distances(x, k, device="cpu", return_indices=True)[1])


def test_zero_row_rule_for_cosine_neighbours():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(40, 6))
    x[[5, 17, 30]] = 0.0  # three samples with every unit off
    st = neighbors.prepare_knn(x, 2, "cosine", "cpu")
    idx = st.indices.numpy()
    # all-zero samples are identical representations: each one's nearest are the other two, in index order
    assert idx[5].tolist() == [17, 30] and idx[17].tolist() == [5, 30] and idx[30].tolist() == [5, 17]
    # a zero sample's kernel value (cosine) with anything is 0, also with another zero sample
    assert torch.all(st.kvals[[5, 17, 30]] == 0)
    # a non-zero sample ranks a zero sample like an orthogonal one: after every positive cosine
    u = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-300)
    cos = u @ u.T
    st_all = neighbors.prepare_knn(x, 39, "cosine", "cpu")
    for i in (0, 1, 2):
        order = st_all.indices[i].numpy()
        pos = {j: p for p, j in enumerate(order)}
        for z in (5, 17, 30):
            assert all(pos[j] < pos[z] for j in range(40) if j not in (i, 5, 17, 30) and cos[i, j] > 1e-9)
            assert all(pos[j] > pos[z] for j in range(40) if j not in (i, 5, 17, 30) and cos[i, j] < -1e-9)


def _reference_accuracy(xtr, ytr, xte, yte, scaling="isotropic"):
    """The readout written with scikit-learn: L2 logistic regression, C = 1, after isotropic scaling (centre, one
    global scale √(mean ‖x − x̄‖²/d), fitted on the training rows) or per-feature z-scoring (ddof 0)."""
    if scaling == "standard":
        clf = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=5000, tol=1e-10))
        return clf.fit(xtr, ytr).score(xte, yte)
    mu = xtr.mean(0)
    s = np.sqrt(((xtr - mu) ** 2).sum(1).mean() / xtr.shape[1])
    clf = LogisticRegression(C=1.0, max_iter=5000, tol=1e-10).fit((xtr - mu) / s, ytr)
    return clf.score((xte - mu) / s, yte)


def _data(seed=3, n=300, d=8):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n)
    x = rng.normal(size=(n, d)) * np.array([5.0, 1, 1, 0.01, 1, 1, 1, 1])  # scales that matter unstandardised
    x[:, :3] += 2.0 * np.eye(3)[y] * np.array([5.0, 1, 1])
    return x, y


def test_stitching_relative_and_reconstruction_share_one_readout():
    x, y = _data()
    perm = np.random.default_rng(0).permutation(len(x))  # the split both stitching scores draw for seed 0
    tr, te = perm[:210], perm[210:]
    tol = 1.5 / len(te)  # one test row: the solvers agree to their tolerance, not to the last prediction
    ref = _reference_accuracy(x[tr], y[tr], x[te], y[te])
    assert stitching_score(x, x, y, kind="affine", device="cpu")["acc_b"] == pytest.approx(ref, abs=tol)
    assert zero_shot_stitching(x, x, y, n_anchors=20, device="cpu")["acc_abs_a_to_b"] == pytest.approx(ref, abs=tol)
    out = probe_after_reconstruction(x[:200], y[:200], x[200:], y[200:], x[200:], device="cpu")
    assert out["probe_acc"] == pytest.approx(_reference_accuracy(x[:200], y[:200], x[200:], y[200:]), abs=0.015)
    assert out["probe_acc_drop"] == 0.0
    std = transfer_accuracy(x[tr], y[tr], {"t": (x[te], y[te])}, scaling="standard", device="cpu")["t"]
    assert std == pytest.approx(_reference_accuracy(x[tr], y[tr], x[te], y[te], "standard"), abs=tol)


def test_isotropic_readout_is_not_fooled_by_errors_in_near_constant_directions():
    x, y = _data()
    noisy = x.copy()
    noisy[200:, 3] += np.random.default_rng(9).normal(size=100) * 0.5  # small error, 50× that feature's spread
    iso = probe_after_reconstruction(x[:200], y[:200], x[200:], y[200:], noisy[200:], device="cpu")
    assert iso["probe_acc_drop"] < 0.05
    std = transfer_accuracy(x[:200], y[:200], {"orig": (x[200:], y[200:]), "recon": (noisy[200:], y[200:])},
                            scaling="standard", device="cpu")
    assert std["orig"] - std["recon"] > 0.15  # per-feature z-scoring magnifies that error
    with pytest.raises(ConfigError, match="isotropic"):
        transfer_accuracy(x, y, {}, scaling="minmax")


def test_subset_rows_is_the_seeded_uniform_subset():
    idx = subset_rows(1000, 100, 7)
    assert len(idx) == 100 and len(np.unique(idx)) == 100 and np.all(np.diff(idx) > 0)
    np.testing.assert_array_equal(idx, np.sort(np.random.default_rng(7).choice(1000, 100, replace=False)))
    np.testing.assert_array_equal(subset_rows(1000, 100, 7), idx)  # same seed, same rows
    assert not np.array_equal(subset_rows(1000, 100, 8), idx)
    np.testing.assert_array_equal(subset_rows(50, None), np.arange(50))
    np.testing.assert_array_equal(subset_rows(50, 0), np.arange(50))
    rows = np.array([9, 4, 7])
    np.testing.assert_array_equal(subset_rows(rows, 5), rows)  # nothing to drop: the rows as given
    pairs = np.repeat(np.arange(100), 2)
    sub = subset_rows(200, 31, 0, groups=pairs)
    assert len(sub) == 30 and np.all(np.bincount(pairs[sub])[np.unique(pairs[sub])] == 2)  # whole pairs only
    with pytest.raises(ConfigError, match="max_rows"):
        subset_rows(10, -3)


def test_no_hidden_global_state_in_library_code():
    offenders = []
    for path in SRC.rglob("*.py"):
        text = path.read_text(encoding="utf-8")
        if path.name != "threads.py" and "set_num_threads(" in text:
            offenders.append(f"{path.name}: set_num_threads")
        if re.search(r"\._version\b", text):
            offenders.append(f"{path.name}: torch's private _version")
        if re.search(r"\bid\([a-z_]+\)", text):
            offenders.append(f"{path.name}: cache keyed by id()")
    assert offenders == []
