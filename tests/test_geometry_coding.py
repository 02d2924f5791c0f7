"""Coding rate and MCR² rate reduction against the closed-form logdet."""

from __future__ import annotations

import numpy as np
import pytest

from repscope.errors import DataError
from repscope.geometry.coding_rate import coding_rate, rate_reduction


def _rate(z: np.ndarray, eps: float) -> float:
    n, d = z.shape
    return 0.5 * np.linalg.slogdet(np.eye(d) + d / (n * eps**2) * z.T @ z)[1]


@pytest.mark.parametrize("shape", [(50, 8), (6, 20)])  # both the d×d and the (Sylvester) n×n path
def test_coding_rate_closed_form(shape):
    z = np.random.default_rng(0).standard_normal(shape)
    assert coding_rate(z, eps=0.3, device="cpu") == pytest.approx(_rate(z, 0.3), rel=1e-10)


def test_coding_rate_normalize():
    z = np.random.default_rng(1).standard_normal((40, 5)) * 7
    zn = z / np.linalg.norm(z, axis=1, keepdims=True)
    assert coding_rate(z, normalize=True, device="cpu") == pytest.approx(_rate(zn, 0.5), rel=1e-10)


def test_rate_reduction_formula():
    rng = np.random.default_rng(2)
    z = rng.standard_normal((90, 6))
    y = rng.integers(0, 3, 90)
    n, d, eps = 90, 6, 0.5
    rc = sum((y == c).sum() / (2 * n) * np.linalg.slogdet(
        np.eye(d) + d / ((y == c).sum() * eps**2) * z[y == c].T @ z[y == c])[1] for c in range(3))
    r = rate_reduction(z, y, eps=eps, device="cpu")
    assert r["R"] == pytest.approx(_rate(z, eps), rel=1e-10)
    assert r["Rc"] == pytest.approx(rc, rel=1e-10)
    assert r["delta_R"] == pytest.approx(r["R"] - r["Rc"])


def test_rate_reduction_larger_for_separated_classes():
    rng = np.random.default_rng(3)
    y = np.repeat(np.arange(4), 150)
    # each class in its own 4-d orthogonal subspace vs. all classes sharing one distribution
    sep = np.zeros((600, 16))
    for c in range(4):
        sep[y == c, 4 * c : 4 * c + 4] = rng.standard_normal((150, 4))
    mixed = rng.standard_normal((600, 16))
    a = rate_reduction(sep, y, normalize=True, device="cpu")["delta_R"]
    b = rate_reduction(mixed, y, normalize=True, device="cpu")["delta_R"]
    assert a > b + 1.0
    assert abs(b) < 0.5


def test_rate_reduction_label_mismatch():
    with pytest.raises(DataError):
        rate_reduction(np.zeros((5, 2)), [0, 1])
