"""repscope.compress: how small an embedding can get and what compression costs.

- Truncation (MRL: Kusupati et al. 2022; 2DMSE: Li et al. 2024): `truncate_store`, `truncation_grid`,
  `truncation_summary`, `PCABasis`, `prefix_dims` — scores of the first m raw coordinates or principal components
  over a layer × dim grid, and the smallest (layer, dim) keeping ≥ 99% / ≥ 95% of the best full-size score.
- Matryoshka adapter (Yoon et al. 2024): `MatryoshkaAdapter`, `train_adapter`, `save_adapter`, `load_adapter`,
  `adapter_store` (curves before vs after), `apply_adapter` (a new store linked to its source).
- Embedding quantization: `quantize` (float16, int8 calibrated per dimension, packed binary), `hamming_topk`
  (exact packed-binary Hamming top-k), `rescore` (float32 query × int8/binary document), `quantize_store`.

Names are imported on first use (`repscope.lazy`), so importing the package stays cheap.
"""

from repscope.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "Int8Ranges": "quantize_embeddings", "MatryoshkaAdapter": "adapter", "PCABasis": "truncate",
    "Quantized": "quantize_embeddings", "SCHEMES": "quantize_embeddings", "adapter_store": "store",
    "apply_adapter": "store", "bytes_per_vector": "quantize_embeddings", "hamming_topk": "search",
    "load_adapter": "adapter", "matryoshka_loss": "adapter", "pack_bits": "quantize_embeddings",
    "prefix_dims": "truncate", "quantization_scores": "quantized_eval", "quantize": "quantize_embeddings",
    "quantize_store": "store", "rescore": "search", "save_adapter": "adapter", "train_adapter": "adapter",
    "truncate_store": "truncate", "truncation_grid": "truncate", "truncation_summary": "truncate",
    "unpack_bits": "quantize_embeddings",
})
