"""Each measure against an independent, straightforward formula written here (numpy/scipy), to 1e-6."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.linalg import orthogonal_procrustes, sqrtm
from scipy.spatial.distance import cdist, pdist
from scipy.stats import ortho_group, pearsonr, spearmanr

from repscope.errors import DataError
from repscope.similarity import cca, cka, neighbors, shape
from repscope.similarity.rsa_score import rank_average, rsa
from repscope.similarity.streaming import MinibatchCKA


def _pair(n=50, dx=6, dy=9, seed=0):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, dx)) + 2.0
    y = np.tanh(x @ rng.normal(size=(dx, dy))) + 0.5 * rng.normal(size=(n, dy))
    return x, y


def _h(n):
    return np.eye(n) - np.ones((n, n)) / n


def ref_cka(k, lg):
    h = _h(len(k))
    hs = lambda a, b: np.trace(a @ h @ b @ h)  # noqa: E731
    return hs(k, lg) / np.sqrt(hs(k, k) * hs(lg, lg))


def ref_unbiased_hsic(k, lg):
    n = len(k)
    kt, lt = k.copy(), lg.copy()
    np.fill_diagonal(kt, 0)
    np.fill_diagonal(lt, 0)
    one = np.ones(n)
    return (np.trace(kt @ lt) + (one @ kt @ one) * (one @ lt @ one) / ((n - 1) * (n - 2))
            - 2 / (n - 2) * one @ kt @ lt @ one) / (n * (n - 3))


def ref_ccs(x, y):
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    m = np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T)
    ev = np.sort(np.linalg.eigvals(m).real)[::-1][: min(x.shape[1], y.shape[1])]
    return np.sqrt(np.clip(ev, 0, 1))


@pytest.mark.parametrize("dims", [(6, 9), (80, 70)])  # feature form (d < n) and Gram form (d ≥ n)
def test_linear_and_debiased_cka_match_gram_formulas(dims):
    x, y = _pair(n=50, dx=dims[0], dy=dims[1])
    k, lg = x @ x.T, y @ y.T
    assert cka.linear_cka(x, y, "cpu") == pytest.approx(ref_cka(k, lg), abs=1e-6)
    ref = ref_unbiased_hsic(k, lg) / np.sqrt(ref_unbiased_hsic(k, k) * ref_unbiased_hsic(lg, lg))
    assert cka.debiased_cka(x, y, "cpu") == pytest.approx(ref, abs=1e-6)
    st = cka.prepare_linear(x, "cpu")
    assert (st.gram is not None) == (dims[0] >= 50)


def test_rbf_cka_matches_formula():
    x, y = _pair()

    def gram(a, mult):
        d2 = cdist(a, a, "sqeuclidean")
        off = np.sort(d2[np.triu_indices(len(a), 1)])
        med = off[(len(off) - 1) // 2]  # lower median, as documented
        return np.exp(-d2 / (2 * mult**2 * med))

    for mult in (0.5, 1.0, 2.0):
        assert cka.rbf_cka(x, y, mult, "cpu") == pytest.approx(ref_cka(gram(x, mult), gram(y, mult)), abs=1e-6)


def test_debiased_cka_of_independent_data_is_near_zero_but_biased_is_not():
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(2000, 256)), rng.normal(size=(2000, 256))
    assert abs(cka.debiased_cka(x, y, "cpu")) < 0.02
    assert cka.linear_cka(x, y, "cpu") > 0.1  # biased: ≈ d/n = 0.128 for independent data


def test_cca_family_matches_covariance_formulas():
    x, y = _pair(n=200)
    rho = ref_ccs(x, y)
    assert cca.mean_cca(x, y, "cpu") == pytest.approx(rho.mean(), abs=1e-6)
    # SVCCA: keep top directions with 99% variance, then mean CCA of the reduced data
    def reduce(a):
        ac = a - a.mean(0)
        u, s, _ = np.linalg.svd(ac, full_matrices=False)
        k = int(np.searchsorted(np.cumsum(s**2) / np.sum(s**2), 0.99 - 1e-12)) + 1
        return u[:, :k] * s[:k]

    xr, yr = reduce(x * np.array([10, 5, 3, 1, 0.1, 0.01])), reduce(y)
    assert xr.shape[1] < 6
    assert cca.svcca(x * np.array([10, 5, 3, 1, 0.1, 0.01]), y, device="cpu") == pytest.approx(
        ref_ccs(xr, yr).mean(), abs=1e-6)
    # PWCCA: canonical variates of X, weighted by Σⱼ |⟨hᵢ, xⱼ⟩|
    xc, yc = x - x.mean(0), y - y.mean(0)
    sxx, syy, sxy = xc.T @ xc, yc.T @ yc, xc.T @ yc
    vals, vecs = np.linalg.eig(np.linalg.solve(sxx, sxy) @ np.linalg.solve(syy, sxy.T))
    order = np.argsort(-vals.real)
    w = vecs.real[:, order]
    h = xc @ w
    h /= np.linalg.norm(h, axis=0)
    r = np.sqrt(np.clip(vals.real[order], 0, 1))
    alpha = np.abs(h.T @ xc).sum(1)
    assert cca.pwcca(x, y, "cpu") == pytest.approx((alpha * r).sum() / alpha.sum(), abs=1e-6)


def test_procrustes_matches_scipy_and_is_zero_for_rotation():
    x, y = _pair()
    xn = (x - x.mean(0)) / np.linalg.norm(x - x.mean(0))
    yn = (y - y.mean(0)) / np.linalg.norm(y - y.mean(0))
    d = max(x.shape[1], y.shape[1])
    xp = np.pad(xn, ((0, 0), (0, d - xn.shape[1])))
    yp = np.pad(yn, ((0, 0), (0, d - yn.shape[1])))
    r, _ = orthogonal_procrustes(yp, xp)
    assert shape.procrustes_distance(x, y, "cpu") == pytest.approx(np.linalg.norm(xp - yp @ r), abs=1e-6)
    q = ortho_group.rvs(x.shape[1], random_state=3)
    assert shape.procrustes_distance(x, x @ q + 5.0, "cpu") == pytest.approx(0.0, abs=1e-6)


@pytest.mark.parametrize("alpha", [0.0, 0.3, 1.0])
def test_angular_shape_metric_matches_partial_whitening(alpha):
    x, y = _pair(n=80)

    def phi(a):
        ac = a - a.mean(0)
        c = ac.T @ ac / len(a)
        ca = alpha * np.trace(c) / a.shape[1] * np.eye(a.shape[1]) + (1 - alpha) * c
        return ac @ np.linalg.inv(sqrtm(ca).real)

    px, py = phi(x), phi(y)
    cos = np.linalg.svd(px.T @ py, compute_uv=False).sum() / (np.linalg.norm(px) * np.linalg.norm(py))
    assert shape.angular_shape_metric(x, y, alpha, "cpu") == pytest.approx(np.arccos(cos), abs=1e-6)


def test_rsa_matches_scipy():
    x, y = _pair(n=30)
    for kind in ("euclidean", "correlation", "cosine"):
        a, b = pdist(x, kind), pdist(y, kind)
        assert rsa(x, y, kind, "spearman", "cpu") == pytest.approx(spearmanr(a, b)[0], abs=1e-6)
        assert rsa(x, y, kind, "pearson", "cpu") == pytest.approx(pearsonr(a, b)[0], abs=1e-6)
        m = len(a)
        tau = sum(np.sign(a[i] - a[j]) * np.sign(b[i] - b[j]) for i in range(m) for j in range(i + 1, m))
        assert rsa(x, y, kind, "kendall", "cpu") == pytest.approx(tau / (m * (m - 1) / 2), abs=1e-6)
    # ties get average ranks, as scipy
    v = np.array([3.0, 1.0, 3.0, 2.0, 1.0])
    import torch
    from scipy.stats import rankdata
    assert np.allclose(rank_average(torch.tensor(v)).numpy(), rankdata(v))


def _knn_sets(a, k, metric):
    if metric == "cosine":
        an = a / np.linalg.norm(a, axis=1, keepdims=True)
        s = an @ an.T
    else:
        s = -cdist(a, a, "sqeuclidean")
    np.fill_diagonal(s, -np.inf)
    return [set(np.argsort(-row)[:k]) for row in s], s


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
def test_neighbour_measures_match_loops(metric):
    x, y = _pair(n=40)
    k = 5
    nx, kx = _knn_sets(x, k, metric)
    ny, ky = _knn_sets(y, k, metric)
    inter = [len(nx[i] & ny[i]) for i in range(len(x))]
    assert neighbors.mutual_knn(x, y, k, metric, "cpu") == pytest.approx(np.mean(inter) / k, abs=1e-9)
    jac = [len(nx[i] & ny[i]) / len(nx[i] | ny[i]) for i in range(len(x))]
    assert neighbors.knn_jaccard(x, y, k, metric, "cpu") == pytest.approx(np.mean(jac), abs=1e-9)
    np.fill_diagonal(kx, np.diag(x @ x.T) * 0 + (1.0 if metric == "cosine" else 0.0))
    np.fill_diagonal(ky, np.diag(y @ y.T) * 0 + (1.0 if metric == "cosine" else 0.0))
    kb, lb = kx - kx.mean(1, keepdims=True), ky - ky.mean(1, keepdims=True)

    def align(ka, la, na, nb):
        return sum(ka[i, j] * la[i, j] for i in range(len(ka)) for j in range(len(ka)) if j in na[i] and j in nb[i])

    ref = align(kb, lb, nx, ny) / np.sqrt(align(kb, kb, nx, nx) * align(lb, lb, ny, ny))
    assert neighbors.cknna(x, y, k, metric, "cpu") == pytest.approx(ref, abs=1e-6)


def test_minibatch_cka_matches_batch_average_and_converges():
    rng = np.random.default_rng(1)
    n = 1200
    x = rng.normal(size=(n, 20))
    y = np.tanh(x @ rng.normal(size=(20, 15))) + rng.normal(size=(n, 15))
    mb = MinibatchCKA("cpu")
    num = kk = ll = 0.0
    for s in range(0, n, 100):
        xb, yb = x[s : s + 100], y[s : s + 100]
        mb.update([xb], [yb])
        k, lg = xb @ xb.T, yb @ yb.T
        num += ref_unbiased_hsic(k, lg)
        kk += ref_unbiased_hsic(k, k)
        ll += ref_unbiased_hsic(lg, lg)
    assert mb.result()[0, 0] == pytest.approx(num / np.sqrt(kk * ll), abs=1e-6)
    full = cka.debiased_cka(x, y, "cpu")
    errs = []
    for bs in (25, 100, 400, n):
        m = MinibatchCKA("cpu")
        for s in range(0, n, bs):
            m.update([x[s : s + bs]], [y[s : s + bs]])
        errs.append(abs(m.result()[0, 0] - full))
    assert errs[-1] < 1e-9  # one batch of everything is the full debiased CKA
    assert errs[2] < errs[0] and errs[2] < 0.02


def test_constant_and_rank_deficient_inputs_never_give_nan():
    from repscope.similarity.registry import REGISTRY

    x, y = _pair(n=40)
    const = np.ones((40, 5)) * 3.0
    lowrank = np.repeat(x[:, :2], 4, axis=1)  # rank 2 in 8 columns
    zero_col = np.concatenate([x, np.zeros((40, 3))], axis=1)
    for name, m in REGISTRY.items():
        with pytest.raises(DataError):
            m(const, y, device="cpu")
        for z in (lowrank, zero_col):
            v = m(z, y, device="cpu")
            assert np.isfinite(v), name
    # the copy of a rank-deficient layer is still identical to itself
    assert cka.linear_cka(lowrank, lowrank, "cpu") == pytest.approx(1.0)
    assert cca.mean_cca(lowrank, lowrank, "cpu") == pytest.approx(1.0)
    assert shape.procrustes_distance(lowrank, lowrank, "cpu") == pytest.approx(0.0, abs=1e-6)


def test_all_zero_samples_get_cosine_zero():
    """A sample with every ReLU off has no direction: its cosine with anything is defined as 0 (no NaN)."""
    import torch

    from repscope.similarity.relative import relative_representation
    from repscope.similarity.rsa_score import rdm

    x, y = _pair(n=30)
    x = np.maximum(x - 1.0, 0)
    x[4] = 0.0
    assert (np.linalg.norm(np.delete(x, 4, axis=0), axis=1) > 0).all()
    d = rdm(x, "cosine", "cpu").numpy()
    full = np.zeros((30, 30))
    full[np.triu_indices(30, 1)] = d
    full += full.T
    ref = pdist(np.delete(x, 4, axis=0), "cosine")
    assert np.allclose(np.delete(np.delete(full, 4, 0), 4, 1)[np.triu_indices(29, 1)], ref)
    assert np.allclose(np.delete(full[4], 4), 1.0)
    rel = relative_representation(x, x[:6], "cpu")
    assert torch.all(rel[4] == 0) and torch.all(rel[:, 4] == 0) and bool(torch.isfinite(rel).all())
    assert np.isfinite(neighbors.mutual_knn(x, y, 5, "cosine", "cpu"))
    assert np.isfinite(neighbors.cknna(x, y, 5, "cosine", "cpu"))
