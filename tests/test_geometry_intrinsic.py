"""Intrinsic dimension on planted structure, against scikit-dimension and straightforward reference formulas."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.datasets import make_swiss_roll
from sklearn.neighbors import NearestNeighbors

from repscope.errors import ConfigError, DataError
from repscope.geometry.intrinsic import mle_dimension, participation_ratio, pca_dimension, twonn_dimension
from repscope.geometry.knn import knn_distances


def _subspace(n: int, k: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, k)))[0]
    return rng.standard_normal((n, k)) @ basis.T


def _sphere(n: int, ambient: int, seed: int = 0) -> np.ndarray:
    g = np.random.default_rng(seed).standard_normal((n, ambient))
    return g / np.linalg.norm(g, axis=1, keepdims=True)


@pytest.fixture(scope="module")
def sub5() -> np.ndarray:
    return _subspace(5000, 5, 100)


@pytest.mark.parametrize("n,d,block", [(60, 3, 7), (301, 20, 64), (500, 8, 2048)])
def test_knn_matches_sklearn(n, d, block):
    x = np.random.default_rng(n).standard_normal((n, d))
    dist, idx = knn_distances(x, 5, device="cpu", block_rows=block, return_indices=True)
    ref_d, ref_i = NearestNeighbors(n_neighbors=5).fit(x).kneighbors()
    np.testing.assert_allclose(dist.numpy(), ref_d, rtol=1e-12, atol=1e-12)
    assert (idx.numpy() == ref_i).mean() == 1.0


def test_knn_rejects_too_few_rows():
    with pytest.raises(DataError):
        knn_distances(np.zeros((3, 2)), 3, device="cpu")


def test_linear_subspace_5d(sub5):
    assert twonn_dimension(sub5, device="cpu") == pytest.approx(5, rel=0.10)
    assert mle_dimension(sub5, device="cpu") == pytest.approx(5, rel=0.10)


def test_swiss_roll_2d():
    x, _ = make_swiss_roll(2500, random_state=0)
    assert twonn_dimension(x, device="cpu") == pytest.approx(2, rel=0.15)
    assert mle_dimension(x, device="cpu") == pytest.approx(2, rel=0.15)


def test_sphere_s9():
    x = _sphere(3000, 10)  # S⁹ ⊂ R¹⁰ is 9-dimensional
    assert twonn_dimension(x, device="cpu") == pytest.approx(9, rel=0.10)
    assert mle_dimension(x, device="cpu") == pytest.approx(9, rel=0.15)


@pytest.mark.parametrize("make", [lambda: _subspace(2000, 7, 40, seed=3), lambda: _sphere(1500, 30, seed=4),
                                  lambda: make_swiss_roll(1500, random_state=1)[0]])
def test_twonn_matches_skdim(make):
    skdim = pytest.importorskip("skdim")
    x = make()
    ref = skdim.id.TwoNN().fit(x).dimension_
    assert twonn_dimension(x, device="cpu") == pytest.approx(ref, rel=0.02)


def test_twonn_formula_by_hand():
    """Facco et al.: sort μ, keep 90%, F = i/N, slope through 0 of −log(1−F) on log μ (written out here)."""
    x = np.random.default_rng(5).standard_normal((400, 4))
    d, _ = NearestNeighbors(n_neighbors=2).fit(x).kneighbors()
    mu = np.sort(d[:, 1] / d[:, 0])
    n = len(mu)
    keep = int(n * 0.9)
    lx = np.log(mu[:keep])
    ly = -np.log(1 - np.arange(1, keep + 1) / n)
    assert twonn_dimension(x, device="cpu") == pytest.approx(lx @ ly / (lx @ lx), rel=1e-10)
    mle_ref = (keep - 1) / (lx.sum() + (n - keep) * lx[-1])
    assert twonn_dimension(x, method="mle", device="cpu") == pytest.approx(mle_ref, rel=1e-10)


def test_mle_formula_by_hand():
    """Levina–Bickel per point, MacKay–Ghahramani inverse averaging, mean over k (written out with sklearn kNN)."""
    x = np.random.default_rng(6).standard_normal((300, 6))
    t, _ = NearestNeighbors(n_neighbors=12).fit(x).kneighbors()
    dims = []
    for k in range(8, 13):
        inv = np.mean([np.mean(np.log(t[i, k - 1] / t[i, : k - 1])) for i in range(len(x))])
        dims.append(1 / inv)
    assert mle_dimension(x, k1=8, k2=12, device="cpu") == pytest.approx(np.mean(dims), rel=1e-10)


def test_twonn_bad_params():
    with pytest.raises(ConfigError):
        twonn_dimension(np.zeros((10, 2)), discard_fraction=1.5)
    with pytest.raises(ConfigError):
        mle_dimension(np.zeros((10, 2)), k1=5, k2=3)


def test_pca_counts_match_sklearn():
    from sklearn.decomposition import PCA

    rng = np.random.default_rng(7)
    x = rng.standard_normal((400, 30)) * np.linspace(5, 0.1, 30)
    cum = np.cumsum(PCA().fit(x).explained_variance_ratio_)
    got = pca_dimension(x, (0.9, 0.95, 0.99), device="cpu")
    for t in (0.9, 0.95, 0.99):
        assert got[t] == int(np.argmax(cum >= t)) + 1


def test_participation_ratio_closed_form():
    x = _subspace(2000, 4, 20, seed=8)  # isotropic in a 4-d subspace: PR close to 4
    lam = np.linalg.eigvalsh(np.cov(x.T))
    assert participation_ratio(x, device="cpu") == pytest.approx(lam.sum() ** 2 / (lam**2).sum(), rel=1e-8)
    assert participation_ratio(x, device="cpu") == pytest.approx(4, rel=0.1)


@pytest.mark.parametrize("m", [5, 97, 640, 1000])
def test_smallest_k_equals_topk(m):
    import torch

    from repscope.selection import smallest_k

    g = torch.Generator().manual_seed(m)
    tile = torch.randn(40, m, generator=g)
    tile[3, :] = 1.0  # ties
    tile[5, m // 2] = -10.0
    tile[6, m // 3] = 10.0
    for largest in (False, True):
        v, i = smallest_k(tile, 4, group=8, largest=largest)
        rv, _ = torch.topk(tile, min(4, m), dim=1, largest=largest)
        assert torch.equal(torch.sort(v, 1).values, torch.sort(rv, 1).values)
        assert torch.equal(torch.gather(tile, 1, i), v)
