"""repscope.similarity: CKA family, CCA family, shape metrics, RSA, neighbourhood measures (each with declared
properties in the `MEASURES` registry), layer × layer matrices, neuron matching, relative representations and
linear stitching.

Names are imported on first use (PEP 562, `repscope.lazy.attach`), so importing the package stays cheap.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repscope.similarity.cca import mean_cca, pwcca, svcca
    from repscope.similarity.cka import debiased_cka, linear_cka, rbf_cka
    from repscope.similarity.matrix import compare_stores, similarity_matrices
    from repscope.similarity.neighbors import cknna, knn_jaccard, mutual_knn
    from repscope.similarity.neurons import lasso_one_to_many, match_neurons, neuron_correlations
    from repscope.similarity.registry import (
        MEASURES,
        REGISTRY,
        SimilarityMeasure,
        function_measure,
        get_measure,
        measures,
        register,
    )
    from repscope.similarity.relative import RelativeProjector, relative_representation, zero_shot_stitching
    from repscope.similarity.rsa_score import rsa
    from repscope.similarity.shape import angular_shape_metric, procrustes_distance
    from repscope.similarity.stitching import LinearStitch, stitching_score
    from repscope.similarity.streaming import MinibatchCKA, StreamingLinearCKA, streaming_cka_matrix
else:
    from repscope.lazy import attach

    __getattr__, __dir__ = attach(__name__)

__all__ = [
    "LinearStitch", "MEASURES", "MinibatchCKA", "REGISTRY", "RelativeProjector", "SimilarityMeasure",
    "StreamingLinearCKA", "angular_shape_metric", "cknna", "compare_stores", "debiased_cka", "function_measure",
    "get_measure", "knn_jaccard", "lasso_one_to_many", "linear_cka", "match_neurons", "mean_cca", "measures",
    "mutual_knn", "neuron_correlations", "procrustes_distance", "pwcca", "rbf_cka", "register",
    "relative_representation", "rsa", "similarity_matrices", "stitching_score", "streaming_cka_matrix", "svcca",
    "zero_shot_stitching",
]
