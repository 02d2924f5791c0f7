"""repscope.sources: models and datasets turned into batches (model adapters, dataset readers, the template-sentence
generator). Names are imported on first use (`repscope.lazy`), so `import repscope.sources` stays cheap."""

from repscope.lazy import lazy_package

__all__ = lazy_package(__name__, {
    "load_model": "load", "load_dataset": "load", "load_tokenizer": "load", "reload_dataset": "load",
    "ModelAdapter": "models", "TorchModuleAdapter": "models", "HFAdapter": "models",
    "SentenceTransformerAdapter": "models",
    "Dataset": "datasets", "TextDataset": "datasets", "ArrayDataset": "datasets", "NpzImages": "datasets",
    "load_sklearn": "datasets", "load_sts_pairs": "datasets", "load_tsv_text": "datasets", "read_tsv": "datasets",
    "generate_sentences": "templates", "match_layers": "layers",
})
