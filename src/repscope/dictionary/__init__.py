"""repscope.dictionary: sparse dictionaries (SAEs and transcoders) and discrete codes (vector/product/scalar/binary
quantizers), trained on arrays or streamed from a store, with their quality metrics.

SAE architectures are registered in `ARCHS` and quantizers in `METHODS` (`repscope.registry.Registry`).

Names are imported on first use (PEP 562, `repscope.lazy.attach`), so importing the package stays cheap.
"""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repscope.dictionary.metrics import dead_fraction, fvu, mean_l0, mmcs, mse, perplexity
    from repscope.dictionary.modules import ARCHS, DictionaryModule, build_module
    from repscope.dictionary.quantize import (
        METHODS,
        BinaryQuantizer,
        KMeansQuantizer,
        ProductQuantizer,
        Quantizer,
        ResidualVQ,
        ScalarQuantizer,
        VectorQuantizer,
        make_quantizer,
    )
    from repscope.dictionary.runs import quantize_store, train_sae_on_store
    from repscope.dictionary.sae import SAE, Transcoder
else:
    from repscope.lazy import attach

    __getattr__, __dir__ = attach(__name__)

__all__ = [
    "ARCHS", "BinaryQuantizer", "DictionaryModule", "KMeansQuantizer", "METHODS", "ProductQuantizer", "Quantizer",
    "ResidualVQ", "SAE", "ScalarQuantizer", "Transcoder", "VectorQuantizer", "build_module", "dead_fraction", "fvu",
    "make_quantizer", "mean_l0", "mmcs", "mse", "perplexity", "quantize_store", "train_sae_on_store",
]
