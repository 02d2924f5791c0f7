"""Cost of the one executor on the local path.

Before issue 21 a local run called each analysis's whole-store function; now the CLI, studies and the demo run the
analysis's planned units on `LocalExecutor` and combine them. This times both on the same store, one after the
other (best of `--repeats`), and checks they give the same rows: the ratio units ÷ whole-store is the executor's
overhead on a local run. Goal ≤ 1.05 for every analysis.

Store: synthetic, n rows × 7 layers × 256 dims (float32) with a planted 4-class label and three planted factors.

Run: python benchmarks/executor.py [--n 4000] [--repeats 3]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd


def make_store(root: Path, n: int, layers: int = 7, dim: int = 256):
    """A store whose layers mix the planted factors in more and more linearly, plus noise."""
    from repscope.store import write_store

    rng = np.random.default_rng(0)
    f = rng.integers(0, 4, size=(n, 3))
    arrays = {}
    for i in range(layers):
        mix = rng.normal(size=(3, dim)) * (i + 1) / layers
        arrays[f"layer{i}"] = (f @ mix + rng.normal(size=(n, dim))).astype(np.float32)
    samples = pd.DataFrame({"id": np.arange(n), "label": f[:, 0], "a": f[:, 0], "b": f[:, 1], "c": f[:, 2]})
    return write_store(root / "bench", arrays, samples, provenance={"model": "synthetic"})


def best(fn: Callable[[], object], repeats: int) -> tuple[float, object]:
    """(best wall time, last output) of `repeats` calls."""
    times, out = [], None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return min(times), out


def rows(result) -> pd.DataFrame:
    """The result's rows without timings, for an equality check."""
    df = result.frame()
    return df.drop(columns=[c for c in ("seconds", "created") if c in df.columns]).reset_index(drop=True)


def main() -> None:
    """Time each analysis's whole-store function and its units on LocalExecutor; print the ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=4000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from repscope.disentangle.store import disentangle_store
    from repscope.disentangle.study import plan_disentangle
    from repscope.distributed.executor import LocalExecutor
    from repscope.geometry.profile import geometry_profile
    from repscope.geometry.study import combine_profile, plan_profile
    from repscope.probe.protocols import layer_sweep
    from repscope.probe.study import plan_sweep
    from repscope.similarity.matrix import compare_stores
    from repscope.similarity.plan import plan_compare

    local = LocalExecutor()
    with tempfile.TemporaryDirectory() as tmp:
        store = make_store(Path(tmp), args.n)
        cases = {
            "probe (logistic, 7 layers)": (
                lambda: layer_sweep(store, "logistic", "label", device="cpu"),
                lambda: local.run(plan_sweep(store, "logistic", "label", device="cpu"))),
            "geometry (twonn, rank, anisotropy)": (
                lambda: geometry_profile(store, ["twonn", "rank", "anisotropy"], device="cpu"),
                lambda: combine_profile(store, local.map(plan_profile(store, ["twonn", "rank", "anisotropy"],
                                                                      device="cpu")))),
            "disentangle (mig, sap, dci)": (
                lambda: disentangle_store(store, ["a", "b", "c"], metrics=["mig", "sap", "dci"], max_rows=2000),
                lambda: local.run(plan_disentangle(store, ["a", "b", "c"], metrics=["mig", "sap", "dci"],
                                                   max_rows=2000))),
            "compare (linear_cka, procrustes)": (
                lambda: compare_stores(store, None, ["linear_cka", "procrustes"], device="cpu"),
                lambda: (lambda plan: local.run(plan.units, plan.combine))(
                    plan_compare(store, None, ["linear_cka", "procrustes"], device="cpu"))),
        }
        print(f"store: {args.n} rows × 7 layers × 256 dims; best of {args.repeats}")
        print(f"{'analysis':38s} {'whole-store s':>13s} {'units s':>9s} {'ratio':>7s}  same rows")
        for name, (whole, units) in cases.items():
            t_whole, r_whole = best(whole, args.repeats)
            t_units, r_units = best(units, args.repeats)
            same = rows(r_whole).equals(rows(r_units))
            print(f"{name:38s} {t_whole:13.2f} {t_units:9.2f} {t_units / t_whole:7.3f}  {same}")


if __name__ == "__main__":
    main()
