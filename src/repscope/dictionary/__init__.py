"""repscope.dictionary: sparse dictionaries (SAEs and transcoders) and discrete codes (vector/product/scalar/binary
quantizers), trained on arrays or streamed from a store, with their quality metrics.

SAE architectures are registered in `ARCHS` and quantizers in `METHODS` (`repscope.registry.Registry`).

Names are imported on first use (`repscope.lazy`), so importing the package stays cheap.
"""

from repscope.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "ARCHS": "modules", "BinaryQuantizer": "quantize", "DictionaryModule": "modules", "KMeansQuantizer": "quantize",
    "METHODS": "quantize", "ProductQuantizer": "quantize", "Quantizer": "quantize", "ResidualVQ": "quantize",
    "SAE": "sae", "ScalarQuantizer": "quantize", "Transcoder": "sae", "VectorQuantizer": "quantize",
    "build_module": "modules", "dead_fraction": "metrics", "fvu": "metrics", "make_quantizer": "quantize",
    "mean_l0": "metrics", "mmcs": "metrics", "mse": "metrics", "perplexity": "metrics", "quantize_store": "runs",
    "train_sae_on_store": "runs",
})
