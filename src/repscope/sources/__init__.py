"""repscope.sources: models and datasets turned into batches (model adapters, dataset readers, the template-sentence
generator). Names are imported on first use, so `import repscope.sources` stays cheap."""

from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "load_model": "load", "load_dataset": "load", "load_tokenizer": "load", "reload_dataset": "load",
    "ModelAdapter": "models", "TorchModuleAdapter": "models", "HFAdapter": "models",
    "SentenceTransformerAdapter": "models",
    "Dataset": "datasets", "TextDataset": "datasets", "ArrayDataset": "datasets", "NpzImages": "datasets",
    "load_sklearn": "datasets", "load_sts_pairs": "datasets", "load_tsv_text": "datasets", "read_tsv": "datasets",
    "generate_sentences": "templates", "match_layers": "layers",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(f"repscope.sources.{_EXPORTS[name]}"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'repscope.sources' has no attribute '{name}'")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
