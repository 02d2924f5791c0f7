"""Analysis sweeps on Ray: independent units (layers, layer pairs) run as Ray tasks that return `Result` rows.

Each task opens the store by path (a filesystem every worker can reach) and runs the very function a local run calls,
restricted to its unit; the driver gathers the Results in the local order, so the rows equal a local run's (the
`seconds` timings aside) and only the driver records them in the results DB (DuckDB has one writer).

Units: probe, geometry, disentangle, truncate and quantize-embeddings run one task per layer; compare one per
(measure, layer pair); `sae train` one per layer, each writing only its own checkpoint folder (the driver checks the
folders are distinct before any task starts); the `run: learn` study step one per seed (train + extract, each
writing its own checkpoint and store; the driver runs the analyses on the stores). Commands with a single unit
(`adapter train`, `quantize`) have no Ray path. Truncation's cross-layer summary is computed on the driver from the
gathered grid rows.

Study steps ask for Ray with the `ray` param (`RayParam`: omitted/null runs locally; 'auto', 'local' or a cluster
address), checked when the study file loads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from pydantic import BeforeValidator

from repscope.distributed.cluster import check_address, connect, remote_cause
from repscope.errors import ConfigError, RepscopeError
from repscope.results import Result


def check_ray_param(value: Any) -> str | None:
    """A study step's `ray` param: None (run locally), 'auto', 'local' or a cluster address such as
    ray://head:10001, checked as `--ray` is (`cluster.check_address`: ray installed, a well-formed address that
    accepts a connection) when the study file loads, before any extraction."""
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"ray must be auto, local or a cluster address such as ray://head:10001 (omit it to run "
                         f"locally), got {value!r}")
    try:
        return check_address(value)
    except RepscopeError as err:  # RayError is no ValueError: as a ConfigError pydantic reports it with the step
        raise ConfigError(str(err)) from None


RayParam = Annotated[str | None, BeforeValidator(check_ray_param)]


def _gather(ray: Any, refs: list[Any]) -> list[Any]:
    """ray.get, re-raising a task's RepscopeError as itself (one line for the CLI); on a failure the other tasks
    are cancelled and their outcomes collected, so Ray prints no 'unhandled error' for them later."""
    try:
        return ray.get(refs)
    except Exception as err:
        _drain(ray, refs)
        cause = remote_cause(err)
        if isinstance(cause, RepscopeError):
            raise cause from None
        raise


def _drain(ray: Any, refs: list[Any]) -> None:
    """Cancel every task of `refs` still running and collect (discard) each outcome."""
    for ref in refs:
        try:
            ray.cancel(ref)
        except Exception:  # already finished, or not cancellable: its outcome is collected below
            pass
    for ref in refs:
        try:
            ray.get(ref)
        except Exception:
            pass


def _run_tasks(fn: Callable[..., Any], calls: list[tuple[tuple, dict]], address: str | None,
               num_cpus: float = 1.0, num_gpus: float = 0.0) -> list[Any]:
    """Run fn(*args, **kw) for each call as a Ray task (retried if its worker dies); results in call order."""
    ray = connect(address, num_gpus=num_gpus)
    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus or None, max_retries=3)(fn)
    return _gather(ray, [task.remote(*args, **kw) for args, kw in calls])


def _driver_budget(kw: dict[str, Any]) -> dict[str, Any]:
    """`kw` with `max_memory` resolved to bytes on the driver, so every task uses the driver's budget (the default
    is a share of the RAM available when it is computed; each worker computing its own could stream or subsample
    differently from a local run)."""
    from repscope.budget import resolve_budget

    return {**kw, "max_memory": resolve_budget(kw.get("max_memory"))}


def _root(store) -> str:
    return str(Path(store.root).resolve())


# ---- probe ------------------------------------------------------------------------------------------------------
def _probe_layer(root: str, layer: str, kw: dict[str, Any]) -> Result:
    from repscope.probe.protocols import layer_sweep
    from repscope.store import RepStore

    return layer_sweep(RepStore.open(root), layers=[layer], **kw)


def ray_layer_sweep(store, probes: Sequence[str] = ("logistic",), target: str = "label", layers: Any = None, *,
                    address: str | None = "auto", num_gpus: float = 0.0, **kw: Any) -> Result:
    """`layer_sweep` with one Ray task per layer; the same rows as the local sweep, in the same order."""
    layer_list = store.resolve_layers(layers)
    args = {"probes": list(probes), "target": target, **_driver_budget(kw)}
    parts = _run_tasks(_probe_layer, [((_root(store), layer, args), {}) for layer in layer_list], address,
                       num_gpus=num_gpus)
    out = Result()
    for part in parts:
        out.extend(part)
    return out


# ---- geometry ---------------------------------------------------------------------------------------------------
def _geometry_layer(root: str, layer: str, kw: dict[str, Any]) -> tuple[Result, list[str]]:
    from repscope.geometry.profile import geometry_profile
    from repscope.store import RepStore

    notes: list[str] = []
    res = geometry_profile(RepStore.open(root), layers=[layer], progress=notes.append, **kw)
    return res, notes


def ray_geometry_profile(store, measures: list[str] | None = None, layers: Any = None, *,
                         address: str | None = "auto", num_gpus: float = 0.0,
                         progress: Callable[[str], None] | None = None, **kw: Any) -> Result:
    """`geometry_profile` with one Ray task per layer; rows in local order, per-layer spectra merged into the one
    'spectrum:<store>' artifact a local run writes."""
    from repscope.geometry.profile import ANALYSIS, SPECTRUM_ARTIFACT

    layer_list = store.resolve_layers(layers)
    args = {"measures": measures, **_driver_budget(kw)}
    parts = _run_tasks(_geometry_layer, [((_root(store), layer, args), {}) for layer in layer_list], address,
                       num_gpus=num_gpus)
    out = Result()
    spectrum: dict[str, Any] | None = None
    for res, notes in parts:
        for note in notes:
            if progress:
                progress(note)
        out.rows.extend(res.rows)
        for art in res.artifacts:
            if art.name == f"{SPECTRUM_ARTIFACT}:{store.name}":
                if spectrum is None:
                    spectrum = dict(art.payload, layers={})
                spectrum["layers"].update(art.payload["layers"])
            else:
                out.artifacts.append(art)
    if spectrum is not None:
        spectrum["order"] = [name for name in store.layers if name in spectrum["layers"]]
        out.add_artifact(ANALYSIS, f"{SPECTRUM_ARTIFACT}:{store.name}", spectrum)
    return out


# ---- compare ----------------------------------------------------------------------------------------------------
def _compare_pair(root_a: str, root_b: str, layer_a: str, layer_b: str, measure: str, rows: np.ndarray | None,
                  role_b: str, device: str, rows_b: np.ndarray | None = None) -> tuple[float, float]:
    """(value, seconds) of one measure on one layer pair, prepared exactly as `similarity_matrices` prepares it;
    `rows` of store A pair with `rows_b` of store B (default: the same rows)."""
    import time

    from repscope.similarity.matrix import load_layers
    from repscope.similarity.registry import measures
    from repscope.store import RepStore

    (m,) = measures(measure)
    a = RepStore.open(root_a)
    b = a if root_b == root_a else RepStore.open(root_b)
    rows_b = rows if rows_b is None else rows_b
    t0 = time.perf_counter()
    xa = load_layers(a, [layer_a], rows)[layer_a]
    xb = xa if (b is a and layer_b == layer_a and rows_b is rows) else load_layers(b, [layer_b], rows_b)[layer_b]
    value = float(m.compare(m.prepare(xa, device, "a"), m.prepare(xb, device, role_b)))
    return value, time.perf_counter() - t0


def ray_compare_stores(store_a, store_b=None, measure_names: str | Sequence[str] | None = "linear_cka",
                       layers_a: Any = None, layers_b: Any = None, *, max_rows: int | None = 5000, seed: int = 0,
                       device: str = "auto", address: str | None = "auto", num_gpus: float = 0.0,
                       max_memory: int | str | None = None) -> Result:
    """`compare_stores` with one Ray task per (measure, layer pair); within one store a symmetric measure computes
    only the upper triangle and mirrors it, as the local matrix does. Same rows as local, timings aside.

    When the layers do not fit `max_memory` (the local rule of `compare_stores`), the local run would stream or
    subsample; this then runs that local path on the driver (with its warning), so the rows still equal local ones."""
    from repscope import budget as mb
    from repscope.similarity.matrix import COMPARE_COPIES, compare_stores, matrix_rows, pick_rows
    from repscope.similarity.registry import measures
    from repscope.store.pairing import base_rows, pairing_params

    la = store_a.resolve_layers(layers_a)
    other = store_b if store_b is not None else store_a
    within = store_b is None and layers_b is None
    lb = la if within else other.resolve_layers(layers_b)
    rows = pick_rows(store_a, store_b, max_rows, seed)
    n = store_a.n_rows if rows is None else len(rows)
    loaded = [(store_a, k) for k in la] + [(other, k) for k in ([] if within else lb)
                                           if other is not store_a or k not in la]
    if not mb.fits(n, sum(mb.layer_width(st, k) for st, k in loaded), mb.resolve_budget(max_memory), COMPARE_COPIES):
        mb.warn("compare --ray: the layers do not fit the memory budget; running the streaming comparison on the "
                "driver")
        return compare_stores(store_a, store_b, measure_names, layers_a, layers_b, max_rows=max_rows, seed=seed,
                              device=device, max_memory=max_memory)
    ms = measures(measure_names) if isinstance(measure_names, str) or measure_names is None \
        else [measures(m)[0] for m in measure_names]
    ra, rb = _root(store_a), _root(other)
    rows_a, rows_b = base_rows(store_a, rows), base_rows(other, rows)  # aligned views (--pair-by) read their rows
    rows_b = None if rows_b is rows_a else rows_b
    calls, cells = [], []
    for m in ms:
        role_b = "a" if within and m.prepare_b_fn is None else "b"
        for i, a in enumerate(la):
            for j, b in enumerate(lb):
                if within and m.symmetric and j < i:
                    continue
                calls.append(((ra, rb, a, b, m.name, rows_a, role_b, device, rows_b), {}))
                cells.append((m.name, i, j))
    values = _run_tasks(_compare_pair, calls, address, num_gpus=num_gpus)
    mats = {m.name: np.full((len(la), len(lb)), np.nan) for m in ms}
    secs = {m.name: 0.0 for m in ms}
    for (name, i, j), (v, t) in zip(cells, values, strict=True):
        mats[name][i, j] = v
        secs[name] += t
    label = store_a.name if store_b is None or other is store_a else f"{store_a.name} vs {other.name}"
    result = Result()
    for m in ms:
        mat = mats[m.name]
        if within and m.symmetric:
            low = np.tril_indices(len(la), -1)
            mat[low] = mat.T[low]
        frame = pd.DataFrame(mat, index=la, columns=lb)
        params = {"measure": m.name, "kind": m.kind, "n": n, "store_b": other.name, **m.params,
                  **pairing_params(store_a)}
        result.extend(matrix_rows(frame, m.name, label, store_a.model, params, secs[m.name] / max(1, mat.size),
                                  store_a=store_a, store_b=other))
    return result


# ---- sae train --------------------------------------------------------------------------------------------------
def _sae_layer(root: str, layer: str, out: str | None, kw: dict[str, Any]) -> Any:
    from repscope.dictionary.runs import train_sae_on_store
    from repscope.store import RepStore

    res = train_sae_on_store(RepStore.open(root), layer, out=out, progress=False, **kw)
    res.estimator = None  # the weights are in `out`; keep the module off the wire
    return res


def ray_train_saes(store, layers: Sequence[str], outs: Sequence[str | Path | None], *, address: str | None = "auto",
                   num_gpus: float = 0.0, **kw: Any) -> list[Any]:
    """`train_sae_on_store(store, layers[i], out=outs[i], **kw)` for every i, one Ray task each; returns the
    `SaeResult`s in layer order (estimator dropped: the checkpoint folder holds it). Folders must be distinct, so
    no two tasks ever write one file; they are resolved to absolute paths on the driver."""
    if len(outs) != len(layers):
        raise ConfigError(f"{len(layers)} layers but {len(outs)} checkpoint folders; give one folder per layer")
    paths = [None if o is None else str(Path(o).resolve()) for o in outs]
    named = [p for p in paths if p is not None]
    if len(set(named)) != len(named):
        dup = next(p for p in named if named.count(p) > 1)
        raise ConfigError(f"two layers would write the SAE folder '{dup}'; give each layer its own --out")
    calls = [((_root(store), layer, out, kw), {}) for layer, out in zip(layers, paths, strict=True)]
    return _run_tasks(_sae_layer, calls, address, num_gpus=num_gpus)


# ---- disentangle ------------------------------------------------------------------------------------------------
def _disentangle_layer(root: str, layer: str, factors: list[str], kw: dict[str, Any]) -> Result:
    from repscope.disentangle.store import disentangle_store
    from repscope.store import RepStore

    return disentangle_store(RepStore.open(root), factors, layers=[layer], **kw)


def ray_disentangle_store(store, factors: Sequence[str] | str, *, layers: Sequence[str] | str | None = None,
                          address: str | None = "auto", num_gpus: float = 0.0, **kw: Any) -> Result:
    """`disentangle_store` with one Ray task per pooled layer (MIG, DCI, SAP, … as locally); rows and heatmap
    artifacts in local order. Token-level layers are skipped, or refused when named, as locally."""
    from repscope.store import pooled_layers

    names = [f.strip() for f in factors.split(",") if f.strip()] if isinstance(factors, str) else list(factors)
    chosen = pooled_layers(store, layers, "disentanglement")  # none pooled: its one-line error
    if not names:  # the local function's one-line error for no factors
        from repscope.disentangle.store import disentangle_store

        return disentangle_store(store, names, layers=layers, **kw)
    parts = _run_tasks(_disentangle_layer, [((_root(store), la, names, kw), {}) for la in chosen], address,
                       num_gpus=num_gpus)
    out = Result()
    for part in parts:
        out.extend(part)
    return out


# ---- compress: truncate, quantize-embeddings --------------------------------------------------------------------
def _truncate_layer(root: str, layer: str, kw: dict[str, Any]) -> Result:
    from repscope.compress.truncate import ANALYSIS, truncate_store
    from repscope.store import RepStore

    res = truncate_store(RepStore.open(root), layers=[layer], **kw)
    return Result(rows=[r for r in res.rows if r.analysis == ANALYSIS])  # the summary spans layers: driver's job


def ray_truncate_store(store, *, layers: Sequence[str] | str | None = None, dims: Sequence[int] | None = None,
                       address: str | None = "auto", num_gpus: float = 0.0, **kw: Any) -> Result:
    """`truncate_store` with one Ray task per pooled layer for the truncation grid (raw / PCA prefixes, MRL-style);
    the driver rebuilds the per-layer grids from the rows and adds the ≥99%/≥95% summary rows and artifact exactly
    as the local run does."""
    from repscope.compress.truncate import ANALYSIS, add_truncation_summary, truncation_layers

    chosen = truncation_layers(store, layers, dims)
    args = {"dims": dims, **kw}
    parts = _run_tasks(_truncate_layer, [((_root(store), la, args), {}) for la in chosen], address,
                       num_gpus=num_gpus)
    res = Result()
    for part in parts:
        res.extend(part)
    grid = pd.DataFrame([{"basis": r.params["basis"], "dim": r.params["dim"],
                          "bytes_per_vector": r.params["bytes_per_vector"], "metric": r.metric, "value": r.value,
                          "layer": r.layer, "layer_index": r.layer_index, "store": r.store}
                         for r in res.rows if r.analysis == ANALYSIS])
    target = res.rows[0].params["target"] if res.rows else kw.get("target", "label")
    add_truncation_summary(res, store, grid, target)
    return res


def _quantize_embeddings_layer(root: str, layer: str, kw: dict[str, Any]) -> Result:
    from repscope.compress.store import quantize_store
    from repscope.store import RepStore

    return quantize_store(RepStore.open(root), [layer], **kw)


def ray_quantize_embeddings(store, layers: Sequence[str] | str | None = None, *, address: str | None = "auto",
                            num_gpus: float = 0.0, **kw: Any) -> Result:
    """`compress.store.quantize_store` (float16 / int8 / binary embeddings, recall@k, rescoring) with one Ray task
    per layer; rows in local order. Without `layers` token-level layers are skipped, named ones refused, as locally."""
    from repscope.store import pooled_layers

    chosen = pooled_layers(store, layers, "embedding quantization")
    parts = _run_tasks(_quantize_embeddings_layer, [((_root(store), la, kw), {}) for la in chosen], address,
                       num_gpus=num_gpus)
    out = Result()
    for part in parts:
        out.extend(part)
    return out


# ---- learn (study step): one task per seed -------------------------------------------------------------------------
def _learn_seed(params: dict[str, Any], seed: int, source: str, root: str, name: str) -> Result:
    """Train one seed and write its checkpoint and latent store under `root` (as the local step does); returns the
    training rows. `source` is the dataset spec, or the store path for `layer` training."""
    from repscope.learn.study import LearnParams, train_seed
    from repscope.sources.load import load_dataset
    from repscope.store import RepStore

    p = LearnParams(**params)
    src = load_dataset(source) if p.data is not None else RepStore.open(source)
    res = Result()
    train_seed(p, seed, src, Path(root), name, res)
    return res


def ray_learn_seeds(p: Any, source: Any, root: str | Path, names: Sequence[str], *, address: str | None = "auto",
                    num_gpus: float = 0.0) -> list[Result]:
    """`learn.study.train_seed` for each of `p.seeds` (named `names`), one Ray task each: every task trains its
    learner and writes `root/<name>.safetensors` and the store `root/<name>`; returns each seed's training rows in
    seed order. `source` is the study store trained on (`p.layer`), or the dataset `p.data` names (workers re-read
    it from its canonical spec: files made absolute). `root` must be on a filesystem every worker reaches."""
    if len(names) != len(p.seeds) or len(set(names)) != len(names):
        raise ConfigError(f"{len(p.seeds)} seeds need as many distinct store names, got {list(names)}")
    src = (getattr(source, "spec", None) or p.data) if p.data is not None else _root(source)
    params = p.model_dump()
    calls = [((params, seed, src, str(Path(root).resolve()), name), {}) for seed, name in zip(p.seeds, names,
                                                                                            strict=True)]
    return _run_tasks(_learn_seed, calls, address, num_gpus=num_gpus)
