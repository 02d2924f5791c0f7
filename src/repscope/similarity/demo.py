"""Demo step of repscope.similarity: digits MLP seeds compared layer × layer, neuron matching and stitching between
seeds, MiniLM layer × layer; extended: ResNet-20 vs ResNet-56 CKA on CIFAR and MiniLM on SST-2."""

from __future__ import annotations

import time

from repscope.demo_context import DemoContext

DIGITS_MEASURES = "linear_cka,debiased_cka,mean_cca,pwcca,procrustes,mutual_knn"
MINILM_MEASURES = "linear_cka,debiased_cka,procrustes,rsa,mutual_knn"


def _compare(ctx: DemoContext, a: str, b: str | None, measures: str, max_rows: int, layers=None) -> None:
    from repscope.similarity.matrix import compare_stores, result_matrices

    t = time.perf_counter()
    sa, sb = ctx.stores[a], (ctx.stores[b] if b else None)
    result = compare_stores(sa, sb, measures, layers, layers if b else None, max_rows=max_rows, device=ctx.device)
    ctx.db.record_result(result)
    mats = result_matrices(result)
    cka = mats.get("linear_cka")
    diag = ""
    if cka is not None and b is not None and list(cka.index) == list(cka.columns):
        hits = sum(cka.loc[r].idxmax() == r for r in cka.index)
        diag = f"; CKA finds the same layer for {hits}/{len(cka)} layers"
    what = f"{a} vs {b}" if b else a
    ctx.console.print(f"compare {what}: {len(mats)} measures in {time.perf_counter() - t:.1f}s{diag}")


def _seeds(ctx: DemoContext) -> None:
    from repscope.similarity.layer_pairs import match_layer_pair, stitch_layer_pair

    names = [f"digits_mlp_s{i}" for i in range(3) if f"digits_mlp_s{i}" in ctx.stores]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            _compare(ctx, names[i], names[j], DIGITS_MEASURES, max_rows=800)
    if len(names) < 2:
        return
    a, b = ctx.stores[names[0]], ctx.stores[names[1]]
    for layer in ("act1", "act2"):
        if layer not in a.layers or layer not in b.layers:
            continue
        rec = match_layer_pair(a, b, layer, layer, lasso=False, device=ctx.device)
        ctx.db.record_result(rec)
        vals = {r.metric: r.value for r in rec.rows}
        ctx.console.print(f"neuron match {layer}: mean matched corr {vals['mean_matched_corr']:.3f}")
    layer = "act2" if "act2" in a.layers else a.layers[-1]
    res = stitch_layer_pair(a, b, layer, "label", kinds=("affine", "orthogonal"), n_anchors=64, device=ctx.device)
    ctx.db.record_result(res)
    vals = {(r.analysis, r.params.get("kind"), r.metric): r.value for r in res.rows}
    for kind in ("affine", "orthogonal"):
        ctx.console.print(f"stitching {layer} ({kind}): R² {vals[('stitching', kind, 'r2')]:.3f}, B head on B "
                          f"{vals[('stitching', kind, 'acc_b')]:.3f}, on mapped A "
                          f"{vals[('stitching', kind, 'acc_stitched')]:.3f}")
    rel = {m: v for (an, _, m), v in vals.items() if an == "relative_stitching"}
    ctx.console.print(f"relative reps {layer}: zero-shot A→B {rel['acc_a_to_b']:.3f} "
                      f"(absolute space {rel.get('acc_abs_a_to_b', float('nan')):.3f}, A→A {rel['acc_a_to_a']:.3f})")


def run(ctx: DemoContext) -> None:
    """Run this package's analyses on the demo stores and record them in ctx.db."""
    _seeds(ctx)
    if "minilm_templates" in ctx.stores:
        _compare(ctx, "minilm_templates", None, MINILM_MEASURES, max_rows=1000)
    if not ctx.extended:
        return
    if "resnet20_cifar" in ctx.stores and "resnet56_cifar" in ctx.stores:
        _compare(ctx, "resnet20_cifar", "resnet56_cifar", "linear_cka,debiased_cka", max_rows=2000)
    if "minilm_sst2" in ctx.stores:
        _compare(ctx, "minilm_sst2", None, "linear_cka,debiased_cka,mutual_knn", max_rows=2000)
