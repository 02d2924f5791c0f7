"""One generic test: every registered measure's declared properties, checked by applying each transform."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import ortho_group

from repscope.similarity.registry import PROPERTIES, REGISTRY

N = 60


def _data(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Related X (d=8), Y (d=6), Z (d=7) with decaying spectra (so SVCCA's 99% cut drops directions)."""
    rng = np.random.default_rng(seed)
    spec = np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.2, 0.05, 0.02])
    latent = rng.normal(size=(N, 8)) * spec
    x = latent @ ortho_group.rvs(8, random_state=seed) + 1.5
    y = np.tanh(latent[:, :6] @ rng.normal(size=(6, 6))) + 0.3 * rng.normal(size=(N, 6))
    z = latent[:, ::-1][:, :7] ** 2 / 5 + rng.normal(size=(N, 7))
    return x, y, z


def _transform(kind: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    d = x.shape[1]
    scale = x.std()
    if kind == "ortho":
        return x @ ortho_group.rvs(d, random_state=rng)
    if kind == "isotropic_scaling":
        return x * 3.7
    if kind == "translation":
        return x + 6.0 * scale * rng.normal(size=d)
    if kind == "permutation":
        return x[:, rng.permutation(d)]
    lin = ortho_group.rvs(d, random_state=rng) @ np.diag(np.logspace(-1, 1, d)) @ ortho_group.rvs(d, random_state=rng)
    if kind == "invertible_linear":
        return x @ lin
    if kind == "affine":
        return x @ lin + 6.0 * scale * rng.normal(size=d)
    raise AssertionError(kind)


TRANSFORMS = ["ortho", "isotropic_scaling", "translation", "permutation", "invertible_linear", "affine"]


def test_every_measure_declares_every_property():
    assert len(REGISTRY) >= 14
    for m in REGISTRY.values():
        assert set(m.properties) == set(PROPERTIES)
        assert m.kind in ("similarity", "distance")


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_declared_properties_hold(name: str):
    m = REGISTRY[name]
    x, y, z = _data()
    base = m(x, y, device="cpu")
    assert np.isfinite(base)
    rng = np.random.default_rng(123)
    for t in TRANSFORMS:
        moved = m(_transform(t, x, rng), _transform(t, y, rng), device="cpu")
        if getattr(m, f"invariant_to_{t}"):
            assert moved == pytest.approx(base, abs=1e-6), f"{name} declared invariant to {t}"
        else:
            assert abs(moved - base) > 1e-5, f"{name} declared NOT invariant to {t} but did not change"
    swapped = m(y, x, device="cpu")
    if m.symmetric:
        assert swapped == pytest.approx(base, abs=1e-8)
    else:
        assert abs(swapped - base) > 1e-5
    if m.is_metric:
        assert m.kind == "distance"
        assert m(x, x, device="cpu") == pytest.approx(0.0, abs=1e-6)
        xy, yz, xz = base, m(y, z, device="cpu"), m(x, z, device="cpu")
        for a, b, c in [(xy, yz, xz), (xy, xz, yz), (xz, yz, xy)]:
            assert c <= a + b + 1e-9
    else:
        assert m.kind == "similarity"
        assert m(x, x, device="cpu") == pytest.approx(1.0, abs=1e-6)
