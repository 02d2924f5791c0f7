"""Exact k-NN by lower-bound screening (kernels.knn._pruned_candidates) against scikit-learn's exact search."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.neighbors import NearestNeighbors

import repscope.kernels.knn as knn
from repscope.kernels.knn import knn_distances


def _curved(n: int, d: int, latent: int, noise: float, seed: int) -> np.ndarray:
    """A curved `latent`-dim manifold in R^d plus isotropic noise: variance concentrated in few directions."""
    rng = np.random.default_rng(seed)
    h = np.tanh(rng.uniform(-1, 1, (n, latent)) @ rng.standard_normal((latent, 32)))
    return h @ rng.standard_normal((32, d)) + noise * rng.standard_normal((n, d))


@pytest.fixture(scope="module")
def low_rank() -> np.ndarray:
    x = _curved(5000, 256, 6, 0.02, seed=0)
    x[10] = x[11]  # an exact duplicate (distance 0)
    x[20] = x[21] + 1e-9  # a near-duplicate (float32 ranking cannot separate it from 0)
    x[30] += 50.0  # an outlier whose bound certification is hard
    return x


@pytest.fixture(autouse=True)
def screen_small_inputs(monkeypatch):
    """These inputs are below the work threshold at which the screen pays off; lower it so the screen runs."""
    monkeypatch.setattr(knn, "PRUNE_MIN_WORK", 0)


def _check_against_sklearn(x: np.ndarray, k: int) -> None:
    dist, idx = knn_distances(x, k, device="cpu", return_indices=True)
    _, ref_i = NearestNeighbors(n_neighbors=k + 1).fit(x).kneighbors()
    # distances of sklearn's neighbours recomputed directly (its Gram expansion loses digits for close pairs, e.g.
    # it reports 9.5e-7 for the 9.8e-9 near-duplicate)
    ref_d = np.linalg.norm(x[:, None, :] - x[ref_i], axis=2)
    np.testing.assert_allclose(dist.numpy(), ref_d[:, :k], rtol=1e-9, atol=1e-12)
    # indices agree wherever the reference's distances are not tied (with each other or with the (k+1)-th)
    gaps = np.diff(ref_d, axis=1)  # (n, k): gap after rank 1..k
    gaps = np.minimum(gaps, np.concatenate([np.full((len(x), 1), np.inf), gaps[:, :-1]], 1))
    ref_i = ref_i[:, :k]
    clear = gaps > 1e-9
    assert (idx.numpy()[clear] == ref_i[clear]).all()


@pytest.mark.parametrize("k", [2, 12])
def test_pruned_search_is_engaged_and_exact(low_rank, k, monkeypatch):
    calls = []
    orig = knn._pruned_candidates

    def spy(*a, **kw):
        out = orig(*a, **kw)
        calls.append(out is not None)
        return out

    monkeypatch.setattr(knn, "_pruned_candidates", spy)
    _check_against_sklearn(low_rank, k)
    assert calls == [True]  # the screened path ran (not the brute-force fallback for the whole input)


def test_uncertified_rows_fall_back_to_brute_force(low_rank, monkeypatch):
    """Force a screen that is far too coarse (p = 1, few candidates): certification fails for many rows, which must
    then be searched exhaustively, and the result must still be exact."""
    fixed = []

    def coarse(x32, k, gen):
        v = torch.linalg.eigh((x32.T @ x32).to(torch.float64))[1].flip(1)
        return v, 1, k + 4

    orig_rows = knn._rows_exact

    def rows_spy(x64, rows, kc, *rest):
        fixed.append(rows.numel())
        return orig_rows(x64, rows, kc, *rest)

    monkeypatch.setattr(knn, "_choose_projection", coarse)
    monkeypatch.setattr(knn, "_rows_exact", rows_spy)
    _check_against_sklearn(low_rank, 3)
    assert fixed and fixed[0] > 100


def test_spread_out_variance_skips_the_screen():
    x = np.random.default_rng(1).standard_normal((4500, 64))
    x64 = torch.as_tensor(x - x.mean(0))
    assert knn._choose_projection(x64.float(), 2, torch.Generator().manual_seed(0)) is None
    _check_against_sklearn(x, 2)


def test_bound_coordinates_lower_bound_every_distance():
    x = torch.as_tensor(_curved(300, 50, 4, 0.05, seed=2))
    v = torch.linalg.qr(torch.randn(50, 50, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))[0]
    def dist(a):
        return torch.cdist(a, a, compute_mode="donot_use_mm_for_euclid_dist")  # direct differences, no Gram

    true = dist(x)
    for p in (1, 5, 20, 49):
        a = knn._bound_coordinates(x, p, v)
        assert (dist(a) <= true + 1e-12).all()
    a = knn._bound_coordinates(x, 50, v)  # all directions: the bound is the distance itself
    torch.testing.assert_close(dist(a), true, rtol=0, atol=1e-9)


@pytest.mark.parametrize("block", [37, 256])
def test_brute_force_thresholded_tiles_match_sklearn(block, monkeypatch):
    """The brute-force pass keeps per-row thresholds across tiles; clustered data with exact duplicates, a ragged
    last block and k = 15 (many merges per row) must still give sklearn's neighbours."""
    monkeypatch.setattr(knn, "_pruned_candidates", lambda *a, **kw: None)
    rng = np.random.default_rng(3)
    centres = rng.standard_normal((12, 20)) * 4
    x = centres[rng.integers(0, 12, 1500)] + rng.standard_normal((1500, 20))
    x[100:110] = x[5]  # a run of exact duplicates
    dist, idx = knn_distances(x, 15, device="cpu", block_rows=block, return_indices=True)
    ref_i = NearestNeighbors(n_neighbors=15).fit(x).kneighbors()[1]
    ref_d = np.linalg.norm(x[:, None, :] - x[ref_i], axis=2)
    np.testing.assert_allclose(dist.numpy(), ref_d, rtol=1e-9, atol=1e-12)


def test_input_is_not_modified():
    x = np.random.default_rng(4).standard_normal((300, 5)) + 10.0
    before = x.copy()
    knn_distances(x, 3, device="cpu")
    knn_distances(torch.as_tensor(x), 3, device="cpu")
    np.testing.assert_array_equal(x, before)


def test_brute_force_rows_that_rounding_could_mislead_are_searched_again(monkeypatch):
    """Points far from the origin make float32 Gram-expansion distances coarse (a sum of huge squared norms): the
    certification must catch the rows whose float32 ranking cannot be trusted and redo them in float64."""
    monkeypatch.setattr(knn, "_pruned_candidates", lambda *a, **kw: None)
    redone = []
    orig_rows = knn._rows_exact

    def rows_spy(x64, rows, kc, *rest):
        redone.append(rows.numel())
        return orig_rows(x64, rows, kc, *rest)

    monkeypatch.setattr(knn, "_rows_exact", rows_spy)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((800, 6)) * 1e-3
    x[:400] += 1e3 * rng.standard_normal(6)  # two far-apart clouds: centring leaves norms ~1e3 over gaps ~1e-3
    x[400:] -= x[:400].mean(0)
    dist = knn_distances(x, 3, device="cpu", extra=1)
    # reference from direct differences (sklearn's float64 Gram expansion itself misorders these rows)
    full = np.linalg.norm(x[:, None, :] - x[None, :, :], axis=2)
    np.fill_diagonal(full, np.inf)
    np.testing.assert_allclose(dist.numpy(), np.sort(full, axis=1)[:, :3], rtol=1e-12, atol=0)
    assert redone and redone[0] > 0
