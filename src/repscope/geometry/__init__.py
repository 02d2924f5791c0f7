"""repscope.geometry: the shape of one representation — intrinsic dimension, anisotropy, spectrum and rank, coding
rate, cluster quality, uniformity/alignment, information plane — plus the `geometry_profile` of a store.

Every measure is registered in `MEASURES` (a `repscope.registry.Registry` of `GeometryMeasure`) with its declared
invariances; `default=True` entries run when no measure is named. `coding_rate`, `uniformity` and `spectrum` name
the submodules (e.g. `repscope.geometry.uniformity.uniformity`), so they are not re-exported as functions here.

Names are imported on first use (`repscope.lazy`), so importing the package stays cheap.
"""

from repscope.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "GeometryMeasure": "measures", "MEASURES": "measures", "alignment": "uniformity",
    "calinski_harabasz_score": "clusters", "cluster_scores": "clusters", "compute": "measures",
    "covariance_eigenvalues": "spectrum", "davies_bouldin_score": "clusters", "default_measures": "measures",
    "dunn_index": "clusters", "effective_rank": "spectrum", "geometry_profile": "profile",
    "get_measures": "measures", "information_plane": "infoplane", "knn_distances": "knn", "knn_query": "knn",
    "mean_cosine": "anisotropy", "mean_cosine_standardized": "anisotropy", "mle_dimension": "intrinsic",
    "numerical_rank": "spectrum", "participation_ratio": "intrinsic", "pca_dimension": "intrinsic",
    "powerlaw_alpha": "spectrum", "rate_reduction": "coding_rate", "register": "measures",
    "rogue_dimensions": "anisotropy", "silhouette_score": "clusters", "singular_values": "spectrum",
    "stable_rank": "spectrum", "twonn_dimension": "intrinsic", "xie_beni_index": "clusters",
})
