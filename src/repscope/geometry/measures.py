"""Registry of geometry measures with their declared invariances (checked by one generic test).

Each measure maps a representation matrix X (n, d) — plus labels or positive pairs when it needs them — to a dict of
named metrics. Invariance flags are about transforms of the feature space: `True` = declared invariant, `False` =
declared to change, `None` = no claim (e.g. the value is an integer count or saturates).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repscope.errors import ConfigError, format_choices
from repscope.geometry import anisotropy, clusters, coding_rate, infoplane, intrinsic, spectrum, uniformity


@dataclass(frozen=True)
class Measure:
    """A geometry measure: `fn(x, labels, pairs, **params) -> {metric: value}` plus declared properties."""

    name: str
    fn: Callable[..., dict[str, float]]
    doc: str
    needs_labels: bool = False
    needs_pairs: bool = False
    defaults: dict[str, Any] = field(default_factory=dict)
    invariant_to_ortho: bool | None = None
    invariant_to_isotropic_scaling: bool | None = None
    invariant_to_translation: bool | None = None
    invariant_to_permutation: bool | None = None
    invariant_to_invertible_linear: bool | None = None


def _twonn(x: Tensor, labels, pairs, discard_fraction: float = 0.1, device: str = "auto") -> dict[str, float]:
    return {"twonn_id": intrinsic.twonn_dimension(x, discard_fraction=discard_fraction, device=device)}


def _mle(x: Tensor, labels, pairs, k1: int = 10, k2: int = 20, device: str = "auto") -> dict[str, float]:
    return {"mle_id": intrinsic.mle_dimension(x, k1=k1, k2=k2, device=device)}


def _pca(x: Tensor, labels, pairs, device: str = "auto") -> dict[str, float]:
    counts = intrinsic.pca_dimension(x, (0.9, 0.95, 0.99), device=device)
    return {f"pca_{int(round(t * 100))}": float(v) for t, v in counts.items()}


def _pr(x: Tensor, labels, pairs, device: str = "auto") -> dict[str, float]:
    return {"participation_ratio": intrinsic.participation_ratio(x, device=device)}


def _anisotropy(x: Tensor, labels, pairs, device: str = "auto") -> dict[str, float]:
    return {"anisotropy": anisotropy.mean_cosine(x, device=device)}


def _rogue(x: Tensor, labels, pairs, top: int = 3, device: str = "auto") -> dict[str, float]:
    r = anisotropy.rogue_dimensions(x, top=top, device=device)
    return {"rogue_top1_share": r["top1_share"], f"rogue_top{top}_share": r[f"top{top}_share"]}


def _anisotropy_std(x: Tensor, labels, pairs, device: str = "auto") -> dict[str, float]:
    return {"anisotropy_standardized": anisotropy.mean_cosine_standardized(x, device=device)}


def _ranks(x: Tensor, labels, pairs, device: str = "auto") -> dict[str, float]:
    return {
        "effective_rank": spectrum.effective_rank(x, center=True, device=device),
        "stable_rank": spectrum.stable_rank(x, center=True, device=device),
    }


def _numrank(x: Tensor, labels, pairs, rtol: float = 1e-6, device: str = "auto") -> dict[str, float]:
    return {"numerical_rank": float(spectrum.numerical_rank(x, rtol=rtol, center=True, device=device))}


def _alpha(x: Tensor, labels, pairs, fit_first: int = 5, fit_last: int = 100, device: str = "auto") -> dict[str, float]:
    lam = spectrum.covariance_eigenvalues(x, device=device)
    return {"powerlaw_alpha": spectrum.powerlaw_alpha(lam, (fit_first, fit_last))}


def _coding(x: Tensor, labels, pairs, eps: float = 0.5, device: str = "auto") -> dict[str, float]:
    if labels is None:
        return {"coding_rate": coding_rate.coding_rate(x, eps=eps, normalize=True, device=device)}
    r = coding_rate.rate_reduction(x, labels, eps=eps, normalize=True, device=device)
    return {"coding_rate": r["R"], "coding_rate_classes": r["Rc"], "rate_reduction": r["delta_R"]}


def _clusters(x: Tensor, labels, pairs, device: str = "auto") -> dict[str, float]:
    return clusters.cluster_scores(x, labels, device=device)


def _uniformity(x: Tensor, labels, pairs, t: float = 2.0, device: str = "auto") -> dict[str, float]:
    return {"uniformity": uniformity.uniformity(x, t=t, device=device)}


def _alignment(x: Tensor, labels, pairs, alpha: float = 2.0, device: str = "auto") -> dict[str, float]:
    a, b = (torch.as_tensor(np.asarray(p, dtype=np.int64).copy(), device=x.device) for p in pairs)
    return {"alignment": uniformity.alignment(x[a], x[b], alpha=alpha, device=device)}


def _infoplane(x: Tensor, labels, pairs, n_bins: int = 30, device: str = "auto") -> dict[str, float]:
    r = infoplane.information_plane(x, labels, n_bins=n_bins, device=device)
    return {"I_XT": r["I_XT"], "I_TY": r["I_TY"]}


_DIST = dict(invariant_to_ortho=True, invariant_to_isotropic_scaling=True, invariant_to_translation=True,
             invariant_to_permutation=True, invariant_to_invertible_linear=False)

MEASURES: dict[str, Measure] = {
    m.name: m
    for m in [
        Measure("twonn", _twonn, "TwoNN intrinsic dimension (Facco et al. 2017)", defaults={"discard_fraction": 0.1},
                **_DIST),
        Measure("mle", _mle, "Levina–Bickel MLE dimension, MacKay–Ghahramani averaging", defaults={"k1": 10, "k2": 20},
                **_DIST),
        Measure("pca", _pca, "PCA components for 90/95/99% of variance",
                **{**_DIST, "invariant_to_invertible_linear": None}),
        Measure("participation_ratio", _pr, "participation ratio (Σλ)²/Σλ²", **_DIST),
        Measure("anisotropy", _anisotropy, "mean cosine of random pairs (Ethayarajh 2019)",
                **{**_DIST, "invariant_to_translation": False}),
        Measure("rogue", _rogue, "share of expected cosine in the top dimensions (Timkey & van Schijndel 2021)",
                defaults={"top": 3}, invariant_to_ortho=False, invariant_to_isotropic_scaling=True,
                invariant_to_translation=False, invariant_to_permutation=True, invariant_to_invertible_linear=False),
        Measure("anisotropy_standardized", _anisotropy_std, "mean cosine after z-scoring each dimension",
                invariant_to_ortho=False, invariant_to_isotropic_scaling=True, invariant_to_translation=True,
                invariant_to_permutation=True, invariant_to_invertible_linear=False),
        Measure("rank", _ranks, "effective rank (Roy & Vetterli 2007) and stable rank", **_DIST),
        Measure("numerical_rank", _numrank, "number of singular values above rtol·σ₁", defaults={"rtol": 1e-6},
                **{**_DIST, "invariant_to_invertible_linear": True}),
        Measure("powerlaw", _alpha, "eigenspectrum decay α (α-ReQ), fitted over ranks fit_first..fit_last",
                defaults={"fit_first": 5, "fit_last": 100}, **_DIST),
        Measure("coding_rate", _coding, "coding rate R(Z,ε) and MCR² rate reduction ΔR, unit-norm rows",
                defaults={"eps": 0.5}, **{**_DIST, "invariant_to_translation": False}),
        Measure("clusters", _clusters, "silhouette, Davies–Bouldin, Calinski–Harabasz, Dunn, Xie–Beni",
                needs_labels=True, **_DIST),
        Measure("uniformity", _uniformity, "uniformity log E exp(−t‖u−v‖²) (Wang & Isola 2020)", defaults={"t": 2.0},
                **{**_DIST, "invariant_to_translation": False}),
        Measure("alignment", _alignment, "alignment E‖f(x)−f(y)‖^α over positive pairs (Wang & Isola 2020)",
                needs_pairs=True, defaults={"alpha": 2.0}, **{**_DIST, "invariant_to_translation": False}),
        Measure("infoplane", _infoplane, "binned I(X;T), I(T;Y) (Shwartz-Ziv & Tishby 2017)", needs_labels=True,
                defaults={"n_bins": 30}, invariant_to_isotropic_scaling=True, invariant_to_permutation=True),
    ]
}

DEFAULT_MEASURES = ["twonn", "mle", "pca", "participation_ratio", "anisotropy", "rogue", "anisotropy_standardized",
                    "rank", "numerical_rank", "powerlaw", "coding_rate", "clusters", "uniformity", "alignment",
                    "infoplane"]


def get_measures(names: list[str] | None) -> list[Measure]:
    """Look up measures by name (None = the default set); one-line error listing the choices for an unknown name."""
    names = names or DEFAULT_MEASURES
    unknown = [n for n in names if n not in MEASURES]
    if unknown:
        raise ConfigError(f"unknown geometry measure(s) {', '.join(unknown)}; choose from "
                          f"{format_choices(list(MEASURES), limit=20)}")
    return [MEASURES[n] for n in names]


def compute(measure: Measure, x, labels: np.ndarray | None = None, pairs: tuple | None = None,
            device: str = "auto", **params: Any) -> dict[str, float]:
    """Run one measure with its defaults overridden by `params`."""
    return measure.fn(x, labels, pairs, device=device, **{**measure.defaults, **params})
