"""repscope.probe: what can be read out of a representation, at which layer, with how many labels.

Estimators (scikit-learn compatible, torch-backed): LogisticProbe, NaiveBayesProbe (GNB / LDA), KNNProbe,
SparseProbe, RidgeProbe. Probes are named in the `PROBES` registry (with a declared task: classification or
regression). Protocols returning a `Result` of tidy rows: layer_sweep, few_shot_curve, concept_depth, concat_stores,
retrieval_sweep, sts_sweep.

Names are imported on first use (PEP 562, `repscope.lazy.attach`), so importing the package stays cheap.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repscope.probe.knn import KNNProbe, knn_search
    from repscope.probe.logistic import LogisticProbe
    from repscope.probe.metrics import mean_ci, retrieval_metrics, sts_spearman, wilson_ci
    from repscope.probe.naive_bayes import NaiveBayesProbe
    from repscope.probe.protocols import (
        as_table,
        concat_stores,
        concept_depth,
        few_shot_curve,
        layer_sweep,
        retrieval_sweep,
        sts_sweep,
    )
    from repscope.probe.registry import PROBES, canonical, is_regression, make_probe, probe_names, probe_task, register
    from repscope.probe.ridge import RidgeProbe, spearman
    from repscope.probe.sparse import SparseProbe
else:
    from repscope.lazy import attach

    __getattr__, __dir__ = attach(__name__)

__all__ = [
    "KNNProbe", "LogisticProbe", "NaiveBayesProbe", "PROBES", "RidgeProbe", "SparseProbe", "as_table", "canonical",
    "concat_stores", "concept_depth", "few_shot_curve", "is_regression", "knn_search", "layer_sweep", "make_probe",
    "mean_ci", "probe_names", "probe_task", "register", "retrieval_metrics", "retrieval_sweep", "spearman",
    "sts_spearman", "sts_sweep", "wilson_ci",
]
