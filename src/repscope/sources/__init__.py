"""repscope.sources: models and datasets turned into batches (model adapters, dataset readers, the template-sentence
generator). Names are imported on first use (PEP 562,
`repscope.lazy.attach`), so `import repscope.sources` stays cheap."""

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from repscope.sources.datasets import (
        ArrayDataset,
        Dataset,
        NpzImages,
        TextDataset,
        load_sklearn,
        load_sts_pairs,
        load_tsv_text,
        read_tsv,
    )
    from repscope.sources.layers import match_layers
    from repscope.sources.load import load_dataset, load_model, load_tokenizer, reload_dataset
    from repscope.sources.models import HFAdapter, ModelAdapter, SentenceTransformerAdapter, TorchModuleAdapter
    from repscope.sources.templates import generate_sentences
else:
    from repscope.lazy import attach

    __getattr__, __dir__ = attach(__name__)

__all__ = [
    "ArrayDataset", "Dataset", "HFAdapter", "ModelAdapter", "NpzImages", "SentenceTransformerAdapter", "TextDataset",
    "TorchModuleAdapter", "generate_sentences", "load_dataset", "load_model", "load_sklearn", "load_sts_pairs",
    "load_tokenizer", "load_tsv_text", "match_layers", "read_tsv", "reload_dataset",
]
