"""Uniformity/alignment (Wang & Isola 2020) and the binned information plane on planted cases."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from repscope.errors import ConfigError
from repscope.geometry.infoplane import information_plane
from repscope.geometry.uniformity import alignment, uniformity


def test_uniformity_equals_pair_formula():
    x = np.random.default_rng(0).standard_normal((60, 5))
    u = x / np.linalg.norm(x, axis=1, keepdims=True)
    vals = [math.exp(-2 * ((u[i] - u[j]) ** 2).sum()) for i, j in itertools.combinations(range(60), 2)]
    assert uniformity(x, device="cpu", chunk_rows=7) == pytest.approx(math.log(np.mean(vals)), rel=1e-10)


def test_uniformity_lower_for_spread_than_for_collapsed():
    rng = np.random.default_rng(1)
    spread = rng.standard_normal((500, 16))
    collapsed = rng.standard_normal((500, 16)) * 0.05 + 1.0
    assert uniformity(spread, device="cpu") < uniformity(collapsed, device="cpu") - 1.0
    # uniform on S^{d-1} in high d: ‖u−v‖² ≈ 2, so uniformity ≈ −4
    assert uniformity(rng.standard_normal((800, 256)), device="cpu") == pytest.approx(-4, abs=0.05)


def test_alignment_formula():
    rng = np.random.default_rng(2)
    a, b = rng.standard_normal((30, 4)), rng.standard_normal((30, 4))
    na = a / np.linalg.norm(a, axis=1, keepdims=True)
    nb = b / np.linalg.norm(b, axis=1, keepdims=True)
    assert alignment(a, b, device="cpu") == pytest.approx(np.mean(((na - nb) ** 2).sum(1)), rel=1e-10)
    assert alignment(a, 3 * a, device="cpu") == pytest.approx(0, abs=1e-12)


def test_information_plane_planted():
    rng = np.random.default_rng(3)
    y = rng.integers(0, 4, 1000)
    h_y = -sum(p * math.log2(p) for p in np.bincount(y) / 1000)
    # T is a function of Y only: I(X;T) = H(T) = H(Y) and I(T;Y) = H(Y)
    t = np.eye(4)[y]
    r = information_plane(t, y, n_bins=10, device="cpu")
    assert r["I_XT"] == pytest.approx(h_y, rel=1e-10)
    assert r["I_TY"] == pytest.approx(h_y, rel=1e-10)
    # T constant: nothing
    r0 = information_plane(np.ones((1000, 3)), y, device="cpu")
    assert r0["I_XT"] == pytest.approx(0, abs=1e-12) and r0["I_TY"] == pytest.approx(0, abs=1e-12)
    # T independent of Y, many unique patterns: I(X;T) = log2 n, I(T;Y) = H(Y) (the known saturation)
    rs = information_plane(rng.standard_normal((1000, 50)), y, n_bins=30, device="cpu")
    assert rs["I_XT"] == pytest.approx(math.log2(1000), rel=1e-10)
    assert rs["I_TY"] == pytest.approx(h_y, rel=1e-10)


def test_information_plane_depends_on_bins():
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2000, 1))
    y = (x[:, 0] > 0).astype(int)
    coarse = information_plane(x, y, n_bins=2, device="cpu")
    fine = information_plane(x, y, n_bins=30, device="cpu")
    assert coarse["I_XT"] <= 1.0 + 1e-12 < fine["I_XT"]
    assert 0 < coarse["I_TY"] <= fine["I_TY"] + 1e-12
    with pytest.raises(ConfigError):
        information_plane(x, y, n_bins=1)
