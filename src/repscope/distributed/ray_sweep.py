"""Analysis sweeps on Ray: independent units (layers, layer pairs) run as Ray tasks that return `Result` rows.

Each task opens the store by path (a filesystem every worker can reach) and runs the very function a local run calls,
restricted to its unit; the driver gathers the Results in the local order, so the rows equal a local run's (the
`seconds` timings aside) and only the driver records them in the results DB (DuckDB has one writer).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from repscope.distributed.cluster import connect, remote_cause
from repscope.errors import RepscopeError
from repscope.results import Result


def _gather(ray: Any, refs: list[Any]) -> list[Any]:
    """ray.get, re-raising a task's RepscopeError as itself (one line for the CLI)."""
    try:
        return ray.get(refs)
    except Exception as err:
        cause = remote_cause(err)
        if isinstance(cause, RepscopeError):
            raise cause from None
        raise


def _run_tasks(fn: Callable[..., Any], calls: list[tuple[tuple, dict]], address: str | None,
               num_cpus: float = 1.0, num_gpus: float = 0.0) -> list[Any]:
    """Run fn(*args, **kw) for each call as a Ray task (retried if its worker dies); results in call order."""
    ray = connect(address)
    task = ray.remote(num_cpus=num_cpus, num_gpus=num_gpus or None, max_retries=3)(fn)
    return _gather(ray, [task.remote(*args, **kw) for args, kw in calls])


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
    args = {"probes": list(probes), "target": target, **kw}
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
    args = {"measures": measures, **kw}
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
                  role_b: str, device: str) -> tuple[float, float]:
    """(value, seconds) of one measure on one layer pair, prepared exactly as `similarity_matrices` prepares it."""
    import time

    from repscope.similarity.matrix import load_layers
    from repscope.similarity.registry import measures
    from repscope.store import RepStore

    (m,) = measures(measure)
    a = RepStore.open(root_a)
    b = a if root_b == root_a else RepStore.open(root_b)
    t0 = time.perf_counter()
    xa = load_layers(a, [layer_a], rows)[layer_a]
    xb = xa if (b is a and layer_b == layer_a) else load_layers(b, [layer_b], rows)[layer_b]
    value = float(m.compare(m.prepare(xa, device, "a"), m.prepare(xb, device, role_b)))
    return value, time.perf_counter() - t0


def ray_compare_stores(store_a, store_b=None, measure_names: str | Sequence[str] | None = "linear_cka",
                       layers_a: Any = None, layers_b: Any = None, *, max_rows: int | None = 5000, seed: int = 0,
                       device: str = "auto", address: str | None = "auto", num_gpus: float = 0.0) -> Result:
    """`compare_stores` with one Ray task per (measure, layer pair); within one store a symmetric measure computes
    only the upper triangle and mirrors it, as the local matrix does. Same rows as local, timings aside."""
    from repscope.similarity.matrix import matrix_rows, pick_rows
    from repscope.similarity.registry import measures

    la = store_a.resolve_layers(layers_a)
    other = store_b if store_b is not None else store_a
    within = store_b is None and layers_b is None
    lb = la if within else other.resolve_layers(layers_b)
    rows = pick_rows(store_a, store_b, max_rows, seed)
    n = store_a.n_rows if rows is None else len(rows)
    ms = measures(measure_names) if isinstance(measure_names, str) or measure_names is None \
        else [measures(m)[0] for m in measure_names]
    ra, rb = _root(store_a), _root(other)
    calls, cells = [], []
    for m in ms:
        role_b = "a" if within and m.prepare_b_fn is None else "b"
        for i, a in enumerate(la):
            for j, b in enumerate(lb):
                if within and m.symmetric and j < i:
                    continue
                calls.append(((ra, rb, a, b, m.name, rows, role_b, device), {}))
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
        params = {"measure": m.name, "kind": m.kind, "n": n, "store_b": other.name, **m.params}
        result.extend(matrix_rows(frame, m.name, label, store_a.model, params, secs[m.name] / max(1, mat.size),
                                  store_a=store_a, store_b=other))
    return result
