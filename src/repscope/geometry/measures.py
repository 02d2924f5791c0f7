"""Registry of geometry measures with their declared invariances (checked by one generic test).

Each measure maps a representation matrix X (n, d) — plus labels or positive pairs when it needs them — to a dict of
named metrics. Invariance flags are about transforms of the feature space: `True` = declared invariant, `False` =
declared to change, `None` = no claim (e.g. the value is an integer count or saturates). Measures live in the
generic `MEASURES` registry; the `default` metadata flag says whether `geometry` runs it when no measure is named.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import Tensor

from repscope.errors import ConfigError
from repscope.geometry import anisotropy, clusters, coding_rate, infoplane, intrinsic, spectrum, uniformity
from repscope.registry import Registry


@dataclass(frozen=True)
class GeometryMeasure:
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
    from_stats: Callable[..., dict[str, float]] | None = None  # same metrics from streamed `LayerStats`, if possible


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


def _pca_counts(lam: Tensor, thresholds=(0.9, 0.95, 0.99)) -> dict[str, float]:
    """`intrinsic.pca_dimension` from descending covariance eigenvalues."""
    total = lam.sum()
    out = {}
    for t in thresholds:
        key = f"pca_{int(round(t * 100))}"
        if total <= 0:
            out[key] = 0.0
            continue
        frac = torch.cumsum(lam, 0) / total
        k = int(torch.searchsorted(frac, torch.tensor(t - 1e-12, dtype=frac.dtype))) + 1
        out[key] = float(min(k, lam.numel()))
    return out


def _pca_stats(st) -> dict[str, float]:
    return _pca_counts(st.eigenvalues())


def _pr_stats(st) -> dict[str, float]:
    lam = st.eigenvalues()
    s2 = (lam * lam).sum()
    return {"participation_ratio": float(lam.sum() ** 2 / s2) if s2 > 0 else 0.0}


def _anisotropy_stats(st) -> dict[str, float]:
    return {"anisotropy": float(st.cosine_contributions().sum())}


def _rogue_stats(st, top: int = 3, min_cosine: float = 0.01) -> dict[str, float]:
    """`anisotropy.rogue_dimensions` from streamed cosine contributions (Timkey & van Schijndel 2021)."""
    cc = st.cosine_contributions()
    total = cc.sum()
    srt = torch.sort(cc, descending=True).values
    ok = abs(float(total)) >= min_cosine
    nan = float("nan")
    return {"rogue_top1_share": float(srt[0] / total) if ok else nan,
            f"rogue_top{top}_share": float(srt[:top].sum() / total) if ok else nan}


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


TRANSFORMS = ("ortho", "isotropic_scaling", "translation", "permutation", "invertible_linear")
_DIST = dict(invariant_to_ortho=True, invariant_to_isotropic_scaling=True, invariant_to_translation=True,
             invariant_to_permutation=True, invariant_to_invertible_linear=False)

MEASURES: Registry[GeometryMeasure] = Registry("geometry measure")


def register(m: GeometryMeasure, *, aliases: tuple[str, ...] = (), default: bool = True) -> GeometryMeasure:
    """Add a geometry measure to the registry; `default=False` keeps it out of the runs that name no measure."""
    return MEASURES.register(m.name, m, aliases=aliases, default=default, paper=m.doc,
                             invariances={t: getattr(m, f"invariant_to_{t}") for t in TRANSFORMS})


_G = GeometryMeasure
register(_G("twonn", _twonn, "TwoNN intrinsic dimension (Facco et al. 2017)",
             defaults={"discard_fraction": 0.1}, **_DIST))
register(_G("mle", _mle, "Levina–Bickel MLE dimension, MacKay–Ghahramani averaging",
             defaults={"k1": 10, "k2": 20}, **_DIST))
register(_G("pca", _pca, "PCA components for 90/95/99% of variance",
             **{**_DIST, "invariant_to_invertible_linear": None}, from_stats=_pca_stats))
register(_G("participation_ratio", _pr, "participation ratio (Σλ)²/Σλ²", **_DIST, from_stats=_pr_stats))
register(_G("anisotropy", _anisotropy, "mean cosine of random pairs (Ethayarajh 2019)",
             **{**_DIST, "invariant_to_translation": False}, from_stats=_anisotropy_stats))
register(_G("rogue", _rogue, "share of expected cosine in the top dimensions (Timkey & van Schijndel 2021)",
             defaults={"top": 3}, invariant_to_ortho=False, invariant_to_isotropic_scaling=True,
             invariant_to_translation=False, invariant_to_permutation=True, invariant_to_invertible_linear=False,
             from_stats=_rogue_stats))
register(_G("anisotropy_standardized", _anisotropy_std, "mean cosine after z-scoring each dimension",
             invariant_to_ortho=False, invariant_to_isotropic_scaling=True, invariant_to_translation=True,
             invariant_to_permutation=True, invariant_to_invertible_linear=False))
register(_G("rank", _ranks, "effective rank (Roy & Vetterli 2007) and stable rank", **_DIST))
register(_G("numerical_rank", _numrank, "number of singular values above rtol·σ₁", defaults={"rtol": 1e-6},
             **{**_DIST, "invariant_to_invertible_linear": True}))
register(_G("powerlaw", _alpha, "eigenspectrum decay α (α-ReQ), fitted over ranks fit_first..fit_last",
             defaults={"fit_first": 5, "fit_last": 100}, **_DIST))
register(_G("coding_rate", _coding, "coding rate R(Z,ε) and MCR² rate reduction ΔR, unit-norm rows",
             defaults={"eps": 0.5}, **{**_DIST, "invariant_to_translation": False}))
register(_G("clusters", _clusters, "silhouette, Davies–Bouldin, Calinski–Harabasz, Dunn, Xie–Beni",
             needs_labels=True, **_DIST))
register(_G("uniformity", _uniformity, "uniformity log E exp(−t‖u−v‖²) (Wang & Isola 2020)",
             defaults={"t": 2.0}, **{**_DIST, "invariant_to_translation": False}))
register(_G("alignment", _alignment, "alignment E‖f(x)−f(y)‖^α over positive pairs (Wang & Isola 2020)",
             needs_pairs=True, defaults={"alpha": 2.0}, **{**_DIST, "invariant_to_translation": False}))
register(_G("infoplane", _infoplane, "binned I(X;T), I(T;Y) (Shwartz-Ziv & Tishby 2017)", needs_labels=True,
             defaults={"n_bins": 30}, invariant_to_isotropic_scaling=True, invariant_to_permutation=True))


def default_measures() -> list[str]:
    """Names of the measures run when none is named (registry entries declared `default=True`)."""
    return MEASURES.names(default=True)


def get_measures(names: str | list[str] | None) -> list[GeometryMeasure]:
    """Look up measures by name, a list or a comma-separated string (None = the default set); one-line error listing
    the choices for an unknown name."""
    return [MEASURES.get(n) for n in (MEASURES.resolve_many(names) if names else default_measures())]


def check_params(measure: GeometryMeasure, params: dict[str, Any]) -> None:
    """Refuse parameters `measure` does not take (one-line ConfigError naming the ones it does), before any work."""
    import inspect

    sig = inspect.signature(measure.fn).parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in sig.values()):
        return
    takes = [k for k in sig if k not in ("x", "labels", "pairs", "device")]
    bad = [k for k in params if k not in takes]
    if bad:
        raise ConfigError(f"geometry measure '{measure.name}' has no parameter '{bad[0]}'; "
                          f"it takes {', '.join(takes) or 'no parameters'}")


def compute_from_stats(measure: GeometryMeasure, stats, **params: Any) -> dict[str, float]:
    """Run a streamable measure on streamed `repscope.kernels.streaming.LayerStats` (defaults overridden)."""
    return measure.from_stats(stats, **{**measure.defaults, **params})


def compute(measure: GeometryMeasure, x, labels: np.ndarray | None = None, pairs: tuple | None = None, *,
            device: str = "auto", **params: Any) -> dict[str, float]:
    """Run one measure with its defaults overridden by `params`."""
    return measure.fn(x, labels, pairs, device=device, **{**measure.defaults, **params})
