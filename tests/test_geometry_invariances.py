"""Generic check of every registered geometry measure's declared invariances (see repscope.geometry.measures)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from repscope.geometry.measures import MEASURES, compute

RNG = np.random.default_rng(0)
N, D = 240, 10
LABELS = np.repeat(np.arange(3), N // 3)
X = RNG.standard_normal((N, D)) * np.linspace(3, 0.3, D) + RNG.standard_normal((3, D))[LABELS] * 2.0
X[:, 2] += 4.0  # a shared offset in one dimension, so anisotropy and rogue shares are well defined
PAIRS = (np.arange(0, N, 2), np.arange(1, N, 2))
Q = np.linalg.qr(RNG.standard_normal((D, D)))[0]
A = np.diag(np.logspace(-1, 1, D)) @ np.linalg.qr(RNG.standard_normal((D, D)))[0] + np.triu(np.ones((D, D))) * 0.3
SHIFT = RNG.standard_normal(D) * 5.0
PERM = RNG.permutation(D)

TRANSFORMS = {
    "ortho": lambda x: x @ Q,
    "isotropic_scaling": lambda x: 3.7 * x,
    "translation": lambda x: x + SHIFT,
    "permutation": lambda x: x[:, PERM],
    "invertible_linear": lambda x: x @ A,
}


def _run(name: str, x: np.ndarray) -> dict[str, float]:
    return compute(MEASURES[name], x, labels=LABELS, pairs=PAIRS, device="cpu")


def _same(a: float, b: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= 1e-6 * max(1.0, abs(a))


CASES = [(m, t, getattr(MEASURES[m], f"invariant_to_{t}")) for m in MEASURES for t in TRANSFORMS
         if getattr(MEASURES[m], f"invariant_to_{t}") is not None]


def test_every_measure_declares_something():
    for m in MEASURES.values():
        flags = [getattr(m, f"invariant_to_{t}") for t in TRANSFORMS]
        assert any(f is not None for f in flags), m.name


@pytest.mark.parametrize("measure,transform,invariant", CASES, ids=[f"{m}-{t}" for m, t, _ in CASES])
def test_declared_invariance(measure, transform, invariant):
    base = _run(measure, X)
    moved = _run(measure, TRANSFORMS[transform](X))
    assert base.keys() == moved.keys()
    same = [_same(base[k], moved[k]) for k in base]
    if invariant:
        assert all(same), {k: (base[k], moved[k]) for k in base}
    else:
        assert not all(same), f"{measure} declared to change under {transform} but did not: {base}"
