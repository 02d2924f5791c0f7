"""`compare` as executor units: one unit per measure computes that measure's whole layer × layer matrix.

A unit loads every layer it compares once and prepares each once (centred data, Gram, basis, RDM, kNN mask), as the
local `compare_stores` does, then compares every pair: within one store a symmetric measure fills the upper triangle
and mirrors it. Finer units (one per layer pair or per matrix row) would prepare a layer once per pair or row: on a
13-layer store that made a local run 2-3× slower for linear CKA and 9-14× slower with procrustes, mutual kNN and RSA,
more than Ray's parallelism wins back unless the workers far outnumber the layers.

Units receive the on-disk stores and their row indices (`store.pairing.base_rows`), so stores aligned by
`pair_stores` (views, which do not pickle) run on Ray as they do here. When the layers do not fit the memory budget
the plan has no units and `ComparePlan.combine` runs the local streaming/subsampling path (`compare_stores`, with
its warning) on the driver.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from repscope.distributed.executor import Unit, driver_budget
from repscope.results import Result
from repscope.similarity.matrix import (
    COMPARE_COPIES,
    compare_setup,
    compare_stores,
    compare_stores_streaming,
    load_layers,
    matrix_rows,
    similarity_matrices,
)
from repscope.similarity.registry import SimilarityMeasure
from repscope.store.pairing import base_rows, base_store, pairing_params


def compare_measure(store_a: Any, store_b: Any, measure: SimilarityMeasure, layers_a: list[str],
                    layers_b: list[str] | None, rows_a: np.ndarray | None, rows_b: np.ndarray | None,
                    device: str) -> tuple[np.ndarray, float]:
    """One unit of `compare`: (matrix, seconds) of `measure` between `layers_a` of `store_a` and `layers_b` of
    `store_b` (None: `layers_a` against each other), on rows `rows_a` of A paired with `rows_b` of B (None: the
    same rows). The layers are loaded and prepared once each (`similarity_matrices`); seconds exclude loading."""
    xa = load_layers(store_a, layers_a, rows_a)
    xb = None
    if layers_b is not None:
        shared = store_b is store_a and rows_b is None
        xb = {k: xa[k] for k in layers_b if k in xa} if shared else {}
        xb.update(load_layers(store_b, [k for k in layers_b if k not in xb], rows_a if rows_b is None else rows_b))
        xb = {k: xb[k] for k in layers_b}
    t0 = time.perf_counter()
    mat = similarity_matrices(xa, xb, [measure], device)[measure.name]
    return mat.to_numpy(), time.perf_counter() - t0


@dataclass
class ComparePlan:
    """The units of one `compare` (one per measure; none when the layers do not fit the memory budget) and what
    the driver needs to turn their matrices into rows."""

    store_a: Any
    store_b: Any
    measure_names: Any
    layers_a: Any
    layers_b: Any
    max_rows: int | None
    seed: int
    device: str
    budget: int
    ms: list[SimilarityMeasure]
    la: list[str]
    lb: list[str] | None
    n: int
    units: list[Unit] = field(default_factory=list)
    streaming: bool = False

    def combine(self, parts: Sequence[tuple[np.ndarray, float]]) -> Result:
        """The units' matrices as `compare_stores` rows (one per measure and layer pair, measures in order). With
        no parts (the plan found the layers over the memory budget) it runs `compare_stores` here, which streams
        CKA and subsamples the other measures, with its warning; with `streaming`, `compare_stores_streaming` (exact
        linear CKA over store chunks)."""
        if self.streaming:
            return compare_stores_streaming(self.store_a, self.store_b, [m.name for m in self.ms], self.layers_a,
                                            self.layers_b, device=self.device)
        if not parts:
            return compare_stores(self.store_a, self.store_b, self.measure_names, self.layers_a, self.layers_b,
                                  max_rows=self.max_rows, seed=self.seed, device=self.device,
                                  max_memory=self.budget)
        a = self.store_a
        other = self.store_b if self.store_b is not None else a
        label = a.name if self.store_b is None or other is a else f"{a.name} vs {other.name}"
        result = Result()
        for m, (mat, secs) in zip(self.ms, parts, strict=True):
            frame = pd.DataFrame(mat, index=self.la, columns=self.lb if self.lb is not None else self.la)
            params = {"measure": m.name, "kind": m.kind, "n": self.n, "store_b": other.name, **m.params,
                      **pairing_params(a)}
            result.extend(matrix_rows(frame, m.name, label, a.model, params, secs / max(1, mat.size), store_a=a,
                                      store_b=other))
        return result


def plan_compare(store_a: Any, store_b: Any = None, measure_names: str | Sequence[str] | None = "linear_cka",
                 layers_a: Any = None, layers_b: Any = None, *, max_rows: int | None = 5000, seed: int = 0,
                 device: str = "auto", max_memory: int | str | None = None, streaming: bool = False) -> ComparePlan:
    """The plan of `compare_stores(store_a, store_b, measure_names, layers_a, layers_b, ...)`: run its `units` on
    any executor and pass their outputs to its `combine` for the same rows (timings aside). The stores must pair
    (`pick_rows`); the memory budget is resolved here, on the driver. `streaming` plans no units: `combine` runs the
    exact chunked linear CKA (`compare_stores_streaming`) on the driver, over all rows."""
    from repscope import budget as mb

    la, other, lb, rows, n, ms = compare_setup(store_a, store_b, measure_names, layers_a, layers_b, max_rows, seed)
    budget = driver_budget(max_memory)
    plan = ComparePlan(store_a, store_b, measure_names, layers_a, layers_b, max_rows, seed, device, budget, ms, la,
                       lb, n, streaming=streaming)
    if streaming:
        return plan
    loaded = [(store_a, k) for k in la] + [(other, k) for k in (lb or []) if other is not store_a or k not in la]
    if not mb.fits(n, sum(mb.layer_width(st, k) for st, k in loaded), budget, COMPARE_COPIES):
        return plan  # over the budget: `combine` runs the streaming path on the driver
    ra, rb = base_rows(store_a, rows), base_rows(other, rows)  # aligned views (--pair-by) read their base rows
    sa, sb = base_store(store_a), base_store(other)
    rb = None if rb is ra else rb
    plan.units = [Unit(compare_measure, (sa, sb, m, la, lb, ra, rb, device), label=f"{store_a.name}:{m.name}")
                  for m in ms]
    return plan
