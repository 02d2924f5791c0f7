"""Dataset readers. A Dataset is a samples table plus random access to raw items by row range.

`samples` columns: `id`, label/factor columns, `text` (text data) or `image_index` (images), `split`.
`items(start, stop)` returns raw items: a list of str for text, a uint8/float tensor for images and arrays.
Model adapters turn raw items into model inputs; readers never load a model.
"""

from __future__ import annotations

import csv
import hashlib
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.errors import DataError

MODALITIES = ("text", "image", "tensor")


class Dataset:
    """Base dataset: `name`, `modality` (text|image|tensor), `samples` DataFrame, `items(start, stop)`."""

    name: str = "dataset"
    modality: str = "tensor"
    spec: str | None = None  # a `load_dataset` spec that re-reads this data (recorded in store provenance)

    def __init__(self, samples: pd.DataFrame):
        if len(samples) == 0:
            raise DataError(f"dataset '{self.name}' is empty; give a file or array with at least one sample")
        self.samples = samples.reset_index(drop=True)

    def __len__(self) -> int:
        return len(self.samples)

    def items(self, start: int, stop: int) -> Any:
        """Raw items for rows [start, stop)."""
        raise NotImplementedError


class TextDataset(Dataset):
    """A list of sentences with label/factor columns."""

    modality = "text"

    def __init__(self, texts: list[str], columns: dict[str, Any] | None = None, name: str = "text",
                 split: str | list[str] = "all"):
        self.name = name
        df = pd.DataFrame({"id": np.arange(len(texts)), "text": list(texts)})
        for k, v in (columns or {}).items():
            df[k] = list(v)
        df["split"] = split
        super().__init__(df)

    def items(self, start: int, stop: int) -> list[str]:
        """Sentences for rows [start, stop)."""
        return self.samples["text"].iloc[start:stop].tolist()


class ArrayDataset(Dataset):
    """Numpy arrays or tensors passed from Python (N, ...) with optional labels."""

    modality = "tensor"

    def __init__(self, x: Any, labels: dict[str, Any] | Any | None = None, name: str = "arrays",
                 modality: str = "tensor"):
        self.name = name
        self.modality = modality
        self.x = torch.as_tensor(np.asarray(x)) if not isinstance(x, torch.Tensor) else x
        df = pd.DataFrame({"id": np.arange(len(self.x))})
        if labels is not None:
            cols = labels if isinstance(labels, dict) else {"label": labels}
            for k, v in cols.items():
                if len(v) != len(self.x):
                    raise DataError(f"column '{k}' has {len(v)} values for {len(self.x)} samples; lengths must match")
                df[k] = np.asarray(v)
        if modality == "image":
            df["image_index"] = np.arange(len(self.x))
        df["split"] = "all"
        super().__init__(df)

    def items(self, start: int, stop: int) -> torch.Tensor:
        """Array rows [start, stop)."""
        return self.x[start:stop]


def read_tsv(path: str | Path, text_columns: tuple[str, ...] = ("text",)) -> pd.DataFrame:
    """Read a UTF-8 TSV with a header, checking every row's column count (errors give the line number)."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"TSV file '{path}' not found; check the path")
    rows = []
    with open(path, encoding="utf-8", newline="") as f:
        reader = csv.reader(f, delimiter="\t", quoting=csv.QUOTE_NONE)
        try:
            header = next(reader)
        except StopIteration:
            raise DataError(f"'{path}' is empty; a header row and at least one data row are needed") from None
        for col in text_columns:
            if col not in header:
                raise DataError(f"'{path}' has no column '{col}'; its header is: {', '.join(header)}")
        for i, r in enumerate(reader, start=2):
            if not r or (len(r) == 1 and not r[0].strip()):
                continue
            if len(r) != len(header):
                raise DataError(f"{path.name} line {i}: expected {len(header)} tab-separated fields "
                                f"({', '.join(header)}), got {len(r)}; fix or remove that line")
            rows.append(r)
    return pd.DataFrame(rows, columns=header)


def load_tsv_text(path: str | Path, text_column: str = "text", label_columns: tuple[str, ...] | None = None,
                  limit: int | None = None, name: str | None = None, split: str | None = None) -> TextDataset:
    """TSV text with labels (e.g. SST-2, TREC); numeric-looking label columns are converted to integers."""
    path = Path(path)
    df = read_tsv(path, (text_column,))
    if limit:
        df = df.iloc[:limit]
    cols = label_columns if label_columns is not None else tuple(c for c in df.columns if c != text_column)
    columns = {}
    for c in cols:
        try:
            columns[c] = pd.to_numeric(df[c]).to_numpy()
        except (ValueError, TypeError):
            columns[c] = df[c].to_numpy()
    return TextDataset(df[text_column].tolist(), columns, name=name or f"{path.parent.name}_{path.stem}",
                       split=split or path.stem)


def load_sts_pairs(path: str | Path, limit: int | None = None, name: str | None = None) -> TextDataset:
    """STS pairs (score, sentence1, sentence2) flattened to 2n rows with columns pair, side (0/1), score."""
    path = Path(path)
    df = read_tsv(path, ("sentence1", "sentence2", "score"))
    if limit:
        df = df.iloc[:limit]
    n = len(df)
    texts = df["sentence1"].tolist() + df["sentence2"].tolist()
    try:
        score = pd.to_numeric(df["score"]).to_numpy()
    except ValueError as err:
        raise DataError(f"{path.name}: column 'score' must be numeric ({err})") from None
    cols = {"pair": np.r_[np.arange(n), np.arange(n)], "side": np.r_[np.zeros(n, int), np.ones(n, int)],
            "score": np.r_[score, score]}
    return TextDataset(texts, cols, name=name or f"{path.parent.name}_{path.stem}", split=path.stem)


class NpzImages(ArrayDataset):
    """`.npz` images with keys `images` (N,H,W[,C] uint8) and `labels`; optional `classes` names."""

    def __init__(self, path: str | Path, limit: int | None = None, name: str | None = None):
        path = Path(path)
        if not path.is_file():
            raise DataError(f"image file '{path}' not found; check the path")
        with np.load(path, allow_pickle=False) as z:
            if "images" not in z:
                raise DataError(f"'{path.name}' has no 'images' array; keys are {', '.join(z.files)}")
            images = z["images"][:limit] if limit else z["images"]
            labels = z["labels"][: len(images)] if "labels" in z else None
            self.classes = [str(c) for c in z["classes"]] if "classes" in z else None
        super().__init__(images, None if labels is None else {"label": labels.astype(np.int64)},
                         name=name or path.stem, modality="image")
        self.spec = str(path.resolve()) + (f"@{limit}" if limit else "")


SKLEARN_SETS = ("digits", "iris", "wine", "breast_cancer")


def load_sklearn(name: str) -> ArrayDataset:
    """One of scikit-learn's bundled sets (digits, iris, wine, breast_cancer) as float32 features + `label`.

    Digits pixels are scaled to [0, 1] (÷16) to match the digits MLP's training input.
    """
    from sklearn import datasets as skd

    if name not in SKLEARN_SETS:
        raise DataError(f"unknown scikit-learn dataset '{name}'; choose one of {', '.join(SKLEARN_SETS)}")
    d = getattr(skd, f"load_{name}")()
    x = d.data / 16.0 if name == "digits" else d.data
    return ArrayDataset(np.asarray(x, dtype=np.float32), {"label": d.target.astype(np.int64)}, name=name)


def content_hash(ds: Dataset) -> str:
    """sha256 (16 hex) of a dataset's samples table (ids, labels, text) and, for arrays, its raw bytes."""
    h = hashlib.sha256(ds.samples.to_csv(index=False).encode())
    if isinstance(ds, ArrayDataset):  # raw bytes of any dtype (bfloat16 included): changed pixels change the hash
        h.update(ds.x.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]
