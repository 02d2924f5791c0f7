"""All disentanglement metrics over one latent array: `disentanglement_scores` (numbers) and
`disentanglement_details` (numbers plus the matrices behind them, for the report heatmap).

Every metric family is one entry of `DISENTANGLEMENT_METRICS`: `compute(run: MetricRun) -> {score name: value}`,
declared with its paper, score names, `default`, inputs and options. Dispatch goes through the registered object only,
so a family registered later runs from `disentanglement_scores`, `disentangle_store`, `repscope disentangle
--metrics` and the study step `run: disentangle` like the built-ins::

    @DISENTANGLEMENT_METRICS.register("mean_abs", scores=("mean_abs",), paper="toy", default=False)
    def mean_abs(run: MetricRun) -> dict[str, float]:
        return {"mean_abs": float(abs(run.x).mean())}
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np

from repscope.disentangle.dci_score import DCI_ENGINES, dci, dci_from_importance, importance_matrix
from repscope.disentangle.infomec_score import (
    INFOE_SPLITS,
    MI_ESTIMATORS,
    active_latents,
    infoe,
    infom_infoc,
    infomec,
    normalized_mi,
)
from repscope.disentangle.inputs import as_latents, bin_equal_width, encode_factors, split_indices
from repscope.disentangle.mi import entropy_codes, mig, mig_from_mi, mutual_info_codes
from repscope.disentangle.modularity_score import explicitness, explicitness_from_split, modularity, modularity_from_mi
from repscope.disentangle.sap_score import SAP_MODES, sap, sap_from_matrix, sap_score_matrix
from repscope.disentangle.scores import BATCH_POOLS, beta_vae_score, factor_vae_score
from repscope.errors import check_choice
from repscope.registry import Registry


@dataclass
class MetricRun:
    """What a disentanglement metric reads and writes for one latent array.

    Reads: `x` (n, d) float64 latents, `codes` (n, k) integer factor codes, `factors` (k names), `options` (bins,
    importance, sap_mode, mi_estimator, infoe_split, batch_pool, test_fraction, batch_size, n_train, n_eval, seed,
    threads), and the shared, computed-once inputs `entropy` (H(v_j), (k,)) and `histogram_mi()` (I(z_i; v_j) over
    `bins` equal-width bins, (d, k)). Writes, besides the scores it returns: `per_factor` ({name: (k,) list}), and for
    the report heatmaps `nmi` ((d, k) I/H(v_j)) and `dci_importance` ((d, k))."""

    x: np.ndarray
    codes: np.ndarray
    factors: list[str]
    options: Mapping[str, Any]
    per_factor: dict[str, list[float]] = field(default_factory=dict)
    nmi: np.ndarray | None = None
    dci_importance: np.ndarray | None = None
    _mi: np.ndarray | None = field(default=None, repr=False)

    @functools.cached_property
    def entropy(self) -> np.ndarray:
        """H(v_j) of each factor's codes (nats), (k,)."""
        return entropy_codes(self.codes)

    def histogram_mi(self) -> np.ndarray:
        """I(z_i; v_j) (d, k) with each latent binned into `bins` equal-width bins (disentanglement_lib's histogram
        estimator), computed once per run; the first call also sets `nmi` = I / H(v_j) unless a metric set it."""
        if self._mi is None:
            self._mi = mutual_info_codes(bin_equal_width(self.x, self.options["bins"]), self.codes)
            if self.nmi is None:
                self.nmi = self._mi / self.entropy[None, :]
        return self._mi


MetricFn = Callable[[MetricRun], Mapping[str, float]]


def _mig(run: MetricRun) -> dict[str, float]:
    score, gaps = mig_from_mi(run.histogram_mi(), run.entropy)
    run.per_factor["mig"] = gaps.tolist()
    return {"mig": score}


def _dci(run: MetricRun) -> dict[str, float]:
    o = run.options
    r, _, acc_te = importance_matrix(run.x, run.codes, importance=o["importance"], test_fraction=o["test_fraction"],
                                     seed=o["seed"], threads=o["threads"])
    dis, comp, _, per_factor = dci_from_importance(r)
    run.per_factor["dci_completeness"], run.per_factor["dci_informativeness"] = per_factor.tolist(), acc_te.tolist()
    run.dci_importance = r
    return {"dci_disentanglement": dis, "dci_completeness": comp, "dci_informativeness": float(acc_te.mean())}


def _sap(run: MetricRun) -> dict[str, float]:
    o = run.options
    return {"sap": sap_from_matrix(sap_score_matrix(run.x, run.codes, mode=o["sap_mode"],
                                                    test_fraction=o["test_fraction"], seed=o["seed"]))}


def _modularity(run: MetricRun) -> dict[str, float]:
    return {"modularity": modularity_from_mi(run.histogram_mi())[0]}


def _explicitness(run: MetricRun) -> dict[str, float]:
    x, v = run.x, run.codes
    tr, te = split_indices(len(x), test_fraction=run.options["test_fraction"], seed=run.options["seed"])
    score, per = explicitness_from_split(x[tr], v[tr], x[te], v[te])
    run.per_factor["explicitness"] = per.tolist()
    return {"explicitness": score}


def _batch_vote(fn: Callable[..., dict[str, Any]], name: str) -> MetricFn:
    def compute(run: MetricRun) -> dict[str, float]:
        o = run.options
        return {name: fn(run.x, run.codes, batch_size=o["batch_size"], n_train=o["n_train"], n_eval=o["n_eval"],
                         test_fraction=o["test_fraction"], seed=o["seed"], batch_pool=o["batch_pool"])["eval_accuracy"]}

    return compute


def _infomec(run: MetricRun) -> dict[str, float]:
    o = run.options
    if o["mi_estimator"] == "histogram":
        nmi = run.histogram_mi() / run.entropy[None, :]
    else:
        nmi = normalized_mi(run.x, run.codes, estimator="ksg", seed=o["seed"])
    run.nmi = nmi
    infom, infoc = infom_infoc(nmi, active_latents(run.x))
    infoe_score, per = infoe(run.x, run.codes, split=o["infoe_split"], test_fraction=o["test_fraction"],
                             seed=o["seed"])
    run.per_factor["infoe"] = per.tolist()
    return {"infom": infom, "infoc": infoc, "infoe": infoe_score}


# metric families: name -> compute(run) -> {score name: value}, declared with the public function, the paper, the
# score names (the `metric` column of rows), `default` (run when no metric is named), `inputs` (what it reads from
# the run beyond the latents and factor codes) and `options` (the `disentanglement_details` options it reads)
DISENTANGLEMENT_METRICS: Registry[MetricFn] = Registry("disentanglement metric")
_register = DISENTANGLEMENT_METRICS.register
_register("mig", _mig, function=mig, paper="Chen et al. 2018", scores=("mig",), default=True,
          inputs=("histogram_mi", "entropy"), options=("bins",))
_register("dci", _dci, function=dci, paper="Eastwood & Williams 2018", default=True,
          scores=("dci_disentanglement", "dci_completeness", "dci_informativeness"), inputs=("split",),
          options=("importance", "test_fraction", "seed", "threads"))
_register("sap", _sap, function=sap, paper="Kumar et al. 2018", scores=("sap",), default=True, inputs=("split",),
          options=("sap_mode", "test_fraction", "seed"))
_register("modularity", _modularity, function=modularity, paper="Ridgeway & Mozer 2018", scores=("modularity",),
          default=True, inputs=("histogram_mi",), options=("bins",))
_register("explicitness", _explicitness, function=explicitness, paper="Ridgeway & Mozer 2018",
          scores=("explicitness",), default=True, inputs=("split",), options=("test_fraction", "seed"))
_register("beta_vae", _batch_vote(beta_vae_score, "beta_vae"), function=beta_vae_score,
          aliases=("beta-vae", "betavae"), paper="Higgins et al. 2017", scores=("beta_vae",), default=False,
          inputs=("split",), options=("batch_size", "n_train", "n_eval", "test_fraction", "seed", "batch_pool"))
_register("factor_vae", _batch_vote(factor_vae_score, "factor_vae"), function=factor_vae_score,
          aliases=("factor-vae", "factorvae"), paper="Kim & Mnih 2018", scores=("factor_vae",), default=False,
          inputs=("split",), options=("batch_size", "n_train", "n_eval", "test_fraction", "seed", "batch_pool"))
_register("infomec", _infomec, function=infomec, aliases=("info-mec",), paper="Hsu et al. 2023",
          scores=("infom", "infoe", "infoc"), default=True, inputs=("histogram_mi", "entropy", "split"),
          options=("mi_estimator", "bins", "infoe_split", "test_fraction", "seed"))
# the built-in families (the registry itself is the live list: entries registered later are in it, not in these)
METRICS = tuple(DISENTANGLEMENT_METRICS.names())
DEFAULT_METRICS = tuple(DISENTANGLEMENT_METRICS.names(default=True))
SCORE_NAMES: dict[str, tuple[str, ...]] = {n: DISENTANGLEMENT_METRICS.metadata(n)["scores"] for n in METRICS}


def resolve_metrics(metrics: Sequence[str] | str | None) -> list[str]:
    """Canonical metric-family names (comma-separated string or list; aliases allowed); None means the registered
    defaults (entries declared `default=True`)."""
    if metrics is None:
        return DISENTANGLEMENT_METRICS.names(default=True)
    return DISENTANGLEMENT_METRICS.resolve_many(metrics)


def disentanglement_details(latents: Any, factors: Any, *, metrics: Sequence[str] | str | None = None,
                            bins: int = 20, importance: str = "gbt", sap_mode: str = "r2",
                            mi_estimator: str = "histogram", infoe_split: str = "test", batch_pool: str = "split",
                            test_fraction: float = 1 / 3, batch_size: int = 64, n_train: int = 10000,
                            n_eval: int = 5000, seed: int = 0, threads: int | None = 1) -> dict[str, Any]:
    """{"scores": {name: value}, "factors": names, "per_factor": {name: (k,) list}, "nmi": (d, k) I/H(v_j),
    "dci_importance": (d, k)} for the chosen metric families (default: all but the batch-vote scores).

    Conventions (README "Metric conventions"; the reference's setting in brackets): `sap_mode` "r2"
    [disentanglement_lib, discrete factors: "classifier"], `mi_estimator` for InfoM/InfoC "histogram" [QLAE: "ksg"],
    `infoe_split` "test" [QLAE: "train"], `batch_pool` for β-VAE/FactorVAE "split" [disentanglement_lib: "shared"];
    MIG and modularity always use the `bins`-bin histogram (disentanglement_lib's)."""
    chosen = set(resolve_metrics(metrics))
    DCI_ENGINES.resolve(importance)  # one-line error listing the engines when unknown
    check_choice(sap_mode, SAP_MODES, "SAP mode")
    check_choice(mi_estimator, MI_ESTIMATORS, "MI estimator")
    check_choice(infoe_split, INFOE_SPLITS, "InfoE split")
    check_choice(batch_pool, BATCH_POOLS, "batch pool")
    x = as_latents(latents)
    v, names = encode_factors(factors, n_rows=len(x))
    options = {"bins": bins, "importance": importance, "sap_mode": sap_mode, "mi_estimator": mi_estimator,
               "infoe_split": infoe_split, "batch_pool": batch_pool, "test_fraction": test_fraction,
               "batch_size": batch_size, "n_train": n_train, "n_eval": n_eval, "seed": seed, "threads": threads}
    run = MetricRun(x, v, names, MappingProxyType(options))
    scores: dict[str, float] = {}
    for entry in DISENTANGLEMENT_METRICS.entries():  # registration order, whatever order they were named in
        if entry.name in chosen:
            scores.update(entry.obj(run))
    return {"scores": scores, "factors": names, "per_factor": run.per_factor, "nmi": run.nmi,
            "dci_importance": run.dci_importance}


def disentanglement_scores(latents: Any, factors: Any, *, metrics: Sequence[str] | str | None = None,
                           **options: Any) -> dict[str, float]:
    """{score name: value} for the chosen metric families (MIG, DCI, SAP, modularity, explicitness, β-VAE,
    FactorVAE, InfoMEC); options as in `disentanglement_details`."""
    return disentanglement_details(latents, factors, metrics=metrics, **options)["scores"]


def heatmap_payload(details: dict[str, Any], *, decimals: int = 4) -> dict[str, Any]:
    """JSON payload for the report's factor × latent heatmaps: normalised MI and DCI importances (rows = factors)."""

    def rows(m: np.ndarray | None) -> list[list[float]] | None:
        return None if m is None else np.round(np.asarray(m).T, decimals).tolist()

    return {"factors": list(details["factors"]), "nmi": rows(details["nmi"]),
            "dci_importance": rows(details["dci_importance"]),
            "per_factor": {k: [round(float(a), decimals) for a in v] for k, v in details["per_factor"].items()},
            "scores": {k: float(v) for k, v in details["scores"].items()}}
