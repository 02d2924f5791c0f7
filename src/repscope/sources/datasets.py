"""Dataset readers. A Dataset is a samples table plus random access to raw items by row range.

`samples` columns: `id`, label/factor columns, `text` (text data) or `image_index` (images), `split`.
`items(start, stop)` returns raw items: a list of str for text, a uint8/float tensor for images and arrays.
Model adapters turn raw items into model inputs; readers never load a model.
"""

from __future__ import annotations

import hashlib
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from repscope.errors import ConfigError, DataError

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


QUOTINGS = ("auto", "rfc4180", "none")

# One RFC 4180 field and its lookahead separator: a quoted field ("" inside stands for one quote, tabs and newlines
# allowed), or an unquoted field holding no quote at all (an RFC 4180 writer always quotes a field with a quote).
_RFC_FIELD = re.compile(r'"([^"]*(?:""[^"]*)*)"(?=[\t\n]|\Z)|([^\t\n"]*)(?=[\t\n]|\Z)')


def read_text_file(path: str | Path, what: str = "file") -> str:
    """A UTF-8 text file's contents (a BOM is dropped, newlines normalised); a one-line error naming the file and
    the first bad byte when it is not UTF-8."""
    path = Path(path)
    try:
        with open(path, encoding="utf-8-sig") as f:
            return f.read()
    except UnicodeDecodeError as err:
        bad = err.object[err.start : err.start + 1].hex() if isinstance(err.object, bytes) else "?"
        raise DataError(f"{what} '{path}' is not UTF-8 text (byte 0x{bad} at offset {err.start}); "
                        "re-save it with UTF-8 encoding") from None
    except IsADirectoryError:
        raise DataError(f"{what} '{path}' is a folder; give a file") from None
    except OSError as err:
        raise DataError(f"cannot read {what} '{path}': {err.strerror or err}; check the path and its permissions") \
            from None


def _parse_rfc4180(text: str) -> tuple[list[tuple[int, list[str]]], int]:
    """Strict RFC 4180 tab-separated parse: ([(line, fields)], 0), or ([], line of the first violation)."""
    rows: list[tuple[int, list[str]]] = []
    row: list[str] = []
    pos, line, row_line, n = 0, 1, 1, len(text)
    while True:
        m = _RFC_FIELD.match(text, pos)
        if m is None:
            return [], line
        quoted = m.group(1)
        if quoted is not None:
            row.append(quoted.replace('""', '"'))
            line += quoted.count("\n")
        else:
            row.append(m.group(2))
        pos = m.end()
        if pos >= n:  # end of text: the last record had no trailing newline
            rows.append((row_line, row))
            return rows, 0
        if text[pos] == "\n":
            rows.append((row_line, row))
            row, line = [], line + 1
            row_line = line
            if pos + 1 >= n:
                return rows, 0
        pos += 1


def _parse_raw(text: str) -> list[tuple[int, list[str]]]:
    """Tab-split lines with every character literal (quotes included): how raw TSVs such as GLUE's SST-2 are meant."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    return [(i, ln.split("\t")) for i, ln in enumerate(lines, start=1)]


def tsv_records(path: str | Path, quoting: str = "auto") -> list[tuple[int, list[str]]]:
    """(line number, fields) for each record of a UTF-8 TSV file, header included.

    `quoting`: ``rfc4180`` reads fields quoted the way pandas `to_csv(sep="\\t")` and Python's `csv` write them
    (a field in double quotes may hold tabs, newlines and doubled quotes); ``none`` takes every character literally
    (raw TSVs with stray quotes, e.g. `it 's a " fun " movie`); ``auto`` (default) uses rfc4180 when the whole file
    is valid RFC 4180 with at least one quoted field, else none. A field holding a quote without being quoted, or a
    closing quote followed by more text, marks a raw file.
    """
    if quoting not in QUOTINGS:
        raise ConfigError(f"unknown TSV quoting '{quoting}'; choose one of {', '.join(QUOTINGS)}")
    path = Path(path)
    if not path.is_file() and not path.is_dir():
        raise DataError(f"TSV file '{path}' not found; check the path")
    text = read_text_file(path, "TSV file")
    if quoting != "none" and '"' in text:
        rows, bad_line = _parse_rfc4180(text)
        if not bad_line:
            return rows
        if quoting == "rfc4180":
            raise DataError(f"{path.name} line {bad_line}: not valid RFC 4180 quoting (a quote inside an unquoted "
                            "field, or text after a closing quote); read it with quoting='none' or fix that line")
    return _parse_raw(text)


def tsv_header(path: str | Path, quoting: str = "auto") -> list[str]:
    """The header fields of a TSV file (see `tsv_records`); a header line without quotes is read on its own."""
    try:  # the fast path reads one line, not the whole file (its readers parse it again anyway)
        with open(path, encoding="utf-8-sig") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        first = ""  # the full read below raises the one-line error
    if first.strip() and '"' not in first:
        return first.rstrip("\n").split("\t")
    records = tsv_records(path, quoting)
    if not records:
        raise DataError(f"'{path}' is empty; a header row and at least one data row are needed")
    return records[0][1]


def read_tsv(path: str | Path, text_columns: tuple[str, ...] = ("text",), quoting: str = "auto") -> pd.DataFrame:
    """Read a UTF-8 TSV with a header, checking every row's column count (errors give the line number).

    Quoted (RFC 4180) and raw files are both read correctly; see `tsv_records` for `quoting`.
    """
    path = Path(path)
    records = tsv_records(path, quoting)
    if not records:
        raise DataError(f"'{path}' is empty; a header row and at least one data row are needed")
    header = records[0][1]
    for col in text_columns:
        if col not in header:
            raise DataError(f"'{path}' has no column '{col}'; its header is: {', '.join(header)}")
    rows = []
    for i, r in records[1:]:
        if not r or (len(r) == 1 and not r[0].strip()):
            continue
        if len(r) != len(header):
            raise DataError(f"{path.name} line {i}: expected {len(header)} tab-separated fields "
                            f"({', '.join(header)}), got {len(r)}; fix or remove that line")
        rows.append(r)
    if not rows:
        raise DataError(f"'{path}' is empty: it has a header row but no data rows; add at least one row")
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
        try:
            with np.load(path, allow_pickle=False) as z:
                if "images" not in z:
                    raise DataError(f"'{path.name}' has no 'images' array; keys are {', '.join(z.files)}")
                images = z["images"][:limit] if limit else z["images"]
                labels = z["labels"][: len(images)] if "labels" in z else None
                self.classes = [str(c) for c in z["classes"]] if "classes" in z else None
        except DataError:
            raise
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as err:
            why = "not a numpy .npz archive" if "pickle" in str(err) or isinstance(err, zipfile.BadZipFile) \
                else _first_line(err)
            raise DataError(f"cannot read '{path}' as .npz images ({why}); give an .npz saved by numpy.savez with "
                            "an 'images' array") from None
        check_npz_dtypes(images, labels, path.name)
        check_pixel_range(images, path.name)
        super().__init__(images, None if labels is None else {"label": labels.astype(np.int64)},
                         name=name or path.stem, modality="image")
        self.spec = str(path.resolve()) + (f"@{limit}" if limit else "")


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def check_npz_dtypes(images: np.ndarray, labels: np.ndarray | None, source: str) -> None:
    """Refuse non-numeric `images` (strings, objects) and `labels` that are not integers (class indices)."""
    if images.dtype.kind not in "biuf":
        raise DataError(f"'{source}': 'images' holds {images.dtype} values, not pixels; save uint8 or float pixel "
                        "arrays")
    if labels is not None and labels.dtype.kind not in "biu" and not (
            labels.dtype.kind == "f" and np.all(np.isfinite(labels)) and np.all(labels == np.round(labels))):
        raise DataError(f"'{source}': 'labels' holds {labels.dtype} values; save integer class indices (and the "
                        "class names as 'classes')")


def check_pixel_range(images: np.ndarray, source: str) -> None:
    """Refuse float images outside [0, 255] (or holding NaN/Inf): pixels must be uint8, floats in [0, 1] (used as
    they are) or floats in [0, 255] (divided by 255 like uint8)."""
    if not np.issubdtype(images.dtype, np.floating) or images.size == 0:
        return
    lo, hi = float(np.min(images)), float(np.max(images))
    if not (np.isfinite(lo) and np.isfinite(hi)) or lo < 0 or hi > 255:
        raise DataError(f"'{source}': float images range over [{lo:.4g}, {hi:.4g}]; pixels must be uint8, floats "
                        "in [0, 1] or floats in [0, 255] (undo any normalisation before saving)")


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
