"""Demo step of repscope.geometry: geometry profiles of the demo stores."""

from __future__ import annotations

import time

from repscope.demo_context import DemoContext
from repscope.geometry.profile import geometry_profile

# (store, target column, max rows); the extended stores run only when present
DEFAULT = [("digits_mlp_s0", "label", 1000), ("minilm_templates", "topic", 1000)]
EXTENDED = [("resnet20_cifar", "label", 1000), ("minilm_sst2", "label", 1000), ("minilm_stsb", None, 1000)]


def run(ctx: DemoContext) -> None:
    """Profile every layer of the digits MLP (seed 0) and MiniLM templates (extended: ResNet-20, SST-2, STS-B)."""
    plan = DEFAULT + (EXTENDED if ctx.extended else [])
    for name, target, max_rows in plan:
        store = ctx.stores.get(name)
        if store is None:
            ctx.console.print(f"geometry: store {name} not in this demo, skipped")
            continue
        if target is not None and target not in store.samples.columns:
            target = None
        t = time.perf_counter()
        result = geometry_profile(store, target=target, max_rows=max_rows, seed=ctx.seed, device=ctx.device)
        ctx.db.record_result(result)
        df = result.frame()
        summary = []
        for metric in ("twonn_id", "anisotropy", "effective_rank"):
            vals = df[df["metric"] == metric]["value"]
            if len(vals):
                summary.append(f"{metric} {vals.min():.3g}…{vals.max():.3g}")
        ctx.console.print(f"geometry {name}: {df['layer'].nunique()} layers, {len(df)} rows in "
                          f"{time.perf_counter() - t:.1f}s ({'; '.join(summary)})", highlight=False)
