"""repscope.probe: what can be read out of a representation, at which layer, with how many labels.

Estimators (scikit-learn compatible, torch-backed): LogisticProbe, NaiveBayesProbe (GNB / LDA), KNNProbe,
SparseProbe, RidgeProbe. Protocols writing tidy rows to the results DB: layer_sweep, few_shot_curve, concept_depth,
concat_stores, retrieval_sweep, sts_sweep.
"""

from repscope.probe.knn import KNNProbe, knn_search
from repscope.probe.logistic import LogisticProbe
from repscope.probe.metrics import mean_ci, retrieval_metrics, sts_spearman, wilson_ci
from repscope.probe.naive_bayes import NaiveBayesProbe
from repscope.probe.protocols import (
    PROBE_NAMES,
    concat_stores,
    concept_depth,
    few_shot_curve,
    layer_sweep,
    make_probe,
    retrieval_sweep,
    sts_sweep,
)
from repscope.probe.ridge import RidgeProbe, spearman
from repscope.probe.sparse import SparseProbe

__all__ = [
    "KNNProbe", "LogisticProbe", "NaiveBayesProbe", "RidgeProbe", "SparseProbe", "knn_search", "mean_ci",
    "retrieval_metrics", "sts_spearman", "wilson_ci", "spearman", "PROBE_NAMES", "make_probe", "layer_sweep",
    "few_shot_curve", "concept_depth", "concat_stores", "retrieval_sweep", "sts_sweep",
]
