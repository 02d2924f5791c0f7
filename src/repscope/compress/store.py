"""Store-level entry points of repscope.compress: quantization scores of a layer, Matryoshka adapter training with
before/after truncation curves, and applying an adapter to a store (a new store linked to its source)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from repscope.compress.adapter import MatryoshkaAdapter, save_adapter, train_adapter
from repscope.compress.evaluate import eval_plan, load_rows, resolve_target
from repscope.compress.quantized_eval import quantization_scores
from repscope.compress.truncate import check_bases, prefix_dims, truncation_grid
from repscope.errors import DataError
from repscope.results import Result
from repscope.store import pooled_layers
from repscope.store.manifest import file_sha256

QUANTIZE = "quantize_embeddings"
ADAPTER = "adapter"


def _pooled_layer(store: Any, layer: str) -> int:
    if store.is_tokens(layer):
        raise DataError(f"layer '{layer}' is token-level; re-extract with a pooling such as mean")
    return int(np.prod(store.layer_info(layer)["shape"]))


def quantize_embeddings_store(store: Any, layers: Sequence[str] | str | None = None, *,
                              schemes: Sequence[str] | str | None = None, rescore: int = 0, k: int = 10,
                              target: str | None = "label", probe: bool = True, seed: int = 0,
                              max_rows: int | None = 20000, device: str = "auto", ranking: str = "cosine") -> Result:
    """Per layer and scheme (float32 reference, float16, int8, binary): bytes per vector, recall@k vs exact
    float32 search, label recall@k, STS Spearman, probe accuracy; with rescoring of k·`rescore` candidates too.
    Analysis `quantize_embeddings`, params scheme/rescore/bytes_per_vector; calibration and eval rows are each capped
    at `max_rows` (seeded). Without `layers`, token-level layers are skipped. Without a label column (`target`
    defaults to `label`, optional: see `resolve_target`) the scores are recall@k against float32 search (neighbour
    overlap), plus STS Spearman on pair stores; label recall and probe accuracy need the labels. `ranking`: "cosine"
    (default) or "sentence-transformers" (int8 code inner product; `repscope.compress.quantized_eval`), recorded in
    the params."""
    from repscope.compress.quantized_eval import RANKINGS
    from repscope.errors import check_choice

    check_choice(ranking, RANKINGS, "ranking")
    target = resolve_target(store, target)
    plan = eval_plan(store.samples, int(store.n_rows), target=target, seed=seed, max_rows=max_rows)
    chosen = pooled_layers(store, layers, "embedding quantization")
    order = list(store.layers)
    res = Result()
    for layer in chosen:
        t0 = time.perf_counter()
        x, sub = load_rows(store, layer, plan)
        df = quantization_scores(x, sub, schemes=schemes, rescore_r=rescore, k=k, probe=probe, device=device,
                                 ranking=ranking)
        sec = (time.perf_counter() - t0) / max(1, len(df))
        for r in df.itertuples(index=False):
            res.add(QUANTIZE, r.metric, float(r.value), layer=layer, layer_index=order.index(layer),
                    store=store.name, model=store.model, seconds=sec,
                    params={"scheme": r.scheme, "rescore": int(r.rescore), "bytes_per_vector": int(r.bytes_per_vector),
                            "k": k, "target": target, "calibration": plan.mode, "n_calibration": len(plan.fit),
                            "n_eval": len(plan.eval), "ranking": ranking})
    return res


def adapter_store(store: Any, layer: str, *, objective: str = "unsupervised", target: str | None = "label",
                  dims: Sequence[int] | None = None, kind: str = "linear", epochs: int = 30, batch_size: int = 512,
                  lr: float = 1e-3, bases: Sequence[str] | str | None = None, seed: int = 0,
                  max_rows: int | None = 20000, device: str = "auto", out: str | Path | None = None,
                  progress: bool = False) -> tuple[Result, MatryoshkaAdapter]:
    """Train a Matryoshka adapter on the fit rows of `layer` and score the truncation curves of raw, PCA and
    adapted embeddings on the eval rows (analysis `adapter`, params method/dim/bytes_per_vector/objective).
    The supervised objective needs a label column; the unsupervised one does not, and a store without labels or STS
    pairs is scored by `recall@k_vs_full` (how much of each row's top-k cosine neighbourhood among the eval rows the
    prefix keeps). The adapter is saved to `out` (safetensors) when given."""
    d = _pooled_layer(store, layer)
    prefix_dims(d, dims)
    target = resolve_target(store, target,
                            needed_for="the supervised adapter" if objective == "supervised" else None)
    plan = eval_plan(store.samples, int(store.n_rows), target=target, seed=seed, max_rows=max_rows)
    x, plan = load_rows(store, layer, plan)
    t0 = time.perf_counter()
    model = train_adapter(x[torch.as_tensor(plan.fit)], y=plan.y_fit, objective=objective, dims=dims, kind=kind,
                          epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, device=device, progress=progress)
    train_sec = time.perf_counter() - t0
    if out is not None:
        save_adapter(model, out, meta={"source_store": str(store.root), "layer": layer, "model": store.model})
    grid = truncation_grid(x, plan, dims=model.dims_, bases=check_bases(bases), device=device,
                           transforms={"adapter": model.transform})
    res = Result()
    idx = list(store.layers).index(layer)
    for r in grid.itertuples(index=False):
        res.add(ADAPTER, r.metric, float(r.value), layer=layer, layer_index=idx, store=store.name, model=store.model,
                seconds=train_sec if r.basis == "adapter" else None,
                params={"method": r.basis, "dim": int(r.dim), "bytes_per_vector": int(r.bytes_per_vector),
                        "objective": objective, "kind": kind, "epochs": epochs, "target": target,
                        "split": plan.mode, "n_fit": len(plan.fit), "n_eval": len(plan.eval),
                        "adapter": str(out) if out is not None else None})
    return res, model


def apply_adapter(store: Any, layer: str, adapter: MatryoshkaAdapter | str | Path, out: str | Path, *,
                  dim: int | None = None, overwrite: bool = False) -> Any:
    """Write a new store whose layer `layer` holds the adapted (optionally truncated to `dim`) embeddings, chunk by
    chunk; its provenance links the source store, layer and adapter file (with its sha256)."""
    from repscope.compress.adapter import load_adapter
    from repscope.store import StoreWriter

    path = Path(adapter) if not isinstance(adapter, MatryoshkaAdapter) else None
    model = load_adapter(path) if path is not None else adapter
    d = _pooled_layer(store, layer)
    if d != model.dim:
        raise DataError(f"adapter expects {model.dim}-dim input but layer '{layer}' has {d} dims")
    width = prefix_dims(d, [dim])[0] if dim is not None else d
    src = store.provenance
    prov = {"model": f"{store.model}+matryoshka-adapter", "pooling": src.get("pooling", "none"),
            "dataset": src.get("dataset"), "dataset_hash": src.get("dataset_hash"), "seed": src.get("seed"),
            "source_store": str(Path(store.root).resolve()), "source_layer": layer, "dim": width,
            "adapter": str(path.resolve()) if path is not None else None,
            "adapter_sha256": file_sha256(path) if path is not None else None}
    chunk = int(store.manifest.get("chunk_rows", 1024))
    w = StoreWriter.create_or_resume(out, store.samples, prov, chunk_rows=chunk, overwrite=overwrite,
                                     inputs=(store.root,))
    try:
        w.set_layers({layer: ((width,), False)})
        for _, block in store.iter_chunks(layer, dtype=torch.float32):
            w.append({layer: model.transform(block)[:, :width].contiguous()})
        return w.close()
    except BaseException:
        w.abort(force=True)
        raise
    finally:
        w.release()
