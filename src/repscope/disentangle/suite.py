"""All disentanglement metrics over one latent array: `disentanglement_scores` (numbers) and
`disentanglement_details` (numbers plus the matrices behind them, for the report heatmap)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from repscope.disentangle.dci import IMPORTANCES, dci, dci_from_importance, importance_matrix
from repscope.disentangle.infomec import (
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
from repscope.disentangle.modularity import explicitness, explicitness_from_split, modularity, modularity_from_mi
from repscope.disentangle.sap import SAP_MODES, sap, sap_from_matrix, sap_score_matrix
from repscope.disentangle.scores import BATCH_POOLS, beta_vae_score, factor_vae_score
from repscope.errors import ConfigError, check_choice
from repscope.registry import Registry

# metric families: name -> the public function, with the paper and the score names (the `metric` column of rows)
DISENTANGLEMENT_METRICS: Registry[Any] = Registry("disentanglement metric")
DISENTANGLEMENT_METRICS.register("mig", mig, paper="Chen et al. 2018", scores=("mig",), default=True)
DISENTANGLEMENT_METRICS.register("dci", dci, paper="Eastwood & Williams 2018", default=True,
                                 scores=("dci_disentanglement", "dci_completeness", "dci_informativeness"))
DISENTANGLEMENT_METRICS.register("sap", sap, paper="Kumar et al. 2018", scores=("sap",), default=True)
DISENTANGLEMENT_METRICS.register("modularity", modularity, paper="Ridgeway & Mozer 2018", scores=("modularity",),
                                 default=True)
DISENTANGLEMENT_METRICS.register("explicitness", explicitness, paper="Ridgeway & Mozer 2018",
                                 scores=("explicitness",), default=True)
DISENTANGLEMENT_METRICS.register("beta_vae", beta_vae_score, aliases=("beta-vae", "betavae"),
                                 paper="Higgins et al. 2017", scores=("beta_vae",), default=False)
DISENTANGLEMENT_METRICS.register("factor_vae", factor_vae_score, aliases=("factor-vae", "factorvae"),
                                 paper="Kim & Mnih 2018", scores=("factor_vae",), default=False)
DISENTANGLEMENT_METRICS.register("infomec", infomec, aliases=("info-mec",), paper="Hsu et al. 2023",
                                 scores=("infom", "infoe", "infoc"), default=True)
METRICS = tuple(DISENTANGLEMENT_METRICS.names())
DEFAULT_METRICS = tuple(DISENTANGLEMENT_METRICS.names(default=True))
SCORE_NAMES: dict[str, tuple[str, ...]] = {n: DISENTANGLEMENT_METRICS.metadata(n)["scores"] for n in METRICS}


def resolve_metrics(metrics: Sequence[str] | str | None) -> list[str]:
    """Canonical metric-family names (comma-separated string or list; aliases allowed); None means the defaults."""
    if metrics is None:
        return list(DEFAULT_METRICS)
    if isinstance(metrics, str):
        metrics = [s for s in metrics.split(",")]
    names = [DISENTANGLEMENT_METRICS.resolve(m.strip()) for m in metrics if m.strip()]
    if not names:
        raise ConfigError(f"no disentanglement metric given; choose from {', '.join(METRICS)}")
    return list(dict.fromkeys(names))


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
    chosen = resolve_metrics(metrics)
    check_choice(importance, IMPORTANCES, "DCI importance")
    check_choice(sap_mode, SAP_MODES, "SAP mode")
    check_choice(mi_estimator, MI_ESTIMATORS, "MI estimator")
    check_choice(infoe_split, INFOE_SPLITS, "InfoE split")
    check_choice(batch_pool, BATCH_POOLS, "batch pool")
    x = as_latents(latents)
    v, names = encode_factors(factors, n_rows=len(x))
    h = entropy_codes(v)
    out: dict[str, Any] = {"scores": {}, "factors": names, "per_factor": {}, "nmi": None, "dci_importance": None}
    s, pf = out["scores"], out["per_factor"]
    mi = None
    if {"mig", "modularity"} & set(chosen) or ("infomec" in chosen and mi_estimator == "histogram"):
        mi = mutual_info_codes(bin_equal_width(x, bins), v)
        out["nmi"] = mi / h[None, :]
    if "mig" in chosen:
        s["mig"], gaps = mig_from_mi(mi, h)
        pf["mig"] = gaps.tolist()
    if "dci" in chosen:
        r, _, acc_te = importance_matrix(x, v, importance=importance, test_fraction=test_fraction, seed=seed,
                                         threads=threads)
        dis, comp, _, per_factor = dci_from_importance(r)
        s.update(dci_disentanglement=dis, dci_completeness=comp, dci_informativeness=float(acc_te.mean()))
        pf["dci_completeness"], pf["dci_informativeness"] = per_factor.tolist(), acc_te.tolist()
        out["dci_importance"] = r
    if "sap" in chosen:
        s["sap"] = sap_from_matrix(sap_score_matrix(x, v, mode=sap_mode, test_fraction=test_fraction, seed=seed))
    if "modularity" in chosen:
        s["modularity"] = modularity_from_mi(mi)[0]
    if "explicitness" in chosen:
        tr, te = split_indices(len(x), test_fraction=test_fraction, seed=seed)
        s["explicitness"], per = explicitness_from_split(x[tr], v[tr], x[te], v[te])
        pf["explicitness"] = per.tolist()
    if "beta_vae" in chosen:
        s["beta_vae"] = beta_vae_score(x, v, batch_size=batch_size, n_train=n_train, n_eval=n_eval,
                                       test_fraction=test_fraction, seed=seed, batch_pool=batch_pool)["eval_accuracy"]
    if "factor_vae" in chosen:
        s["factor_vae"] = factor_vae_score(x, v, batch_size=batch_size, n_train=n_train, n_eval=n_eval,
                                           test_fraction=test_fraction, seed=seed,
                                           batch_pool=batch_pool)["eval_accuracy"]
    if "infomec" in chosen:
        nmi = out["nmi"] if mi_estimator == "histogram" else normalized_mi(x, v, estimator="ksg", seed=seed)
        out["nmi"] = nmi
        s["infom"], s["infoc"] = infom_infoc(nmi, active_latents(x))
        s["infoe"], per = infoe(x, v, split=infoe_split, test_fraction=test_fraction, seed=seed)
        pf["infoe"] = per.tolist()
    return out


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
