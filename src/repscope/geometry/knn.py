"""The exact k-NN engine's old address, kept so user code keeps working: it lives in `repscope.kernels.knn`.

Plugins import it from `repscope.kernels.knn` (the import contract in pyproject.toml forbids one plugin importing
another); this module only re-exports the public names.
"""

from repscope.kernels.knn import knn_distances, knn_query, knn_search, pairwise_sq_distances, pick_chunk_rows

__all__ = ["knn_distances", "knn_query", "knn_search", "pairwise_sq_distances", "pick_chunk_rows"]
