"""The probe registry: each probe name maps to an estimator factory `factory(device=..., **params)` with a declared
`task` ("classification" or "regression") and paper.

The task decides how a sweep treats the probe: a regression probe gets a continuous target, a plain (K-fold, not
stratified) split and the metrics r2 and spearman; a classifier gets accuracy. Optional `few_shot` metadata adapts
parameters to tiny training sets (e.g. kNN's k ≤ shots). No other code tests probe names.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from repscope.errors import ConfigError
from repscope.kernels.logistic import LogisticProbe
from repscope.probe.knn import KNNProbe
from repscope.probe.naive_bayes import NaiveBayesProbe
from repscope.probe.ridge import RidgeProbe
from repscope.probe.sparse import SparseProbe
from repscope.registry import Registry

TASKS = ("classification", "regression")

PROBES: Registry[Callable[..., Any]] = Registry("probe")


def register(name: str, factory: Callable[..., Any] | None = None, *, task: str = "classification",
             aliases: tuple[str, ...] | list[str] = (), paper: str = "", **metadata: Any) -> Any:
    """Register an estimator factory (a class or function taking `device=` and parameters) under a probe name.

    Usable as a call or a decorator; `task` is "classification" (metric accuracy) or "regression" (r2, spearman).
    """
    if task not in TASKS:
        raise ConfigError(f"probe '{name}' declares task '{task}'; choose one of {', '.join(TASKS)}")
    return PROBES.register(name, factory, aliases=aliases, task=task, paper=paper, **metadata)


def make_probe(name: str, *, device: str = "auto", **params: Any) -> Any:
    """A fresh estimator for a probe name or alias, with its registered defaults overridden by `params`."""
    return PROBES.get(name)(device=device, **params)


def canonical(name: str) -> str:
    """Canonical probe name (aliases resolved); ConfigError listing the choices when unknown."""
    return PROBES.resolve(name)


def probe_task(name: str) -> str:
    """The declared task of a probe: "classification" or "regression"."""
    return str(PROBES.metadata(name)["task"])


def is_regression(name: str) -> bool:
    """True when the probe is declared a regression probe."""
    return probe_task(name) == "regression"


def few_shot_params(name: str, shots: int, n_features: int) -> dict[str, Any]:
    """Parameters for training on `shots` examples per class with `n_features` features, from the probe's declared
    `few_shot` metadata (a function (shots, n_features) -> params; none declared: the registered defaults)."""
    rule = PROBES.metadata(name).get("few_shot")
    return dict(rule(shots, n_features)) if rule is not None else {}


def probe_names(task: str | None = None) -> list[str]:
    """Registered probe names (in registration order), optionally only those of one task."""
    return PROBES.names() if task is None else PROBES.names(task=task)


register("logistic", LogisticProbe, aliases=("lr", "linear"),
         paper="multinomial logistic regression (linear probes, Alain & Bengio 2016)")
register("nb", partial(NaiveBayesProbe, covariance="diag"), aliases=("naive_bayes", "gnb"),
         paper="Gaussian naive Bayes")
register("lda", partial(NaiveBayesProbe, covariance="shared"), paper="linear discriminant analysis (Fisher 1936)")
register("knn", partial(KNNProbe, n_neighbors=20, metric="cosine"), paper="k-nearest-neighbour vote (cosine, k=20)",
         few_shot=lambda shots, d: {"n_neighbors": min(20, shots)})
register("sparse", partial(SparseProbe, k=8), aliases=("k-sparse",),
         paper='k-sparse probe (Gurnee et al. 2023, "Finding Neurons in a Haystack")',
         few_shot=lambda shots, d: {"k": min(8, d)})


@register("ridge", task="regression", paper="ridge regression with leave-one-out α (Hoerl & Kennard 1970)")
def _ridge(device: str = "auto", **params: Any) -> RidgeProbe:
    return RidgeProbe(device=device, **({"alphas": [0.1, 1.0, 10.0, 100.0, 1000.0]} | params))


__all__ = ["PROBES", "TASKS", "canonical", "few_shot_params", "is_regression", "make_probe", "probe_names",
           "probe_task", "register"]
