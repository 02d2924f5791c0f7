"""Procedural dSprites-like shapes: 64×64 grey images with five known, independent factors, rendered in numpy.

Factors (integer codes; values in `FACTOR_VALUES`): shape (square, ellipse, triangle), scale (6 sizes), orientation
(12 angles over a full turn), pos_x and pos_y (16 positions each). Every combination is addressable: combination
index i ↔ factor tuple by mixed radix in that order (`index_to_factors`, `factors_to_index`). Rendering is a pure
function of the factors (2×2 supersampled coverage, so edges are anti-aliased), so a seed fixes the bytes.
"""

from __future__ import annotations

import numpy as np

from repscope.errors import ConfigError
from repscope.sources.datasets import ArrayDataset

SIZE = 64
SHAPES = ("square", "ellipse", "triangle")
FACTORS = ("shape", "scale", "orientation", "pos_x", "pos_y")
FACTOR_SIZES = (3, 6, 12, 16, 16)
FACTOR_VALUES: dict[str, np.ndarray] = {
    "shape": np.arange(3),
    "scale": np.linspace(0.5, 1.0, 6),  # × 10 px half-size
    "orientation": np.arange(12) * (2 * np.pi / 12),  # radians
    "pos_x": np.linspace(14.0, 50.0, 16),  # pixel centre
    "pos_y": np.linspace(14.0, 50.0, 16),
}
N_COMBINATIONS = int(np.prod(FACTOR_SIZES))
_HALF = 10.0
_SUPER = 2


def index_to_factors(index: np.ndarray | int) -> np.ndarray:
    """Factor codes (n, 5) of combination indices (mixed radix over `FACTOR_SIZES`, shape slowest)."""
    idx = np.atleast_1d(np.asarray(index, dtype=np.int64))
    if idx.size and (idx.min() < 0 or idx.max() >= N_COMBINATIONS):
        raise ConfigError(f"shape combination index out of range; use 0 … {N_COMBINATIONS - 1}")
    return np.stack(np.unravel_index(idx, FACTOR_SIZES), axis=1).astype(np.int64)


def factors_to_index(factors: np.ndarray) -> np.ndarray:
    """Combination indices (n,) of factor codes (n, 5); the inverse of `index_to_factors`."""
    f = np.atleast_2d(np.asarray(factors, dtype=np.int64))
    if f.shape[1] != len(FACTORS) or (f < 0).any() or (f >= np.array(FACTOR_SIZES)).any():
        raise ConfigError(f"factor codes must be (n, 5) with each column below {FACTOR_SIZES} ({', '.join(FACTORS)})")
    return np.ravel_multi_index(tuple(f.T), FACTOR_SIZES).astype(np.int64)


def render(factors: np.ndarray, *, chunk: int = 256) -> np.ndarray:
    """uint8 images (n, 64, 64) for factor codes (n, 5): white shape on black, coverage-weighted grey edges."""
    f = np.atleast_2d(np.asarray(factors, dtype=np.int64))
    factors_to_index(f)  # validates the codes
    g = (np.arange(SIZE * _SUPER) + 0.5) / _SUPER  # sub-pixel centres in pixel units
    gy, gx = np.meshgrid(g, g, indexing="ij")
    out = np.empty((len(f), SIZE, SIZE), dtype=np.uint8)
    for s in range(0, len(f), chunk):
        b = f[s : s + chunk]
        half = _HALF * FACTOR_VALUES["scale"][b[:, 1]][:, None, None]
        th = FACTOR_VALUES["orientation"][b[:, 2]][:, None, None]
        dx = gx[None] - FACTOR_VALUES["pos_x"][b[:, 3]][:, None, None]
        dy = gy[None] - FACTOR_VALUES["pos_y"][b[:, 4]][:, None, None]
        u = (np.cos(th) * dx + np.sin(th) * dy) / half  # rotate by −θ into the shape's frame, unit half-size
        v = (-np.sin(th) * dx + np.cos(th) * dy) / half
        inside = np.zeros(u.shape, dtype=bool)
        kind = b[:, 0]
        sq, el, tr = kind == 0, kind == 1, kind == 2
        inside[sq] = np.maximum(np.abs(u[sq]), np.abs(v[sq])) <= 1.0
        inside[el] = u[el] ** 2 + (v[el] / 0.5) ** 2 <= 1.0
        # equilateral triangle with circumradius 1.2, pointing along +u: three half-planes at 120°
        tri = np.ones(u[tr].shape, dtype=bool)
        for a in (0.0, 2 * np.pi / 3, 4 * np.pi / 3):
            tri &= -(np.cos(a) * u[tr] + np.sin(a) * v[tr]) <= 0.6
        inside[tr] = tri
        cover = inside.reshape(len(b), SIZE, _SUPER, SIZE, _SUPER).mean(axis=(2, 4))
        out[s : s + chunk] = np.round(cover * 255).astype(np.uint8)
    return out


def shapes_dataset(n: int = 2000, *, seed: int = 0) -> ArrayDataset:
    """`n` distinct factor combinations drawn with `seed`, rendered: an image `ArrayDataset` (x uint8 (n, 64, 64))
    whose samples have integer factor columns shape, scale, orientation, pos_x, pos_y and `combination` (index)."""
    if not 1 <= n <= N_COMBINATIONS:
        raise ConfigError(f"shapes[:N] needs 1 ≤ N ≤ {N_COMBINATIONS} (all combinations), got {n}")
    idx = np.random.default_rng(seed).choice(N_COMBINATIONS, size=n, replace=False)
    f = index_to_factors(idx)
    cols = {name: f[:, j] for j, name in enumerate(FACTORS)}
    cols["combination"] = idx
    return ArrayDataset(render(f), cols, name="shapes", modality="image")
