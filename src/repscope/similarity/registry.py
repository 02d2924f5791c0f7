"""The measure registry: every similarity measure with its declared properties (checked by one generic test).

A `Measure` is a pair (prepare, compare): `prepare(x)` builds a representation's statistics once (centred data,
Gram, basis, RDM, neighbour mask), `compare(a, b)` turns two statistics into one number. Calling the measure on
raw arrays does both. Declared properties hold for the registered default parameters.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import torch

from repscope.errors import ConfigError, format_choices
from repscope.similarity import cca, cka, neighbors, rsa, shape

PROPERTIES = ("symmetric", "is_metric", "invariant_to_ortho", "invariant_to_isotropic_scaling",
              "invariant_to_translation", "invariant_to_permutation", "invariant_to_invertible_linear",
              "invariant_to_affine")


@dataclass(frozen=True)
class Measure:
    """A registered similarity (higher = more alike) or distance (lower = more alike) with its declared properties."""

    name: str
    prepare_fn: Callable[..., Any]
    compare_fn: Callable[[Any, Any], float]
    kind: str  # "similarity" or "distance"
    paper: str
    symmetric: bool
    is_metric: bool
    invariant_to_ortho: bool
    invariant_to_isotropic_scaling: bool
    invariant_to_translation: bool
    invariant_to_permutation: bool
    invariant_to_invertible_linear: bool
    invariant_to_affine: bool
    params: dict[str, Any] = field(default_factory=dict)
    prepare_b_fn: Callable[..., Any] | None = None  # asymmetric measures may prepare the second side differently

    def prepare(self, x, device: str | torch.device = "auto", side: str = "a") -> Any:
        """Per-representation statistics (computed once per layer in layer × layer matrices)."""
        fn = self.prepare_b_fn if (side == "b" and self.prepare_b_fn is not None) else self.prepare_fn
        return fn(x, device=device, **self.params)

    def compare(self, a: Any, b: Any) -> float:
        """One number from two prepared statistics (a from side 'a', b from side 'b')."""
        return float(self.compare_fn(a, b))

    def __call__(self, x, y, device: str | torch.device = "auto") -> float:
        """The measure on raw (n, d) arrays or tensors."""
        return self.compare(self.prepare(x, device, "a"), self.prepare(y, device, "b"))

    def with_params(self, **params: Any) -> Measure:
        """A copy with other parameters (the declared properties are those of the registered defaults)."""
        return replace(self, params={**self.params, **params})

    @property
    def properties(self) -> dict[str, bool]:
        """The declared properties as a dict."""
        return {p: bool(getattr(self, p)) for p in PROPERTIES}


REGISTRY: dict[str, Measure] = {}
ALIASES = {"cka": "linear_cka", "mknn": "mutual_knn", "cca": "mean_cca", "jaccard": "knn_jaccard",
           "procrustes": "procrustes", "shape": "shape_angular"}


def register(m: Measure) -> Measure:
    """Add a measure to the registry (names are unique)."""
    if m.name in REGISTRY:
        raise ConfigError(f"measure '{m.name}' is already registered")
    REGISTRY[m.name] = m
    return m


def get_measure(name: str | Measure, **params: Any) -> Measure:
    """Look a measure up by name or alias (cka, mknn, cca, …), optionally with other parameters."""
    if isinstance(name, Measure):
        return name.with_params(**params) if params else name
    key = ALIASES.get(name.strip().lower(), name.strip().lower())
    if key not in REGISTRY:
        raise ConfigError(f"unknown measure '{name}'; available: {', '.join(sorted(REGISTRY))} "
                          f"(aliases: {format_choices(sorted(ALIASES))})")
    m = REGISTRY[key]
    return m.with_params(**params) if params else m


def measures(names: str | list[str] | None = None) -> list[Measure]:
    """Measures named in a list or comma-separated string; None gives every registered measure."""
    if names is None:
        return list(REGISTRY.values())
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    return [get_measure(n) for n in names]


def _flags(ortho, scale, trans, perm, lin, aff, sym=True, metric=False) -> dict[str, bool]:
    return dict(symmetric=sym, is_metric=metric, invariant_to_ortho=ortho, invariant_to_isotropic_scaling=scale,
                invariant_to_translation=trans, invariant_to_permutation=perm, invariant_to_invertible_linear=lin,
                invariant_to_affine=aff)


_CKA_FLAGS = _flags(True, True, True, True, False, False)
register(Measure("linear_cka", cka.prepare_linear, cka.compare_linear, "similarity",
                 "Kornblith et al. 2019", **_CKA_FLAGS))
register(Measure("debiased_cka", cka.prepare_linear, cka.compare_debiased, "similarity",
                 "Kornblith et al. 2019; Song et al. 2012 (unbiased HSIC)", **_CKA_FLAGS))
register(Measure("rbf_cka", cka.prepare_rbf, cka.compare_kernel, "similarity", "Kornblith et al. 2019",
                 params={"sigma_mult": 1.0}, **_CKA_FLAGS))
register(Measure("mean_cca", cca.prepare_cca, cca.compare_mean_cca, "similarity", "Hotelling 1936; Raghu et al. 2017",
                 **_flags(True, True, True, True, True, True)))
register(Measure("svcca", cca.prepare_svcca, cca.compare_mean_cca, "similarity", "Raghu et al. 2017",
                 params={"keep": 0.99}, **_flags(True, True, True, True, False, False)))
register(Measure("pwcca", partial(cca.prepare_cca, keep_data=True), cca.compare_pwcca, "similarity",
                 "Morcos et al. 2018", prepare_b_fn=cca.prepare_cca,
                 **_flags(False, True, True, True, False, False, sym=False)))
register(Measure("procrustes", shape.prepare_procrustes, shape.compare_procrustes, "distance",
                 "Williams et al. 2021", **_flags(True, True, True, True, False, False, metric=True)))
register(Measure("shape_angular", shape.prepare_angular, shape.compare_angular, "distance",
                 "Williams et al. 2021 (partial whitening α=0.5)", params={"alpha": 0.5},
                 **_flags(True, True, True, True, False, False, metric=True)))
register(Measure("shape_cca", shape.prepare_angular, shape.compare_angular, "distance",
                 "Williams et al. 2021 (α=0: angular CCA distance)", params={"alpha": 0.0},
                 **_flags(True, True, True, True, True, True, metric=True)))
register(Measure("rsa", rsa.prepare_rsa, rsa.compare_rsa, "similarity",
                 "Kriegeskorte et al. 2008 (euclidean RDM, Spearman)",
                 params={"kind": "euclidean", "compare": "spearman"}, **_flags(True, True, True, True, False, False)))
register(Measure("rsa_corr", rsa.prepare_rsa, rsa.compare_rsa, "similarity",
                 "Kriegeskorte et al. 2008 (correlation RDM, Spearman)",
                 params={"kind": "correlation", "compare": "spearman"},
                 **_flags(False, True, False, True, False, False)))
_KNN_FLAGS = _flags(True, True, False, True, False, False)
register(Measure("mutual_knn", neighbors.prepare_knn, neighbors.compare_mknn, "similarity", "Huh et al. 2024",
                 params={"k": 10, "metric": "cosine"}, **_KNN_FLAGS))
register(Measure("knn_jaccard", neighbors.prepare_knn, neighbors.compare_jaccard, "similarity",
                 "kNN Jaccard (Klabunde et al. 2023 survey)", params={"k": 10, "metric": "cosine"}, **_KNN_FLAGS))
register(Measure("cknna", neighbors.prepare_cknna, neighbors.compare_cknna, "similarity", "Huh et al. 2024",
                 params={"k": 10, "metric": "cosine"}, **_KNN_FLAGS))
