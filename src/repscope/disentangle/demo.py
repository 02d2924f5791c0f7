"""Demo step of repscope.disentangle: which MiniLM layer is most disentangled for the template-sentence factors."""

from __future__ import annotations

import time

from repscope.demo_context import DemoContext

FACTORS = ["topic", "sentiment", "tense", "negation", "number"]


def run(ctx: DemoContext) -> None:
    """Disentanglement scores of every MiniLM layer on the template sentences; logs the best layer per score."""
    from repscope.disentangle.store import disentangle_store

    store = ctx.stores.get("minilm_templates")
    if store is None:
        ctx.console.print("disentangle: store minilm_templates not in this demo, skipped")
        return
    t = time.perf_counter()
    result = disentangle_store(store, FACTORS, max_rows=1000, seed=ctx.seed)  # DCI trees dominate the cost
    ctx.db.record_result(result)
    df = result.frame()
    for metric in ("mig", "dci_disentanglement", "infom"):
        d = df[df["metric"] == metric].sort_values("value", ascending=False)
        if len(d) >= 2:
            ctx.console.print(f"disentangle: best {metric} at {d['layer'].iloc[0]} ({d['value'].iloc[0]:.3f}, "
                              f"next {d['layer'].iloc[1]} {d['value'].iloc[1]:.3f})", highlight=False)
    ctx.console.print(f"disentangle: {df['layer'].nunique()} layers in {time.perf_counter() - t:.1f}s")
