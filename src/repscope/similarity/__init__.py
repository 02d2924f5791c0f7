"""repscope.similarity: CKA family, CCA family, shape metrics, RSA, neighbourhood measures (each with declared
properties in the `MEASURES` registry), layer × layer matrices, neuron matching, relative representations and
linear stitching.

Names are imported on first use (`repscope.lazy`), so importing the package stays cheap.
"""

from repscope.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "LinearStitch": "stitching", "MEASURES": "registry", "MinibatchCKA": "streaming", "REGISTRY": "registry",
    "RelativeProjector": "relative", "SimilarityMeasure": "registry", "StreamingLinearCKA": "streaming",
    "angular_shape_metric": "shape", "cknna": "neighbors", "compare_stores": "matrix", "debiased_cka": "cka",
    "function_measure": "registry", "get_measure": "registry", "knn_jaccard": "neighbors",
    "lasso_one_to_many": "neurons", "linear_cka": "cka", "match_neurons": "neurons", "mean_cca": "cca",
    "measures": "registry", "mutual_knn": "neighbors", "neuron_correlations": "neurons",
    "procrustes_distance": "shape", "pwcca": "cca", "rbf_cka": "cka", "register": "registry",
    "relative_representation": "relative", "rsa": "rsa", "similarity_matrices": "matrix",
    "stitching_score": "stitching", "streaming_cka_matrix": "streaming", "svcca": "cca",
    "zero_shot_stitching": "relative",
})
