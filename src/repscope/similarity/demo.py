"""Demo step of repscope.similarity: digits MLP seeds compared layer × layer, neuron matching and stitching between
seeds, MiniLM layer × layer; extended: ResNet-20 vs ResNet-56 CKA on CIFAR and MiniLM on SST-2."""

from __future__ import annotations

import time

from repscope.demo_context import DemoContext
from repscope.results import Row

DIGITS_MEASURES = "linear_cka,debiased_cka,mean_cca,pwcca,procrustes,mutual_knn"
MINILM_MEASURES = "linear_cka,debiased_cka,procrustes,rsa,mutual_knn"


def _compare(ctx: DemoContext, a: str, b: str | None, measures: str, max_rows: int, layers=None) -> None:
    from repscope.similarity.matrix import compare_stores

    t = time.perf_counter()
    sa, sb = ctx.stores[a], (ctx.stores[b] if b else None)
    mats, rows = compare_stores(sa, sb, measures, layers, layers if b else None, max_rows=max_rows,
                                device=ctx.device)
    ctx.db.record_rows(rows)
    cka = mats.get("linear_cka")
    diag = ""
    if cka is not None and b is not None and list(cka.index) == list(cka.columns):
        hits = sum(cka.loc[r].idxmax() == r for r in cka.index)
        diag = f"; CKA finds the same layer for {hits}/{len(cka)} layers"
    what = f"{a} vs {b}" if b else a
    ctx.console.print(f"compare {what}: {len(mats)} measures in {time.perf_counter() - t:.1f}s{diag}")


def _seeds(ctx: DemoContext) -> None:
    from repscope.similarity.cli import match_rows
    from repscope.similarity.matrix import load_layers
    from repscope.similarity.relative import zero_shot_stitching
    from repscope.similarity.stitching import stitching_score

    names = [f"digits_mlp_s{i}" for i in range(3) if f"digits_mlp_s{i}" in ctx.stores]
    for i in range(len(names)):
        for j in range(i + 1, len(names)):
            _compare(ctx, names[i], names[j], DIGITS_MEASURES, max_rows=800)
    if len(names) < 2:
        return
    a, b = ctx.stores[names[0]], ctx.stores[names[1]]
    labels = a.labels("label")
    for layer in ("act1", "act2"):
        if layer not in a.layers or layer not in b.layers:
            continue
        xa, xb = load_layers(a, [layer])[layer], load_layers(b, [layer])[layer]
        rec = match_rows(a.name, b.name, a.model, layer, layer, xa, xb, lasso=False, device=ctx.device)
        ctx.db.record_rows(rec["rows"])
        ctx.db.record_artifact("neuron_match", rec["artifact_name"], rec["artifact"])
        vals = {r.metric: r.value for r in rec["rows"]}
        ctx.console.print(f"neuron match {layer}: mean matched corr {vals['mean_matched_corr']:.3f}")
    layer = "act2" if "act2" in a.layers else a.layers[-1]
    xa, xb = load_layers(a, [layer])[layer], load_layers(b, [layer])[layer]
    label = f"{a.name} vs {b.name}"
    rows = []
    for kind in ("affine", "orthogonal"):
        res = stitching_score(xa, xb, labels, kind=kind, device=ctx.device)
        rows += [Row("stitching", k, v, layer=layer, layer_b=layer, store=label, model=a.model,
                     params={"kind": kind, "label": "label"}) for k, v in res.items()]
        ctx.console.print(f"stitching {layer} ({kind}): R² {res['r2']:.3f}, B head on B {res['acc_b']:.3f}, "
                          f"on mapped A {res['acc_stitched']:.3f}")
    rel = zero_shot_stitching(xa, xb, labels, n_anchors=64, device=ctx.device)
    rows += [Row("relative_stitching", k, v, layer=layer, layer_b=layer, store=label, model=a.model,
                 params={"n_anchors": 64, "label": "label"}) for k, v in rel.items()]
    ctx.console.print(f"relative reps {layer}: zero-shot A→B {rel['acc_a_to_b']:.3f} "
                      f"(absolute space {rel.get('acc_abs_a_to_b', float('nan')):.3f}, A→A {rel['acc_a_to_a']:.3f})")
    ctx.db.record_rows(rows)


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
