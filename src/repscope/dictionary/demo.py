"""Demo step of repscope.dictionary: a small TopK SAE on a MiniLM template layer (feature cards, metrics), a
product quantizer on the same layer, and (extended) SAEs on MiniLM SST-2 activations and ResNet-20 CIFAR features
(feature cards with image thumbnails)."""

from __future__ import annotations

import time

from repscope.demo_context import DemoContext
from repscope.dictionary.runs import quantize_store, train_sae_on_store
from repscope.threads import limit_threads


def _layer(store, preferred: str) -> str:
    return preferred if preferred in store.layers else store.layers[-1]


def run(ctx: DemoContext) -> None:
    """Run this package's analyses on the demo stores and record their Results in ctx.db."""
    with limit_threads(1, blas=False):  # small matmuls: one thread beats two contended ones
        _run(ctx)


def _run(ctx: DemoContext) -> None:
    st = ctx.stores
    if "minilm_templates" in st:
        s = st["minilm_templates"]
        layer = _layer(s, "encoder.layer.3")
        t = time.perf_counter()
        res = train_sae_on_store(s, layer, arch="topk", k=16, expansion=2, n_steps=300, batch_size=256, lr=2e-3,
                                 seed=ctx.seed, device=ctx.device, target="topic", n_cards=8, resume=False,
                                 out=ctx.workdir / "sae" / f"{s.name}_{layer}_topk")
        ctx.db.record_result(res)
        m = res.metrics
        ctx.console.print(f"  SAE {s.name} · {layer}: FVU {m['fvu']:.3f}, L0 {m['mean_l0']:.1f}, "
                          f"dead {m['dead_fraction']:.1%}, probe drop {m.get('probe_acc_drop', float('nan')):+.3f} "
                          f"({time.perf_counter() - t:.1f}s)")
        for f in res.features[:3]:
            top = f["top"][0]["text"] if f["top"] else ""
            ctx.console.print(f"    latent {f['latent']}: {f['best_label']} (AUROC {f['best_auroc'] or 0:.2f}) · {top}")
        qr = quantize_store(s, layer, method="pq", bits=64, seed=ctx.seed, device=ctx.device, target="topic")
        ctx.db.record_result(qr)
        q = qr.metrics
        ctx.console.print(f"  PQ 64 bits: FVU {q['fvu']:.3f}, usage {q['codebook_usage']:.2f}, "
                          f"probe drop {q.get('probe_acc_drop', float('nan')):+.3f}")
    # extended: SST-2 text cards, and ResNet-20 cards with CIFAR thumbnails
    for name, wanted, k, expansion, steps, cards in (("minilm_sst2", "encoder.layer.5", 32, 4, 300, 12),
                                                     ("resnet20_cifar", "avgpool", 8, 4, 200, 8)):
        if not ctx.extended or name not in st:
            continue
        s = st[name]
        layer = _layer(s, wanted)
        res = train_sae_on_store(s, layer, arch="topk", k=k, expansion=expansion, n_steps=steps, batch_size=256,
                                 lr=2e-3, seed=ctx.seed, device=ctx.device, target="label", n_cards=cards,
                                 resume=False, out=ctx.workdir / "sae" / f"{s.name}_{layer}_topk")
        ctx.db.record_result(res)
        m = res.metrics
        ctx.console.print(f"  SAE {s.name} · {layer}: FVU {m['fvu']:.3f}, L0 {m['mean_l0']:.1f}, "
                          f"probe drop {m.get('probe_acc_drop', float('nan')):+.3f}")
