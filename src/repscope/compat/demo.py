"""Demo step of repscope.compat: is digits MLP seed 1 backward compatible with seed 0 (last hidden layer)?"""

from __future__ import annotations

import time

from repscope.demo_context import DemoContext

OLD, NEW, LAYER = "digits_mlp_s0", "digits_mlp_s1", "act2"


def run(ctx: DemoContext) -> None:
    """Compatibility of digits MLP seed 1 with seed 0 on `act2`; logs M(old,old), M(new,new) and M(new→old) per
    transform."""
    from repscope.compat.report import compat_table
    from repscope.compat.store import compat_stores

    old, new = ctx.stores.get(OLD), ctx.stores.get(NEW)
    if old is None or new is None:
        ctx.console.print(f"compat: stores {OLD}/{NEW} not in this demo, skipped")
        return
    t = time.perf_counter()
    result = compat_stores(old, new, target="label", layer_old=LAYER, layer_new=LAYER, seed=ctx.seed,
                           device=ctx.device)
    ctx.db.record_result(result)
    tab = compat_table(result.frame())
    for r in tab.to_dict(orient="records"):
        ok = r.get("compatible:mAP")
        mark = "" if ok is None or ok != ok else (" compatible" if ok else " not compatible")
        ctx.console.print(f"compat: {r['query']} × {r['gallery']} [{r['transform']}] mAP {r['mAP']:.3f}{mark}",
                          highlight=False)
    ctx.console.print(f"compat: {NEW} vs {OLD} in {time.perf_counter() - t:.1f}s")
