"""Generic property checkers for registered measures, reusable by any test (including a contributor's new measure).

Each checker applies the declared transforms of the feature space (rotation, isotropic scaling, translation,
coordinate permutation, invertible linear map, affine map) to planted data and returns the list of violated
declarations (empty = every declaration holds). A measure declared invariant must not move; one declared not
invariant must move. This mirrors ReSi's declared flags (Klabunde et al. 2024), checked instead of trusted.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import ortho_group

from repscope.geometry.measures import TRANSFORMS as GEOMETRY_TRANSFORMS
from repscope.geometry.measures import compute
from repscope.similarity.registry import TRANSFORMS as SIMILARITY_TRANSFORMS


def similarity_data(n: int = 60, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Related X (d=8), Y (d=6), Z (d=7) with decaying spectra (so SVCCA's 99% cut drops directions)."""
    rng = np.random.default_rng(seed)
    spec = np.array([5.0, 3.0, 2.0, 1.0, 0.5, 0.2, 0.05, 0.02])
    latent = rng.normal(size=(n, 8)) * spec
    x = latent @ ortho_group.rvs(8, random_state=seed) + 1.5
    y = np.tanh(latent[:, :6] @ rng.normal(size=(6, 6))) + 0.3 * rng.normal(size=(n, 6))
    z = latent[:, ::-1][:, :7] ** 2 / 5 + rng.normal(size=(n, 7))
    return x, y, z


def random_transform(kind: str, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Apply one named transform of the feature space to x (n, d), drawn with `rng`."""
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
    raise ValueError(f"unknown transform '{kind}'; choose one of {', '.join(SIMILARITY_TRANSFORMS)}")


def check_similarity_properties(m: Any, device: str = "cpu", tol: float = 1e-6, moved: float = 1e-5) -> list[str]:
    """Violated declarations of a `SimilarityMeasure` (invariances, symmetry, metric axioms, self-similarity 1).

    Invariant: |m(T x, T y) − m(x, y)| ≤ tol; not invariant: > `moved`. A metric is a distance with m(x, x) = 0 and
    the triangle inequality on three related representations; a similarity has m(x, x) = 1.
    """
    x, y, z = similarity_data()
    base = m(x, y, device=device)
    if not np.isfinite(base):
        return [f"{m.name}: not finite on planted data ({base})"]
    errors = []
    rng = np.random.default_rng(123)
    for t in SIMILARITY_TRANSFORMS:
        v = m(random_transform(t, x, rng), random_transform(t, y, rng), device=device)
        if getattr(m, f"invariant_to_{t}") and not abs(v - base) <= tol * max(1.0, abs(base)):
            errors.append(f"{m.name}: declared invariant to {t} but moved {base:.6g} -> {v:.6g}")
        if not getattr(m, f"invariant_to_{t}") and not abs(v - base) > moved:
            errors.append(f"{m.name}: declared NOT invariant to {t} but did not change ({base:.6g})")
    swapped = m(y, x, device=device)
    if m.symmetric and not abs(swapped - base) <= 1e-8 * max(1.0, abs(base)):
        errors.append(f"{m.name}: declared symmetric but m(y, x) = {swapped:.6g} != m(x, y) = {base:.6g}")
    if not m.symmetric and not abs(swapped - base) > moved:
        errors.append(f"{m.name}: declared asymmetric but m(y, x) = m(x, y)")
    if m.kind not in ("similarity", "distance"):
        errors.append(f"{m.name}: kind '{m.kind}' is neither similarity nor distance")
    if m.is_metric:
        if m.kind != "distance":
            errors.append(f"{m.name}: declared a metric but its kind is '{m.kind}'")
        if abs(m(x, x, device=device)) > tol:
            errors.append(f"{m.name}: declared a metric but m(x, x) != 0")
        xy, yz, xz = base, m(y, z, device=device), m(x, z, device=device)
        for a, b, c in [(xy, yz, xz), (xy, xz, yz), (xz, yz, xy)]:
            if c > a + b + 1e-9:
                errors.append(f"{m.name}: triangle inequality fails ({c:.6g} > {a:.6g} + {b:.6g})")
    elif m.kind == "similarity" and abs(m(x, x, device=device) - 1.0) > tol:
        errors.append(f"{m.name}: a similarity should give m(x, x) = 1")
    return errors


def geometry_data(n: int = 240, d: int = 10, seed: int = 0) -> dict[str, Any]:
    """Planted data for geometry measures: 3 labelled clusters with a decaying spectrum and an offset, positive pairs,
    and one fixed draw of each transform (as callables x -> x')."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(np.arange(3), n // 3)
    x = rng.standard_normal((n, d)) * np.linspace(3, 0.3, d) + rng.standard_normal((3, d))[labels] * 2.0
    x[:, 2] += 4.0  # a shared offset in one dimension, so anisotropy and rogue shares are well defined
    q = np.linalg.qr(rng.standard_normal((d, d)))[0]
    a = np.diag(np.logspace(-1, 1, d)) @ np.linalg.qr(rng.standard_normal((d, d)))[0] + np.triu(np.ones((d, d))) * 0.3
    shift = rng.standard_normal(d) * 5.0
    perm = rng.permutation(d)
    transforms = {
        "ortho": lambda v: v @ q,
        "isotropic_scaling": lambda v: 3.7 * v,
        "translation": lambda v: v + shift,
        "permutation": lambda v: v[:, perm],
        "invertible_linear": lambda v: v @ a,
    }
    return {"x": x, "labels": labels, "pairs": (np.arange(0, n, 2), np.arange(1, n, 2)), "transforms": transforms}


def _same(a: float, b: float, rel: float) -> bool:
    if math.isnan(a) or math.isnan(b):
        return math.isnan(a) and math.isnan(b)
    return abs(a - b) <= rel * max(1.0, abs(a))


def check_geometry_invariances(m: Any, transforms: tuple[str, ...] | None = None, device: str = "cpu",
                               rel: float = 1e-6) -> list[str]:
    """Violated invariance declarations of a `GeometryMeasure` (flags set to None make no claim and are skipped).

    Invariant: every metric it returns is unchanged (relative tolerance `rel`); not invariant: at least one moves.
    """
    data = geometry_data()
    x = data["x"]

    def run(v: np.ndarray) -> dict[str, float]:
        return compute(m, v, labels=data["labels"], pairs=data["pairs"], device=device)

    base = run(x)
    errors = []
    for t in transforms or GEOMETRY_TRANSFORMS:
        flag = getattr(m, f"invariant_to_{t}")
        if flag is None:
            continue
        moved = run(data["transforms"][t](x))
        if base.keys() != moved.keys():
            errors.append(f"{m.name}: metrics differ under {t}: {sorted(base)} vs {sorted(moved)}")
            continue
        same = [_same(base[k], moved[k], rel) for k in base]
        if flag and not all(same):
            errors.append(f"{m.name}: declared invariant to {t} but moved "
                          f"{ {k: (base[k], moved[k]) for k, s in zip(base, same, strict=True) if not s} }")
        if not flag and all(same):
            errors.append(f"{m.name}: declared to change under {t} but did not: {base}")
    return errors


__all__ = ["GEOMETRY_TRANSFORMS", "SIMILARITY_TRANSFORMS", "check_geometry_invariances", "check_similarity_properties",
           "geometry_data", "random_transform", "similarity_data"]
