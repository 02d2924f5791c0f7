"""The measure registry: every similarity measure with its declared properties (checked by one generic test).

A `SimilarityMeasure` is a pair (prepare, compare): `prepare(x)` builds a representation's statistics once
(centred data, Gram, basis, RDM, neighbour mask), `compare(a, b)` turns two statistics into one number. Calling the
measure on raw arrays does both. Declared properties hold for the registered default parameters. A new measure is
one function plus one `register(...)` call (see CONTRIBUTING.md); it then shows up in `compare --measure`, studies,
the report and the generic property test (`repscope.testing.check_similarity_properties`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from typing import Any

import torch
from torch import Tensor

from repscope.errors import ConfigError
from repscope.registry import Registry
from repscope.similarity import cca, cka, neighbors, shape
from repscope.similarity.prep import same_rows, to_matrix
from repscope.similarity.rsa_score import compare_rsa, prepare_rsa

PROPERTIES = ("symmetric", "is_metric", "invariant_to_ortho", "invariant_to_isotropic_scaling",
              "invariant_to_translation", "invariant_to_permutation", "invariant_to_invertible_linear",
              "invariant_to_affine")


TRANSFORMS = ("ortho", "isotropic_scaling", "translation", "permutation", "invertible_linear", "affine")


@dataclass(frozen=True)
class SimilarityMeasure:
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

    def with_params(self, **params: Any) -> SimilarityMeasure:
        """A copy with other parameters (the declared properties are those of the registered defaults)."""
        return replace(self, params={**self.params, **params})

    @property
    def properties(self) -> dict[str, bool]:
        """The declared properties as a dict."""
        return {p: bool(getattr(self, p)) for p in PROPERTIES}


MEASURES: Registry[SimilarityMeasure] = Registry("similarity measure")
REGISTRY = MEASURES  # compatibility name: the registry is dict-like (items(), values(), [name])


def _hold(x, device: str | torch.device = "auto", **params: Any) -> tuple[Tensor, dict[str, Any]]:
    return to_matrix(x, device), params


def function_measure(fn: Callable[..., float], name: str | None = None, *, kind: str = "similarity",
                     paper: str = "", invariant_to: tuple[str, ...] | list[str] = (), symmetric: bool = True,
                     is_metric: bool = False, params: dict[str, Any] | None = None) -> SimilarityMeasure:
    """A SimilarityMeasure from a plain function `fn(x, y, **params) -> float` on (n, d) float64 tensors.

    `invariant_to` names the transforms the measure is declared invariant to (see TRANSFORMS); every other transform
    is declared to change it, and the generic property test checks both.
    """
    bad = [t for t in invariant_to if t not in TRANSFORMS]
    if bad:
        raise ConfigError(f"unknown transform(s) {', '.join(bad)} in invariant_to; choose from {', '.join(TRANSFORMS)}")
    if kind not in ("similarity", "distance"):
        raise ConfigError(f"measure kind '{kind}' must be 'similarity' or 'distance'")

    def compare(a: tuple[Tensor, dict[str, Any]], b: tuple[Tensor, dict[str, Any]]) -> float:
        same_rows(a[0], b[0])
        return float(fn(a[0], b[0], **a[1]))

    flags = {f"invariant_to_{t}": t in invariant_to for t in TRANSFORMS}
    return SimilarityMeasure(name or fn.__name__, _hold, compare, kind, paper or (fn.__doc__ or "").strip(),
                             symmetric=symmetric, is_metric=is_metric, params=dict(params or {}), **flags)


def register(measure: SimilarityMeasure | Callable[..., float] | None = None, /, *, name: str | None = None,
             aliases: tuple[str, ...] | list[str] = (), streamable: bool = False, cca_like: bool = False,
             **declared: Any) -> Any:
    """Add a measure to the registry (names and aliases are unique).

    Entry metadata flags: `streamable` (computable from streamed sufficient statistics when the layers do not fit
    the memory budget: `repscope.similarity.streaming`), `cca_like` (a CCA fit: degenerate with fewer samples than
    dimensions, which the report warns about).

    Either `register(SimilarityMeasure(...), aliases=(...))`, or as a decorator on a plain function
    `f(x, y, **params) -> float` with its declarations (see `function_measure`)::

        @register(name="cosine_of_means", paper="…", invariant_to=("isotropic_scaling",))
        def cosine_of_means(x, y): ...
    """
    if measure is None:
        return lambda fn: register(fn, name=name, aliases=aliases, streamable=streamable, cca_like=cca_like,
                                   **declared)
    if isinstance(measure, SimilarityMeasure) and (declared or name):
        raise ConfigError(f"measure '{measure.name}' already carries its name and declarations; pass only aliases")
    m = measure if isinstance(measure, SimilarityMeasure) else function_measure(measure, name, **declared)
    MEASURES.register(m.name, m, aliases=aliases, kind=m.kind, paper=m.paper, symmetric=m.symmetric,
                      is_metric=m.is_metric, invariances={t: bool(getattr(m, f"invariant_to_{t}")) for t in TRANSFORMS},
                      streamable=streamable, cca_like=cca_like)
    return measure


def get_measure(name: str | SimilarityMeasure, **params: Any) -> SimilarityMeasure:
    """Look a measure up by name or alias (cka, mknn, cca, …), optionally with other parameters."""
    m = name if isinstance(name, SimilarityMeasure) else MEASURES.get(name)
    return m.with_params(**params) if params else m


def measures(names: str | list[str] | None = None) -> list[SimilarityMeasure]:
    """Measures named in a list or comma-separated string; None gives every registered measure."""
    if names is None:
        return MEASURES.values()
    if isinstance(names, str):
        names = [n for n in names.split(",") if n.strip()]
    return [get_measure(n) for n in names]


def _flags(ortho, scale, trans, perm, lin, aff, sym=True, metric=False) -> dict[str, bool]:
    return dict(symmetric=sym, is_metric=metric, invariant_to_ortho=ortho, invariant_to_isotropic_scaling=scale,
                invariant_to_translation=trans, invariant_to_permutation=perm, invariant_to_invertible_linear=lin,
                invariant_to_affine=aff)


_CKA_FLAGS = _flags(True, True, True, True, False, False)
_KNN_FLAGS = _flags(True, True, False, True, False, False)
_SM = SimilarityMeasure
register(_SM("linear_cka", cka.prepare_linear, cka.compare_linear, "similarity", "Kornblith et al. 2019",
             **_CKA_FLAGS), aliases=("cka",), streamable=True)
register(_SM("debiased_cka", cka.prepare_linear, cka.compare_debiased, "similarity",
             "Kornblith et al. 2019; Song et al. 2012 (unbiased HSIC)", **_CKA_FLAGS), streamable=True)
register(_SM("rbf_cka", cka.prepare_rbf, cka.compare_kernel, "similarity", "Kornblith et al. 2019",
             params={"sigma_mult": 1.0}, **_CKA_FLAGS))
register(_SM("mean_cca", cca.prepare_cca, cca.compare_mean_cca, "similarity", "Hotelling 1936; Raghu et al. 2017",
             **_flags(True, True, True, True, True, True)), aliases=("cca",), cca_like=True)
register(_SM("svcca", cca.prepare_svcca, cca.compare_mean_cca, "similarity", "Raghu et al. 2017",
             params={"keep": 0.99}, **_flags(True, True, True, True, False, False)), cca_like=True)
register(_SM("pwcca", partial(cca.prepare_cca, keep_data=True), cca.compare_pwcca, "similarity",
             "Morcos et al. 2018", prepare_b_fn=cca.prepare_cca, params={"variant": "morcos"},
             **_flags(False, True, True, True, False, False, sym=False)), cca_like=True)
register(_SM("procrustes", shape.prepare_procrustes, shape.compare_procrustes, "distance",
             "Williams et al. 2021", **_flags(True, True, True, True, False, False, metric=True)))
register(_SM("shape_angular", shape.prepare_angular, shape.compare_angular, "distance",
             "Williams et al. 2021 (partial whitening α=0.5)", params={"alpha": 0.5, "interpolation": "covariance"},
             **_flags(True, True, True, True, False, False, metric=True)), aliases=("shape",))
register(_SM("shape_cca", shape.prepare_angular, shape.compare_angular, "distance",
             "Williams et al. 2021 (α=0: angular CCA distance)", params={"alpha": 0.0},
             **_flags(True, True, True, True, True, True, metric=True)))
register(_SM("rsa", prepare_rsa, compare_rsa, "similarity",
             "Kriegeskorte et al. 2008 (euclidean RDM, Spearman)",
             params={"kind": "euclidean", "compare": "spearman"}, **_flags(True, True, True, True, False, False)))
register(_SM("rsa_corr", prepare_rsa, compare_rsa, "similarity",
             "Kriegeskorte et al. 2008 (correlation RDM, Spearman)",
             params={"kind": "correlation", "compare": "spearman"},
             **_flags(False, True, False, True, False, False)))
register(_SM("mutual_knn", neighbors.prepare_knn, neighbors.compare_mknn, "similarity", "Huh et al. 2024",
             params={"k": 10, "metric": "cosine"}, **_KNN_FLAGS), aliases=("mknn",))
register(_SM("knn_jaccard", neighbors.prepare_knn, neighbors.compare_jaccard, "similarity",
             "kNN Jaccard (Klabunde et al. 2023 survey)", params={"k": 10, "metric": "cosine"}, **_KNN_FLAGS),
         aliases=("jaccard",))
register(_SM("cknna", neighbors.prepare_cknna, neighbors.compare_cknna, "similarity", "Huh et al. 2024",
             params={"k": 10, "metric": "cosine", "variant": "paper"}, **_KNN_FLAGS))
