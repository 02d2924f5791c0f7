"""Rank and spectrum measures against closed forms and numpy."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repscope.errors import DataError, NonFiniteError
from repscope.geometry.spectrum import (
    covariance_eigenvalues,
    effective_rank,
    numerical_rank,
    powerlaw_alpha,
    spectrum,
    stable_rank,
)


@pytest.mark.parametrize("d", [1, 7, 64])
def test_effective_rank_of_identity_is_d(d):
    assert effective_rank(np.eye(d), device="cpu") == pytest.approx(d, rel=1e-12)


def test_effective_rank_formula():
    x = np.random.default_rng(0).standard_normal((50, 12))
    s = np.linalg.svd(x, compute_uv=False)
    p = s / s.sum()
    assert effective_rank(x, device="cpu") == pytest.approx(math.exp(-(p * np.log(p)).sum()), rel=1e-10)


def test_stable_rank_closed_form():
    # X = U diag(σ) Vᵀ with chosen σ: stable rank = Σσ² / σ₁²
    rng = np.random.default_rng(1)
    sig = np.array([5.0, 3.0, 2.0, 1.0, 0.5])
    u = np.linalg.qr(rng.standard_normal((40, 5)))[0]
    v = np.linalg.qr(rng.standard_normal((9, 5)))[0]
    x = u @ np.diag(sig) @ v.T
    assert stable_rank(x, device="cpu") == pytest.approx((sig**2).sum() / 25.0, rel=1e-10)
    assert effective_rank(x, device="cpu") == pytest.approx(
        math.exp(-sum(p * math.log(p) for p in sig / sig.sum())), rel=1e-10)


def test_numerical_rank_matches_numpy():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((60, 6)) @ rng.standard_normal((6, 25))  # rank 6
    assert numerical_rank(x, device="cpu") == np.linalg.matrix_rank(x) == 6
    assert numerical_rank(np.eye(5) * np.array([1, 1, 1, 1e-9, 1e-9]), rtol=1e-6, device="cpu") == 3
    assert numerical_rank(np.eye(5), tol=2.0, device="cpu") == 0


def test_powerlaw_alpha_recovers_planted_exponent():
    ranks = np.arange(1, 301)
    for alpha in (0.5, 1.0, 2.3):
        lam = 7.0 * ranks ** (-alpha)
        assert powerlaw_alpha(lam, (5, 100)) == pytest.approx(alpha, rel=1e-10)
    # the stated range matters: a broken power law gives each segment's exponent
    broken = np.where(ranks <= 50, ranks**-1.0, 3.0 * ranks**-2.0)
    assert powerlaw_alpha(broken, (2, 50)) == pytest.approx(1.0, rel=1e-9)
    assert powerlaw_alpha(broken, (60, 300)) == pytest.approx(2.0, rel=1e-9)
    assert math.isnan(powerlaw_alpha(lam[:3], (5, 100)))


def test_powerlaw_alpha_on_data():
    rng = np.random.default_rng(3)
    d = 60
    scales = np.arange(1, d + 1) ** -0.5  # covariance eigenvalues ∝ i^-1
    x = rng.standard_normal((20000, d)) * scales
    lam = covariance_eigenvalues(x, device="cpu").numpy()
    assert powerlaw_alpha(lam, (2, 40)) == pytest.approx(1.0, abs=0.1)


def test_covariance_eigenvalues_and_spectrum():
    x = np.random.default_rng(4).standard_normal((80, 10))
    ref = np.sort(np.linalg.eigvalsh(np.cov(x.T)))[::-1]
    np.testing.assert_allclose(covariance_eigenvalues(x, device="cpu").numpy(), ref, rtol=1e-10)
    sp = spectrum(x, device="cpu")
    assert sum(sp) == pytest.approx(1.0) and sp == sorted(sp, reverse=True)


def test_bad_input_errors():
    with pytest.raises(NonFiniteError):
        effective_rank(np.array([[1.0, np.nan], [0.0, 1.0]]))
    with pytest.raises(DataError):
        stable_rank(np.zeros((0, 3)))


def test_singular_value_cache_is_explicit_and_scoped(monkeypatch):
    import torch

    from repscope.geometry import spectrum
    from repscope.geometry.spectrum import SpectrumCache, singular_values

    x = torch.randn(30, 5, dtype=torch.float64)
    first = singular_values(x, device="cpu").clone()
    x.mul_(2.0)  # no cache outside a block: an in-place change is always seen
    np.testing.assert_allclose(singular_values(x, device="cpu").numpy(), 2 * first.numpy(), rtol=1e-12)
    calls = []
    real = torch.linalg.svdvals
    monkeypatch.setattr(torch.linalg, "svdvals", lambda t: calls.append(1) or real(t))
    with SpectrumCache(x):
        a = spectrum.effective_rank(x, center=True, device="cpu")
        b = spectrum.stable_rank(x, center=True, device="cpu")
        spectrum.covariance_eigenvalues(x, device="cpu")
        singular_values(x.clone(), center=True, device="cpu")  # another tensor: not this cache's key
    assert len(calls) == 2
    np.testing.assert_allclose(singular_values(x, center=True, device="cpu").numpy(),
                               np.linalg.svd(x.numpy() - x.numpy().mean(0), compute_uv=False), rtol=1e-10)
    assert len(calls) == 3  # the block is over: computed again
    assert spectrum._ACTIVE.get() is None
    s = np.linalg.svd(x.numpy() - x.numpy().mean(0), compute_uv=False)
    p = s / s.sum()
    assert a == pytest.approx(np.exp(-(p * np.log(p)).sum()), rel=1e-10)
    assert b == pytest.approx((s**2).sum() / s[0] ** 2, rel=1e-10)


def test_spectral_measures_leave_thread_count_alone():
    import torch

    from repscope.geometry.spectrum import singular_values

    before = torch.get_num_threads()
    singular_values(np.random.default_rng(0).normal(size=(50, 8)), device="cpu")
    assert torch.get_num_threads() == before
