"""repscope.compress: how small an embedding can get and what compression costs.

- Truncation (MRL: Kusupati et al. 2022; 2DMSE: Li et al. 2024): `truncate_store`, `truncation_grid`,
  `truncation_summary`, `PCABasis`, `prefix_dims` — scores of the first m raw coordinates or principal components
  over a layer × dim grid, and the smallest (layer, dim) keeping ≥ 99% / ≥ 95% of the best full-size score.
- Matryoshka adapter (Yoon et al. 2024): `MatryoshkaAdapter`, `train_adapter`, `save_adapter`, `load_adapter`,
  `adapter_store` (curves before vs after), `apply_adapter` (a new store linked to its source).
- Embedding quantization: `quantize` (float16, int8 calibrated per dimension, packed binary), `hamming_topk`
  (exact packed-binary Hamming top-k), `rescore` (float32 query × int8/binary document),
  `quantize_embeddings_store` (all of it per layer of a store; not `repscope.dictionary.quantize_store`, which
  fits a learned discrete code).

Names are imported on first use (PEP 562, `repscope.lazy.attach`), so importing the package stays cheap.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repscope.compress.adapter import MatryoshkaAdapter, load_adapter, matryoshka_loss, save_adapter, train_adapter
    from repscope.compress.quantize_embeddings import (
        SCHEMES,
        Int8Ranges,
        Quantized,
        bytes_per_vector,
        pack_bits,
        quantize,
        unpack_bits,
    )
    from repscope.compress.quantized_eval import quantization_scores
    from repscope.compress.search import hamming_topk, rescore
    from repscope.compress.store import adapter_store, apply_adapter, quantize_embeddings_store
    from repscope.compress.truncate import PCABasis, prefix_dims, truncate_store, truncation_grid, truncation_summary
else:
    from repscope.lazy import attach

    __getattr__, __dir__ = attach(__name__)

__all__ = [
    "Int8Ranges", "MatryoshkaAdapter", "PCABasis", "Quantized", "SCHEMES", "adapter_store", "apply_adapter",
    "bytes_per_vector", "hamming_topk", "load_adapter", "matryoshka_loss", "pack_bits", "prefix_dims",
    "quantization_scores", "quantize", "quantize_embeddings_store", "rescore", "save_adapter", "train_adapter",
    "truncate_store", "truncation_grid", "truncation_summary", "unpack_bits",
]
