"""Turn CLI/study strings into model adapters and datasets.

Model specs: `minilm`, `minilm-st` (sentence-transformers pipeline), `resnet20|32|44|56`, `digits-mlp:SEED`,
a folder with a transformers model (`config.json`) or a sentence-transformers model (`modules.json`),
a digits-MLP `.safetensors` file saved by `repscope zoo train-mlp`, a learner `.safetensors` checkpoint saved by
`repscope learn train`.

Dataset specs: `templates[:N]`, `shapes[:N]` (procedural factor images), `digits|iris|wine|breast_cancer`,
a `.tsv` file (STS pairs when it has sentence1/2
columns), a `.npz` image file, or `shared:REL/PATH` under ../shared/data. A `@N` suffix keeps the first N rows.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from repscope.errors import ConfigError, DataError, RepscopeError, StoreError
from repscope.paths import shared_dir
from repscope.sources.datasets import (
    SKLEARN_SETS,
    Dataset,
    NpzImages,
    content_hash,
    load_sklearn,
    load_sts_pairs,
    load_tsv_text,
    tsv_header,
)
from repscope.sources.models import ModelAdapter, TorchModuleAdapter
from repscope.sources.specs import DATA_HELP, MODEL_HELP  # re-exported for callers

# Checkpoints written by analysis plugins that load as model sources: the `format` field of a .safetensors file's
# metadata → "module:attr" of a `(path, device=...) -> ModelAdapter` factory, imported only when such a file is
# loaded. The plugin owns the loader; sources only names it, so the sources layer never imports a plugin (the import
# contract in pyproject.toml). A package adds its own format here.
CHECKPOINT_SOURCES: dict[str, str] = {"repscope-learner": "repscope.learn.source:learner_adapter"}


def _checkpoint_source(path: Path) -> Any | None:
    """The factory registered for the checkpoint format of `path` (its safetensors metadata), or None."""
    import importlib

    from repscope.tensorfile import safetensors_metadata

    ref = CHECKPOINT_SOURCES.get(str((safetensors_metadata(path) or {}).get("format")))
    if ref is None:
        return None
    module, _, attr = ref.partition(":")
    return getattr(importlib.import_module(module), attr)


def load_model(spec: str, device: str = "auto", max_length: int = 128) -> ModelAdapter:
    """Build a model adapter from a spec string (see module docstring); `.spec` records it (files made absolute)."""
    m = _load_model(spec, device, max_length)
    p = Path(spec.strip())
    m.spec = str(p.resolve()) if (p.is_dir() or p.suffix == ".safetensors") and p.exists() else spec.strip()
    return m


def _load_model(spec: str, device: str, max_length: int) -> ModelAdapter:
    s = spec.strip()
    if s in ("minilm", "minilm-st"):
        from repscope.sources.zoo.minilm import load_minilm

        return load_minilm(device, sentence_transformers=s == "minilm-st", max_length=max_length)
    if s.startswith("resnet") and s[6:].isdigit():
        from repscope.sources.zoo.resnet_cifar import cifar_transform, load_cifar_resnet

        return TorchModuleAdapter(load_cifar_resnet(int(s[6:])), transform=cifar_transform, modality="image",
                                  device=device)
    if s == "digits-mlp" or s.startswith("digits-mlp:"):
        from repscope.sources.zoo.mlp import train_digits_mlp

        seed = _spec_int(s, "seed", "digits-mlp:3", minimum=0) if ":" in s else 0
        return TorchModuleAdapter(train_digits_mlp(seed), device=device)
    p = Path(s)
    if p.is_dir() and (p / "modules.json").is_file():
        from repscope.sources.models import SentenceTransformerAdapter

        return SentenceTransformerAdapter(p, device=device, max_length=max_length)
    if p.is_dir() and (p / "config.json").is_file():
        from repscope.sources.models import HFAdapter

        return HFAdapter(p, device=device, max_length=max_length)
    if p.suffix == ".safetensors" and p.is_file():
        from repscope.sources.zoo.mlp import load_mlp

        source = _checkpoint_source(p)  # e.g. a checkpoint of `repscope learn train` (its metadata names the format)
        if source is not None:
            return source(p, device=device)

        try:
            mlp = load_mlp(p)
        except StoreError:  # a damaged safetensors file: named as such (`tensorfile.read_tensors`)
            raise
        except Exception as err:  # torch raises for wrong keys/shapes
            first = (str(err).strip().splitlines() or [type(err).__name__])[0][:160]
            raise ConfigError(f"model '{spec}' is not a digits-MLP safetensors file ({first}); give a file saved by "
                              "`repscope zoo train-mlp`") from None
        return TorchModuleAdapter(mlp, device=device)
    if p.suffix == ".safetensors" or p.is_dir():
        raise ConfigError(f"model '{spec}' not found or not a model (a folder needs config.json or modules.json); "
                          f"use {MODEL_HELP}")
    raise ConfigError(f"unknown model '{spec}'; use {MODEL_HELP}")


def _spec_int(spec: str, what: str, example: str, minimum: int = 1) -> int:
    """The integer after the ':' of a spec such as `templates:500` or `digits-mlp:3`, checked to be ≥ `minimum`."""
    raw = spec.split(":", 1)[1].strip()
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"'{spec}': the {what} after ':' must be an integer, got '{raw}'; write e.g. {example}") \
            from None
    if value < minimum:
        need = "positive" if minimum == 1 else f"≥ {minimum}"
        raise ConfigError(f"'{spec}': the {what} must be {need}, got {value}; write e.g. {example}")
    return value


def load_dataset(spec: str, seed: int = 0) -> Dataset:
    """Build a dataset from a spec string (see module docstring); `.spec` records a spec that re-reads it
    (files made absolute, `shared:` resolved, the row limit kept)."""
    ds, canonical = _load_dataset(spec, seed)
    ds.spec = canonical
    return ds


def _load_dataset(spec: str, seed: int) -> tuple[Dataset, str]:
    s, limit = spec.strip(), None
    if "@" in s:
        s, lim = s.rsplit("@", 1)
        if not lim.strip().isdigit():
            raise ConfigError(f"bad row limit in '{spec}'; write e.g. {s}@1000")
        limit = int(lim)
        if limit < 1:
            raise ConfigError(f"row limit @{lim} in '{spec}' must be ≥ 1; drop the @ suffix to keep every row")
    if s == "shapes" or s.startswith("shapes:"):
        from repscope.sources.shapes import shapes_dataset

        n = _spec_int(s, "number of images", "shapes:2000") if ":" in s else 2000
        return shapes_dataset(limit or n, seed=seed), f"shapes:{limit or n}"
    if s == "templates" or s.startswith("templates:"):
        from repscope.sources.templates import generate_sentences

        n = _spec_int(s, "number of sentences", "templates:2000") if ":" in s else 2000
        return generate_sentences(limit or n, seed=seed), f"templates:{limit or n}"
    at = f"@{limit}" if limit else ""
    if s in SKLEARN_SETS:
        ds = load_sklearn(s)
        if limit:
            ds = type(ds)(ds.x[:limit], {"label": ds.samples["label"][:limit]}, name=ds.name)
        return ds, s + at
    if s.startswith("shared:"):
        root = shared_dir()
        if root is None:
            raise DataError(f"'{spec}' needs ../shared/data; set REPSCOPE_SHARED to the shared folder")
        s = str(root / "data" / s[len("shared:"):])
    p = Path(s)
    if not p.exists():
        raise DataError(f"dataset '{spec}' not found; use {DATA_HELP}")
    canonical = str(p.resolve()) + at
    if p.suffix == ".npz":
        return NpzImages(p, limit=limit), canonical
    if p.is_dir():
        raise DataError(f"dataset '{spec}' is a folder; give a .tsv or .npz file, or use {DATA_HELP}")
    if p.suffix in (".tsv", ".txt"):
        header = tsv_header(p)
        if "sentence1" in header and "sentence2" in header:
            return load_sts_pairs(p, limit=limit), canonical
        return load_tsv_text(p, limit=limit), canonical
    raise DataError(f"cannot read dataset '{spec}'; use {DATA_HELP}")


def reload_dataset(provenance: dict[str, Any]) -> Dataset | None:
    """Re-read a store's dataset from provenance `dataset_spec`; None when there is no spec, it cannot be read, or
    its content hash no longer equals the recorded `dataset_hash` (the source changed since extraction)."""
    spec = provenance.get("dataset_spec")
    if not spec or not provenance.get("dataset_hash"):
        return None
    try:
        ds = load_dataset(str(spec), seed=int(provenance.get("seed") or 0))
    except (RepscopeError, OSError, ValueError, KeyError):
        return None
    return ds if content_hash(ds) == provenance["dataset_hash"] else None


def load_tokenizer(model_spec: str | None) -> Any | None:
    """Only the tokenizer of a text model spec (`minilm`, `minilm-st` or a local model folder), loaded offline;
    None for other specs or when it cannot be loaded."""
    if not model_spec:
        return None
    try:
        if model_spec in ("minilm", "minilm-st"):
            from repscope.sources.zoo.minilm import minilm_path

            path = minilm_path()
        else:
            path = Path(model_spec)
            if not path.is_dir() or not any((path / f).is_file() for f in
                                            ("tokenizer.json", "vocab.txt", "tokenizer_config.json")):
                return None
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from transformers import AutoTokenizer

        return AutoTokenizer.from_pretrained(str(path), local_files_only=True)
    except (RepscopeError, OSError, ValueError, ImportError):
        return None
