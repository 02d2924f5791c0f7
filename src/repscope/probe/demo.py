"""Demo step of repscope.probe: per-layer probes, concept depth, few-shot curves, seed concatenation, STS."""

from __future__ import annotations

import time

from repscope.demo_context import DemoContext
from repscope.probe.protocols import (
    as_table,
    concat_stores,
    concept_depth,
    few_shot_curve,
    layer_sweep,
    retrieval_sweep,
    sts_sweep,
)

TEMPLATE_FACTORS = ("topic", "sentiment", "tense", "negation", "number", "polarity")


def _sweep_with_depth(ctx: DemoContext, store, probes, target: str, **kw):
    """Layer sweep plus concept depth, both recorded; returns the sweep as a table (`as_table`)."""
    sweep = layer_sweep(store, probes, target, device=ctx.device, seed=ctx.seed, **kw)
    table = as_table(sweep)
    depth = concept_depth(table, store.layers, model=store.model)
    ctx.db.record_result(sweep)
    ctx.db.record_result(depth)
    depth_table = as_table(depth)
    d = depth_table.pivot_table(index=["probe", "best_layer"], columns="metric", values="value").reset_index()
    layer = depth_table.query("metric == 'depth'").set_index("probe")["layer"]
    for r in d.itertuples():
        ctx.console.print(f"  {store.name} · {target} ({r.probe}): best {r.best:.3f} at {r.best_layer}, "
                          f"concept depth {layer[r.probe]} ({r.relative_depth:.2f})")
    return table


def _best_layer(sweep, probe: str = "logistic") -> str:
    s = sweep[(sweep["probe"] == probe) & (sweep["metric"] == "accuracy")]
    return str(s.loc[s["value"].idxmax(), "layer"])


def run(ctx: DemoContext) -> None:
    """Run this package's analyses on the demo stores and record their Results in ctx.db."""
    t0 = time.perf_counter()
    st = ctx.stores
    # digits MLP: every layer of each seed, three probes; few-shot curve; seeds concatenated
    digits = [st[n] for n in ("digits_mlp_s0", "digits_mlp_s1", "digits_mlp_s2") if n in st]
    for i, s in enumerate(digits):
        probes = ("logistic", "nb", "knn") if i == 0 else ("logistic",)
        sweep = _sweep_with_depth(ctx, s, probes, "label")
        if i == 0:
            ctx.db.record_result(few_shot_curve(s, _best_layer(sweep), ("logistic", "nb", "knn"), "label",
                                                shots=(1, 2, 4, 8, 16, 32), seeds=3, seed=ctx.seed, device=ctx.device))
    if len(digits) >= 2 and "act1" in digits[0].layers:
        res = concat_stores(digits, "act1", "logistic", "label", seed=ctx.seed, device=ctx.device)
        ctx.db.record_result(res)
        acc = as_table(res)
        ctx.console.print("  concat act1: " + ", ".join(f"{r.store}={r.value:.3f}" for r in acc.itertuples()))
    # MiniLM on template sentences: each known factor, every layer
    if "minilm_templates" in st:
        s = st["minilm_templates"]
        for factor in TEMPLATE_FACTORS:
            if factor in s.samples.columns:
                _sweep_with_depth(ctx, s, ("logistic", "nb"), factor)
    if ctx.extended:
        for name in ("minilm_sst2", "minilm_trec"):
            if name in st:
                sweep = _sweep_with_depth(ctx, st[name], ("logistic", "nb", "knn"), "label")
                ctx.db.record_result(few_shot_curve(st[name], _best_layer(sweep), ("logistic", "nb"), "label",
                                                    shots=(1, 2, 4, 8, 16, 32, 64), seeds=3, seed=ctx.seed,
                                                    device=ctx.device))
        if "minilm_trec" in st:
            ctx.db.record_result(retrieval_sweep(st["minilm_trec"], "label", device=ctx.device))
        if "minilm_stsb" in st:
            sts = sts_sweep(st["minilm_stsb"])
            ctx.db.record_result(sts)
            res = sts.frame()
            best = res.loc[res["value"].idxmax()]
            ctx.console.print(f"  STS-B Spearman: best {best['value']:.4f} at {best['layer']}")
        for name in ("resnet20_cifar", "resnet56_cifar"):
            if name in st:
                _sweep_with_depth(ctx, st[name], ("logistic", "knn"), "label")
    ctx.console.print(f"[green]probe[/] demo step done in {time.perf_counter() - t0:.1f}s")
