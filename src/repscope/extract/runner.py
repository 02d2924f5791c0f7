"""The extraction loop: batches → hooks → pooling → streaming, resumable writes into a RepStore.

Batches never cross a chunk boundary and a resumed run restarts at the last committed chunk, so a resumed store
is bit-identical to an uninterrupted one (same batches, same padding, same numerics).
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path
from typing import Any

import torch

from repscope.errors import DataError, NonFiniteError, RepscopeError
from repscope.extract.pooling import pool, resolve_pooling
from repscope.extract.progress import make_progress
from repscope.sources.datasets import Dataset, content_hash
from repscope.sources.models import ModelAdapter
from repscope.store import RepStore, StoreWriter


def batch_ranges(start: int, n: int, chunk_rows: int, batch_size: int) -> list[tuple[int, int]]:
    """[start, n) split into batches of `batch_size` that never straddle a multiple of `chunk_rows`."""
    out = []
    for c in range(start, n, chunk_rows):
        end = min(c + chunk_rows, n)
        out.extend((b, min(b + batch_size, end)) for b in range(c, end, batch_size))
    return out


def _check_finite(name: str, value: torch.Tensor | list[torch.Tensor], row0: int) -> None:
    """Raise naming the layer and the first row holding NaN/Inf (pooled batch, or a list of token matrices)."""
    if isinstance(value, list):
        bad = [i for i, t in enumerate(value) if not torch.isfinite(t).all()]
    else:
        bad = (~torch.isfinite(value.reshape(value.shape[0], -1)).all(1)).nonzero().flatten().tolist()
    if bad:
        raise NonFiniteError(f"layer '{name}' row {row0 + bad[0]} has NaN/Inf activations; "
                             "pass --allow-nonfinite to store them anyway")


def source_provenance(model: ModelAdapter, data: Dataset) -> dict[str, Any]:
    """Provenance that lets later steps re-load the source: `model_spec` and `dataset_spec` (specs for
    `load_model`/`load_dataset`, files absolute) and the tokenizer's `max_length`, where known."""
    out = {"model_spec": getattr(model, "spec", None), "dataset_spec": getattr(data, "spec", None),
           "max_length": getattr(model, "max_length", None) if model.modality == "text" else None}
    return {k: v for k, v in out.items() if v is not None}


def extract_provenance(model: ModelAdapter, data: Dataset, names: list[str], pooling: str, seed: int | None,
                       extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """The provenance an extraction records (shared by the local loop and the Ray driver, so stores match)."""
    return {"model": model.name, "model_hash": model.weight_hash, "dataset": data.name,
            "dataset_hash": content_hash(data),
            "pooling": pooling, "seed": seed, "layers_requested": names, **source_provenance(model, data),
            **(extra or {})}


def extract(model: ModelAdapter, data: Dataset, out: str | Path, layers: list[str] | str | None = None,
            pooling: str = "auto", batch_size: int = 64, dtype: str = "float32", chunk_rows: int = 256,
            overwrite: bool = False, allow_nonfinite: bool = False, progress: bool = True,
            seed: int | None = None, extra_provenance: dict[str, Any] | None = None) -> RepStore:
    """Extract `layers` of `model` on `data` into a RepStore at `out`, streaming chunk by chunk; resumes if interrupted.

    Bad input (wrong modality, unknown layer, empty data, NaN/Inf, a model that fails on the first batch) raises a
    one-line RepscopeError and leaves no store. Any other failure leaves the committed rows for a resume, or no store
    when none was committed. One process writes a store at a time (its lock names the holder to a second writer).
    """
    if batch_size < 1 or chunk_rows < 1:
        raise RepscopeError(f"batch size and chunk rows must be ≥ 1 (got {batch_size}, {chunk_rows})")
    names = model.select(layers)
    first = data.items(0, min(len(data), batch_size))
    model.check_items(first, data.name)
    prov = extract_provenance(model, data, names, pooling, seed, extra_provenance)
    writer = StoreWriter.create_or_resume(out, data.samples, prov, chunk_rows=chunk_rows, dtype=dtype,
                                          overwrite=overwrite, resume_command=resume_command())
    n = len(data)
    ranges = batch_ranges(writer.rows_done, n, chunk_rows, batch_size)
    modes: dict[str, str] = {}
    try:
        with make_progress(disable=not progress) as bar:
            task = bar.add_task(f"extract {model.name}", total=n, completed=writer.rows_done)
            for i, (s, e) in enumerate(ranges):
                try:
                    batch = run_batch(model, data, names, s, e, pooling, modes, allow_nonfinite)
                except RepscopeError:
                    raise
                except Exception as err:
                    if i or isinstance(err, MemoryError) or "out of memory" in str(err):
                        raise
                    first = (str(err).strip().splitlines() or [""])[0][:200]
                    raise DataError(f"model '{model.name}' failed on the first batch of '{data.name}' "
                                    f"({type(err).__name__}: {first}); check that the data fits the model's "
                                    "input (shape, modality)") from err
                if not writer.manifest["layers"]:
                    writer.set_layers({k: ((tuple(v[0].shape[1:]), True) if isinstance(v, list)
                                           else (tuple(v.shape[1:]), False)) for k, v in batch.items()})
                    writer.manifest["provenance"]["pooling_per_layer"] = modes
                writer.append(batch)
                bar.update(task, completed=e)
            return writer.close()
    except RepscopeError:
        writer.abort(force=True)  # bad input: remove the store if this call started it, or if it holds no row
        raise
    except Exception:
        writer.abort(force=True, keep_committed=True)  # e.g. out of memory: committed rows stay for a resume
        raise
    finally:
        writer.release()


def run_batch(model: ModelAdapter, data: Dataset, names: list[str], s: int, e: int, pooling: str,
              modes: dict[str, str], allow_nonfinite: bool) -> dict[str, torch.Tensor | list[torch.Tensor]]:
    """Forward rows [s, e), pool each layer (deciding each layer's mode on the first batch), check finiteness."""
    raw, mask = model.run(data.items(s, e), names)
    batch: dict[str, torch.Tensor | list[torch.Tensor]] = {}
    for name in names:
        x = raw[name]
        if name not in modes:
            modes[name] = resolve_pooling(pooling, x.ndim, mask is not None and x.ndim == 3, layer=name)
        p = pool(x, modes[name], mask if x.ndim == 3 else None)
        if not allow_nonfinite:
            _check_finite(name, p, s)
        batch[name] = [t.cpu() for t in p] if isinstance(p, list) else p.cpu()
    return batch


def resume_command() -> str | None:
    """The `repscope …` command line that resumes this run (None when not run from the CLI)."""
    argv = sys.argv
    if argv and Path(argv[0]).name == "repscope":
        return "`" + " ".join(["repscope", *map(shlex.quote, argv[1:])]) + "`"
    return None
