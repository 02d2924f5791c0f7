"""Learned old↔new maps for backward compatibility, fit on a fit split and scored on held-out samples.

Each map says how the two sides of a cross-model search are embedded: `queries(new)` (new-model queries) and
`gallery(old)` (the old-model index). Direction "new→old" maps the queries into the old space and leaves the old index
untouched (true backward compatibility, no backfill); "old→new" maps the stored old embeddings into the new space (a
cheap backfill that needs no re-embedding). `TRANSFORMS` is the registry; each factory returns the maps it stands for
("ridge" and "lstsq" give both directions).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from repscope.device import as_matrix
from repscope.errors import ConfigError, DataError
from repscope.registry import Registry

NEW_TO_OLD, OLD_TO_NEW = "new→old", "old→new"


class CompatMap:
    """Base map: identity on both sides; subclasses learn from paired rows (old (n, d_o), new (n, d_n), labels)."""

    name = "none"
    direction = NEW_TO_OLD

    def fit(self, old: Any, new: Any, labels: Any = None) -> CompatMap:
        """Learn the map from the fit split (the base map only checks that the two spaces have equal widths)."""
        o, n = _pair(old, new)
        if o.shape[1] != n.shape[1]:
            raise DataError(f"transform '{self.name}' needs equal widths, got old {o.shape[1]} and new {n.shape[1]}; "
                            "use procrustes, ridge or bct")
        return self

    def queries(self, new: Any) -> torch.Tensor:
        """New-model queries as searched."""
        return as_matrix(new, "cpu", torch.float64, name="new features")

    def gallery(self, old: Any) -> torch.Tensor:
        """Old-model gallery as searched."""
        return as_matrix(old, "cpu", torch.float64, name="old features")


def _pair(old: Any, new: Any) -> tuple[torch.Tensor, torch.Tensor]:
    o = as_matrix(old, "cpu", torch.float64, name="old features", min_rows=2, purpose="fitting a compatibility map")
    n = as_matrix(new, "cpu", torch.float64, name="new features", min_rows=2, purpose="fitting a compatibility map")
    if o.shape[0] != n.shape[0]:
        raise DataError(f"old has {o.shape[0]} rows but new has {n.shape[0]}; pass the same samples in the same order")
    return o, n


class ProcrustesMap(CompatMap):
    """Orthogonal Procrustes new→old (Schönemann 1966): R = UVᵀ from (N−μ_N)ᵀ(O−μ_O) = USVᵀ, x ↦ (x−μ_N)R + μ_O
    (R has orthonormal columns or rows when the widths differ)."""

    name = "procrustes"

    def fit(self, old: Any, new: Any, labels: Any = None) -> ProcrustesMap:
        o, n = _pair(old, new)
        self.mean_old_, self.mean_new_ = o.mean(0), n.mean(0)
        u, _, vh = torch.linalg.svd((n - self.mean_new_).T @ (o - self.mean_old_), full_matrices=False)
        self.rotation_ = u @ vh
        return self

    def queries(self, new: Any) -> torch.Tensor:
        return (super().queries(new) - self.mean_new_) @ self.rotation_ + self.mean_old_


class RidgeMap(CompatMap):
    """Affine ridge regression between the spaces (Hoerl & Kennard 1970): W = (XᶜᵀXᶜ + λI)⁻¹XᶜᵀYᶜ on centred rows,
    λ = alpha·tr(XᶜᵀXᶜ)/d (alpha = 0: minimum-norm least squares); maps new→old queries or the old→new gallery."""

    def __init__(self, direction: str = NEW_TO_OLD, alpha: float = 1e-2, name: str = "ridge"):
        if direction not in (NEW_TO_OLD, OLD_TO_NEW):
            raise ConfigError(f"direction '{direction}' unknown; use {NEW_TO_OLD} or {OLD_TO_NEW}")
        if alpha < 0:
            raise ConfigError(f"ridge alpha must be >= 0, got {alpha}")
        self.direction, self.alpha, self.name = direction, float(alpha), name

    def fit(self, old: Any, new: Any, labels: Any = None) -> RidgeMap:
        o, n = _pair(old, new)
        x, y = (n, o) if self.direction == NEW_TO_OLD else (o, n)
        self.mean_x_, self.mean_y_ = x.mean(0), y.mean(0)
        xc, yc = x - self.mean_x_, y - self.mean_y_
        if self.alpha == 0:
            self.coef_ = torch.linalg.pinv(xc) @ yc
        else:
            gram = xc.T @ xc
            lam = self.alpha * float(torch.trace(gram)) / gram.shape[0]
            self.coef_ = torch.linalg.solve(gram + lam * torch.eye(gram.shape[0], dtype=gram.dtype), xc.T @ yc)
        return self

    def _map(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean_x_) @ self.coef_ + self.mean_y_

    def queries(self, new: Any) -> torch.Tensor:
        q = super().queries(new)
        return self._map(q) if self.direction == NEW_TO_OLD else q

    def gallery(self, old: Any) -> torch.Tensor:
        g = super().gallery(old)
        return self._map(g) if self.direction == OLD_TO_NEW else g


class BCTMap(CompatMap):
    """BCT-style compatible head on frozen new features (Shen et al. 2020): the `repscope.compat.bct.BCTHead`
    projection new→old, trained with its own task loss plus the old classifier's influence loss."""

    name = "bct"

    def __init__(self, **options: Any):
        self.options = options

    def fit(self, old: Any, new: Any, labels: Any = None) -> BCTMap:
        from repscope.compat.bct import BCTHead

        if labels is None:
            raise ConfigError("the bct transform needs labels (the old classifier's task)")
        o, n = _pair(old, new)
        self.head_ = BCTHead(**self.options).fit(o, n, labels)
        return self

    def queries(self, new: Any) -> torch.Tensor:
        return self.head_.transform(new)


TRANSFORMS: Registry[Callable[..., list[CompatMap]]] = Registry("compat transform")
TRANSFORMS.register("none", lambda **o: [CompatMap()], aliases=("identity",), default=True, directions=(NEW_TO_OLD,),
                    paper="Shen et al. 2020 (no transform: new queries against the old index)")
TRANSFORMS.register("procrustes", lambda **o: [ProcrustesMap()], aliases=("orthogonal",), default=True,
                    directions=(NEW_TO_OLD,), paper="Schönemann 1966")
TRANSFORMS.register("ridge", lambda alpha=1e-2, **o: [RidgeMap(NEW_TO_OLD, alpha), RidgeMap(OLD_TO_NEW, alpha)],
                    default=True, directions=(NEW_TO_OLD, OLD_TO_NEW), paper="Hoerl & Kennard 1970")
TRANSFORMS.register("lstsq", lambda **o: [RidgeMap(NEW_TO_OLD, 0.0, "lstsq"), RidgeMap(OLD_TO_NEW, 0.0, "lstsq")],
                    aliases=("least-squares",), default=False, directions=(NEW_TO_OLD, OLD_TO_NEW),
                    paper="least squares")
TRANSFORMS.register("bct", lambda **o: [BCTMap(**{k: v for k, v in o.items() if k != "alpha"})], default=True,
                    directions=(NEW_TO_OLD,), paper="Shen et al. 2020 (influence loss)")


def resolve_transforms(names: Sequence[str] | str | None) -> list[str]:
    """Canonical transform names (aliases resolved, order kept, duplicates dropped); None: the default set."""
    if names is None:
        return TRANSFORMS.names(default=True)
    items = [s.strip() for s in names.split(",")] if isinstance(names, str) else [str(s).strip() for s in names]
    items = [s for s in items if s]
    if not items:
        raise ConfigError(f"no transforms given; choose from {TRANSFORMS.choices()}")
    return list(dict.fromkeys(TRANSFORMS.resolve(s) for s in items))


def make_maps(name: str, **options: Any) -> list[CompatMap]:
    """The unfitted maps a registered transform stands for (options: alpha, lam, epochs, lr, seed, progress, device)."""
    return TRANSFORMS.get(name)(**options)


__all__ = ["BCTMap", "CompatMap", "NEW_TO_OLD", "OLD_TO_NEW", "ProcrustesMap", "RidgeMap", "TRANSFORMS", "make_maps",
           "resolve_transforms"]
