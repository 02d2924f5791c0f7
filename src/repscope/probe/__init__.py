"""repscope.probe: what can be read out of a representation, at which layer, with how many labels.

Estimators (scikit-learn compatible, torch-backed): LogisticProbe, NaiveBayesProbe (GNB / LDA), KNNProbe,
SparseProbe, RidgeProbe. Probes are named in the `PROBES` registry (with a declared task: classification or
regression). Protocols returning a `Result` of tidy rows: layer_sweep, few_shot_curve, concept_depth, concat_stores,
retrieval_sweep, sts_sweep.

Names are imported on first use (`repscope.lazy`), so importing the package stays cheap.
"""

from repscope.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "KNNProbe": "knn", "LogisticProbe": "logistic", "NaiveBayesProbe": "naive_bayes", "PROBES": "registry",
    "RidgeProbe": "ridge", "SparseProbe": "sparse", "as_table": "protocols", "canonical": "registry",
    "concat_stores": "protocols", "concept_depth": "protocols", "few_shot_curve": "protocols",
    "is_regression": "registry", "knn_search": "knn", "layer_sweep": "protocols", "make_probe": "registry",
    "mean_ci": "metrics", "probe_names": "registry", "probe_task": "registry", "register": "registry",
    "retrieval_metrics": "metrics", "retrieval_sweep": "protocols", "spearman": "ridge", "sts_spearman": "metrics",
    "sts_sweep": "protocols", "wilson_ci": "metrics",
})
