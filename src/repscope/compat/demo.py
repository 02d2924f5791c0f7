"""Demo step of repscope.compat: is digits MLP seed 1 backward compatible with seed 0 (last hidden layer)? The
extended demo adds the classic upgrade, CIFAR ResNet-20 → ResNet-56 (pooled `avgpool` features)."""

from __future__ import annotations

import time

from repscope.demo_context import DemoContext

# (old store, new store, layer); the extended pair runs only when its stores are in the demo
PAIRS = [("digits_mlp_s0", "digits_mlp_s1", "act2")]
EXTENDED = [("resnet20_cifar", "resnet56_cifar", "avgpool")]


def run(ctx: DemoContext) -> None:
    """Compatibility of each (old, new) pair; logs M(new→old) per transform and whether it is compatible."""
    from repscope.compat.report import compat_table
    from repscope.compat.store import compat_stores

    for old_name, new_name, layer in PAIRS + (EXTENDED if ctx.extended else []):
        old, new = ctx.stores.get(old_name), ctx.stores.get(new_name)
        if old is None or new is None:
            ctx.console.print(f"compat: stores {old_name}/{new_name} not in this demo, skipped")
            continue
        t = time.perf_counter()
        result = compat_stores(old, new, target="label", layer_old=layer, layer_new=layer, seed=ctx.seed,
                               device=ctx.device)
        ctx.db.record_result(result)
        tab = compat_table(result.frame())
        for r in tab.to_dict(orient="records"):
            ok = r.get("compatible:mAP")
            mark = "" if ok is None or ok != ok else (" compatible" if ok else " not compatible")
            ctx.console.print(f"compat: {r['query']} × {r['gallery']} [{r['transform']}] mAP {r['mAP']:.3f}{mark}",
                              highlight=False)
        ctx.console.print(f"compat: {new_name} vs {old_name} in {time.perf_counter() - t:.1f}s")
