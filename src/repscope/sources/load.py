"""Turn CLI/study strings into model adapters and datasets.

Model specs: `minilm`, `minilm-st` (sentence-transformers pipeline), `resnet20|32|44|56`, `digits-mlp:SEED`,
a folder with a transformers model (`config.json`) or a sentence-transformers model (`modules.json`),
a digits-MLP `.safetensors` file saved by `repscope zoo train-mlp`.

Dataset specs: `templates[:N]`, `digits|iris|wine|breast_cancer`, a `.tsv` file (STS pairs when it has sentence1/2
columns), a `.npz` image file, or `shared:REL/PATH` under ../shared/data. A `@N` suffix keeps the first N rows.
"""

from __future__ import annotations

from pathlib import Path

from repscope.errors import ConfigError, DataError
from repscope.paths import shared_dir
from repscope.sources.datasets import SKLEARN_SETS, Dataset, NpzImages, load_sklearn, load_sts_pairs, load_tsv_text
from repscope.sources.models import ModelAdapter, TorchModuleAdapter

MODEL_HELP = "minilm, minilm-st, resnet20/32/44/56, digits-mlp:SEED, a model folder or a digits-MLP .safetensors"
DATA_HELP = "templates[:N], digits/iris/wine/breast_cancer, FILE.tsv, FILE.npz or shared:text/sst2/dev.tsv; @N keeps N"


def load_model(spec: str, device: str = "auto", max_length: int = 128) -> ModelAdapter:
    """Build a model adapter from a spec string (see module docstring)."""
    s = spec.strip()
    if s in ("minilm", "minilm-st"):
        from repscope.sources.zoo.minilm import load_minilm

        return load_minilm(device, sentence_transformers=s == "minilm-st", max_length=max_length)
    if s.startswith("resnet") and s[6:].isdigit():
        from repscope.sources.zoo.resnet_cifar import cifar_transform, load_cifar_resnet

        return TorchModuleAdapter(load_cifar_resnet(int(s[6:])), transform=cifar_transform, modality="image",
                                  device=device)
    if s.startswith("digits-mlp"):
        from repscope.sources.zoo.mlp import train_digits_mlp

        seed = int(s.split(":", 1)[1]) if ":" in s else 0
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

        return TorchModuleAdapter(load_mlp(p), device=device)
    raise ConfigError(f"unknown model '{spec}'; use {MODEL_HELP}")


def load_dataset(spec: str, seed: int = 0) -> Dataset:
    """Build a dataset from a spec string (see module docstring)."""
    s, limit = spec.strip(), None
    if "@" in s:
        s, lim = s.rsplit("@", 1)
        if not lim.isdigit():
            raise ConfigError(f"bad row limit in '{spec}'; write e.g. {s}@1000")
        limit = int(lim)
    if s.startswith("templates"):
        from repscope.sources.templates import generate_sentences

        n = int(s.split(":", 1)[1]) if ":" in s else 2000
        return generate_sentences(limit or n, seed=seed)
    if s in SKLEARN_SETS:
        ds = load_sklearn(s)
        return ds if not limit else type(ds)(ds.x[:limit], {"label": ds.samples["label"][:limit]}, name=ds.name)
    if s.startswith("shared:"):
        root = shared_dir()
        if root is None:
            raise DataError(f"'{spec}' needs ../shared/data; set REPSCOPE_SHARED to the shared folder")
        s = str(root / "data" / s[len("shared:"):])
    p = Path(s)
    if not p.exists():
        raise DataError(f"dataset '{spec}' not found; use {DATA_HELP}")
    if p.suffix == ".npz":
        return NpzImages(p, limit=limit)
    if p.suffix in (".tsv", ".txt"):
        with open(p, encoding="utf-8") as f:
            header = f.readline().rstrip("\n").split("\t")
        if "sentence1" in header and "sentence2" in header:
            return load_sts_pairs(p, limit=limit)
        return load_tsv_text(p, limit=limit)
    raise DataError(f"cannot read dataset '{spec}'; use {DATA_HELP}")
