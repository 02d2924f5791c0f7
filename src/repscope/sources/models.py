"""Model adapters: one interface over any torch.nn.Module, Hugging Face transformers and sentence-transformers.

An adapter exposes `layer_names()`, the input `modality` it takes, and `run(items, layers)`, which returns the raw
outputs of the chosen layers for a batch plus the attention mask (or None). Pooling happens in `repscope.extract`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch
from torch import nn

from repscope.device import resolve_device
from repscope.errors import ConfigError, DataError
from repscope.selection import match_layers


def _first_tensor(out: Any) -> torch.Tensor:
    if isinstance(out, torch.Tensor):
        return out
    if isinstance(out, (tuple, list)) and out and isinstance(out[0], torch.Tensor):
        return out[0]
    if hasattr(out, "last_hidden_state"):
        return out.last_hidden_state
    raise DataError(f"layer output of type {type(out).__name__} holds no tensor; pick another layer")


def file_hash(path: str | Path) -> str:
    """sha256 (16 hex) of a file, or of all weight files in a folder."""
    p = Path(path)
    files = [p] if p.is_file() else sorted(
        f for f in p.rglob("*") if f.suffix in {".safetensors", ".bin", ".json", ".txt"} and f.is_file())
    h = hashlib.sha256()
    for f in files:
        with open(f, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
    return h.hexdigest()[:16]


def state_hash(model: nn.Module) -> str:
    """sha256 (16 hex) over a module's state-dict names and tensor bytes, for provenance and resume checks."""
    h = hashlib.sha256()
    for k, v in sorted(model.state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class ModelAdapter:
    """Base adapter. Subclasses set `name`, `weight_hash`, `modality` and implement `layer_names`/`run`."""

    name: str = "model"
    weight_hash: str = ""
    modality: str = "tensor"
    spec: str | None = None  # a `load_model` spec that rebuilds this model (recorded in store provenance)

    def layer_names(self) -> list[str]:
        """Selectable layers, in model order."""
        raise NotImplementedError

    def select(self, patterns: Sequence[str] | str | None) -> list[str]:
        """Resolve names/globs against this model's layers (unknown names list the available ones)."""
        return match_layers(self.layer_names(), patterns, where=f"model '{self.name}'")

    def check_items(self, items: Any, dataset_name: str = "dataset") -> None:
        """Refuse data of the wrong modality with a one-line error."""
        is_text = isinstance(items, (list, tuple)) and (not items or isinstance(items[0], str))
        if self.modality == "text" and not is_text:
            raise DataError(f"model '{self.name}' takes text but '{dataset_name}' holds arrays/images; "
                            "give a TSV/text dataset or a vision/tensor model")
        if self.modality != "text" and is_text:
            raise DataError(f"model '{self.name}' takes {self.modality} input but '{dataset_name}' holds text; "
                            "give an image/array dataset or a text model")

    def example_items(self) -> Any:
        """A tiny batch of valid inputs (for `repscope layers`)."""
        raise NotImplementedError

    def run(self, items: Any, layers: list[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor | None]:
        """Forward one batch; return {layer: raw output} and the attention mask (B, T) or None."""
        raise NotImplementedError


class TorchModuleAdapter(ModelAdapter):
    """Any nn.Module; layers are module paths from `named_modules()` (globs like `layer2.*` allowed)."""

    def __init__(self, module: nn.Module, transform: Callable[[Any], torch.Tensor] | None = None,
                 name: str | None = None, modality: str = "tensor", device: str = "auto",
                 example: torch.Tensor | None = None):
        self.device = resolve_device(device)
        self.module = module.to(self.device).eval()
        self.transform = transform
        self.name = name or getattr(module, "repscope_name", type(module).__name__)
        self.weight_hash = getattr(module, "repscope_hash", None) or state_hash(module)
        self.modality = modality
        self._example = example
        self._modules = dict(module.named_modules())
        self._modules.pop("", None)

    def layer_names(self) -> list[str]:
        """All submodule paths in definition order."""
        return list(self._modules)

    def example_items(self) -> Any:
        """The example batch given at construction, or a guess from the first Linear/Conv layer."""
        if self._example is not None:
            return self._example
        for m in self.module.modules():
            if isinstance(m, nn.Linear):
                return torch.zeros(2, m.in_features)
            if isinstance(m, nn.Conv2d):
                return torch.zeros(2, 32, 32, m.in_channels, dtype=torch.uint8) if self.transform else \
                    torch.zeros(2, m.in_channels, 32, 32)
        raise ConfigError(f"cannot guess an input for '{self.name}'; pass example= to TorchModuleAdapter")

    @contextmanager
    def capture(self, layers: list[str]):
        """Register forward hooks on `layers` for the duration of the block; yields the dict they fill."""
        store: dict[str, torch.Tensor] = {}
        handles = []
        for name in layers:
            def hook(_m, _inp, out, name=name):
                store[name] = _first_tensor(out)
            handles.append(self._modules[name].register_forward_hook(hook))
        try:
            yield store
        finally:
            for h in handles:
                h.remove()

    def inputs(self, items: Any) -> torch.Tensor:
        """Apply the transform (if any) and move to the device."""
        x = self.transform(items) if self.transform is not None else torch.as_tensor(items)
        if not self.transform and not torch.is_floating_point(x):
            x = x.float()
        return x.to(self.device)

    def run(self, items, layers):
        """Forward with hooks on `layers`; no mask."""
        with self.capture(layers) as store, torch.inference_mode():
            self.module(self.inputs(items))
        return dict(store), None


class HFAdapter(ModelAdapter):
    """A Hugging Face transformers encoder from a local folder; layers are its hidden states.

    Names: `embeddings`, then `encoder.layer.0` … `encoder.layer.{L-1}` (hidden state i+1 is the output of block i).
    """

    modality = "text"

    def __init__(self, path: str | Path, device: str = "auto", max_length: int = 128, name: str | None = None):
        from transformers import AutoModel, AutoTokenizer

        path = Path(path)
        if not (path / "config.json").is_file():
            raise ConfigError(f"'{path}' is not a transformers model folder (no config.json); give a local model path")
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.device = resolve_device(device)
        self.tokenizer = AutoTokenizer.from_pretrained(str(path), local_files_only=True)
        self.model = AutoModel.from_pretrained(str(path), local_files_only=True).to(self.device).eval()
        self.max_length = max_length
        self.name = name or path.name
        self.weight_hash = file_hash(path)
        n = self.model.config.num_hidden_layers
        self._names = ["embeddings"] + [f"encoder.layer.{i}" for i in range(n)]

    def layer_names(self) -> list[str]:
        """embeddings, encoder.layer.0 … encoder.layer.{L-1}."""
        return list(self._names)

    def example_items(self) -> list[str]:
        """Two short sentences."""
        return ["a short example sentence.", "another one."]

    def tokenize(self, items: list[str]) -> dict[str, torch.Tensor]:
        """Pad/truncate a batch to `max_length` tokens."""
        enc = self.tokenizer(list(items), padding=True, truncation=True, max_length=self.max_length,
                             return_tensors="pt")
        return {k: v.to(self.device) for k, v in enc.items()}

    def run(self, items, layers):
        """All hidden states of the batch; returns the chosen ones and the attention mask."""
        enc = self.tokenize(items)
        with torch.inference_mode():
            out = self.model(**enc, output_hidden_states=True)
        hs = dict(zip(self._names, out.hidden_states, strict=True))
        return {k: hs[k] for k in layers}, enc["attention_mask"]


class SentenceTransformerAdapter(HFAdapter):
    """A sentence-transformers model: the transformer's hidden states plus `sentence_embedding` (its own pooling)."""

    def __init__(self, path: str | Path, device: str = "auto", max_length: int = 128, name: str | None = None):
        from sentence_transformers import SentenceTransformer

        path = Path(path)
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        self.device = resolve_device(device)
        self.st = SentenceTransformer(str(path), device=str(self.device), local_files_only=True)
        self.st.eval()
        self.model = self.st[0].auto_model
        self.tokenizer = self.st.tokenizer
        self.max_length = min(max_length, self.st.max_seq_length or max_length)
        self.name = name or path.name
        self.weight_hash = file_hash(path)
        n = self.model.config.num_hidden_layers
        self._names = ["embeddings"] + [f"encoder.layer.{i}" for i in range(n)] + ["sentence_embedding"]

    def run(self, items, layers):
        """Hidden states from the transformer, then the rest of the sentence-transformers pipeline on the last one."""
        enc = self.tokenize(items)
        with torch.inference_mode():
            out = self.model(**enc, output_hidden_states=True)
            hs = dict(zip(self._names[:-1], out.hidden_states, strict=False))
            if "sentence_embedding" in layers:
                feats = {**enc, "token_embeddings": out.last_hidden_state}
                for module in list(self.st)[1:]:
                    feats = module(feats)
                hs["sentence_embedding"] = feats["sentence_embedding"]
        return {k: hs[k] for k in layers}, enc["attention_mask"]
