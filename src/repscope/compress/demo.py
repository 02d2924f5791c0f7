"""Demo step of repscope.compress: truncation and embedding quantization of MiniLM on the template sentences
(default demo); on the shared data also SST-2 truncation/quantization and the Matryoshka adapter on STS-B."""

from __future__ import annotations

import time

from repscope.demo_context import DemoContext

DEMO_LAYERS = "embeddings,encoder.layer.1,encoder.layer.3,encoder.layer.5"
FINAL = "encoder.layer.5"
DEMO_DIMS = (8, 16, 32, 64, 128)


def _log_summary(ctx: DemoContext, result, metric: str) -> None:
    df = result.frame()
    s = df[(df["analysis"] == "truncate_summary") & (df["metric"] == f"{metric}@95%")]
    for _, r in s.iterrows():
        p = r["params"]
        ctx.console.print(f"compress: {r['store']} {metric} ≥95% of best ({p['best_full']:.3f}) at {r['layer']} "
                          f"m={int(r['value'])} ({p['basis']}, {p['bytes_per_vector']} B/vector)", highlight=False)


def _log_quant(ctx: DemoContext, result, metric: str) -> None:
    df = result.frame()
    for _, r in df[df["metric"] == metric].iterrows():
        p = r["params"]
        rs = f"+rescore×{p['rescore']}" if p["rescore"] else ""
        ctx.console.print(f"compress: {r['store']} {p['scheme']}{rs} ({p['bytes_per_vector']} B): {metric} "
                          f"{r['value']:.3f}", highlight=False)


def run(ctx: DemoContext) -> None:
    """Truncation grid and quantization of MiniLM template sentences (target: topic); extended: SST-2, STS-B."""
    from repscope.compress.store import adapter_store, quantize_embeddings_store
    from repscope.compress.truncate import truncate_store

    store = ctx.stores.get("minilm_templates")
    if store is None:
        ctx.console.print("compress: store minilm_templates not in this demo, skipped")
    else:
        t = time.perf_counter()
        width = int(store.layer_info(FINAL)["shape"][-1])
        res = truncate_store(store, target="topic", layers=DEMO_LAYERS, dims=[m for m in DEMO_DIMS if m < width],
                             seed=ctx.seed, device=ctx.device)
        ctx.db.record_result(res)
        _log_summary(ctx, res, "accuracy")
        q = quantize_embeddings_store(store, FINAL, schemes="float16,int8,binary", rescore=4, target="topic",
                                      seed=ctx.seed, device=ctx.device)
        ctx.db.record_result(q)
        _log_quant(ctx, q, "recall@10_vs_float32")
        ctx.console.print(f"compress: templates in {time.perf_counter() - t:.1f}s")
    if not ctx.extended:
        return
    t = time.perf_counter()
    if "minilm_sst2" in ctx.stores:
        s = ctx.stores["minilm_sst2"]
        res = truncate_store(s, target="label", seed=ctx.seed, device=ctx.device)
        ctx.db.record_result(res)
        _log_summary(ctx, res, "accuracy")
        q = quantize_embeddings_store(s, FINAL, schemes="float16,int8,binary", rescore=4, seed=ctx.seed,
                                      device=ctx.device)
        ctx.db.record_result(q)
        _log_quant(ctx, q, "label_recall@10")
    if "minilm_stsb" in ctx.stores:
        s = ctx.stores["minilm_stsb"]
        ctx.db.record_result(truncate_store(s, target=None, seed=ctx.seed, device=ctx.device))
        res, _ = adapter_store(s, FINAL, objective="unsupervised", target=None, seed=ctx.seed, device=ctx.device,
                               out=ctx.workdir / "adapters" / "minilm_stsb_unsupervised.safetensors")
        ctx.db.record_result(res)
        df = res.frame()
        at64 = {p["method"]: v for p, v, m in zip(df["params"], df["value"], df["metric"], strict=True)
                if p["dim"] == 64 and m == "spearman"}
        ctx.console.print("compress: STS-B Spearman at 64 dims " + ", ".join(f"{k} {v:.4f}" for k, v in at64.items()),
                          highlight=False)
    ctx.console.print(f"compress: extended in {time.perf_counter() - t:.1f}s")
