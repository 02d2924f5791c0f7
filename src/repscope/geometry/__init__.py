"""repscope.geometry: the shape of one representation — intrinsic dimension, anisotropy, spectrum and rank, coding
rate, cluster quality, uniformity/alignment, information plane — plus the `geometry_profile` of a store.

Every measure is registered in `MEASURES` (a `repscope.registry.Registry` of `GeometryMeasure`) with its declared
invariances; `default=True` entries run when no measure is named. `coding_rate`, `uniformity` and `spectrum` name
the submodules (e.g. `repscope.geometry.uniformity.uniformity`), so they are not re-exported as functions here.

Names are imported on first use (PEP 562, `repscope.lazy.attach`), so importing the package stays cheap.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repscope.geometry.anisotropy import mean_cosine, mean_cosine_standardized, rogue_dimensions
    from repscope.geometry.clusters import (
        calinski_harabasz_score,
        cluster_scores,
        davies_bouldin_score,
        dunn_index,
        silhouette_score,
        xie_beni_index,
    )
    from repscope.geometry.coding_rate import rate_reduction
    from repscope.geometry.infoplane import information_plane
    from repscope.geometry.intrinsic import mle_dimension, participation_ratio, pca_dimension, twonn_dimension
    from repscope.geometry.knn import knn_distances, knn_query
    from repscope.geometry.measures import MEASURES, GeometryMeasure, compute, default_measures, get_measures, register
    from repscope.geometry.profile import geometry_profile
    from repscope.geometry.spectrum import (
        covariance_eigenvalues,
        effective_rank,
        numerical_rank,
        powerlaw_alpha,
        singular_values,
        stable_rank,
    )
    from repscope.geometry.uniformity import alignment
else:
    from repscope.lazy import attach

    __getattr__, __dir__ = attach(__name__)

__all__ = [
    "GeometryMeasure", "MEASURES", "alignment", "calinski_harabasz_score", "cluster_scores", "compute",
    "covariance_eigenvalues", "davies_bouldin_score", "default_measures", "dunn_index", "effective_rank",
    "geometry_profile", "get_measures", "information_plane", "knn_distances", "knn_query", "mean_cosine",
    "mean_cosine_standardized", "mle_dimension", "numerical_rank", "participation_ratio", "pca_dimension",
    "powerlaw_alpha", "rate_reduction", "register", "rogue_dimensions", "silhouette_score", "singular_values",
    "stable_rank", "twonn_dimension", "xie_beni_index",
]
