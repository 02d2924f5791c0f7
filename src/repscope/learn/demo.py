"""Demo step of repscope.learn: AE/β-VAE/QLAE on digits (default); with --extended also QLAE vs β-VAE on the
procedural shapes (3 seeds, InfoM/InfoC/MIG) and, when ../shared is present, SimCLR vs random init on CIFAR-10 subset a
and plain vs masked autoencoders on MNIST subset a (held-out linear-probe accuracy)."""

from __future__ import annotations

import time

from repscope.demo_context import DemoContext


def run(ctx: DemoContext) -> None:
    """Train the learners, record their rows, and log the headline numbers."""
    from repscope.learn.experiments import learners_on_digits, qlae_vs_vae, summarize

    t = time.perf_counter()
    res = learners_on_digits(seed=ctx.seed)
    ctx.db.record_result(res)
    acc = {r.model: r.value for r in res.rows if r.metric == "probe_accuracy"}
    ctx.console.print("learn: digits probe accuracy " + ", ".join(f"{k} {v:.3f}" for k, v in acc.items())
                      + f" ({time.perf_counter() - t:.1f}s)", highlight=False)
    if not ctx.extended:
        return
    t = time.perf_counter()
    res = qlae_vs_vae(n=2000, epochs=40, seeds=(0, 1, 2), device=ctx.device)
    ctx.db.record_result(res)
    s = summarize(res)
    for metric in ("infom", "infoc", "mig"):
        d = s[s["metric"] == metric].set_index("model")
        ctx.console.print(f"learn: shapes {metric}: " + ", ".join(
            f"{m} {d.loc[m, 'mean']:.3f} ± {d.loc[m, 'std']:.3f}" for m in d.index), highlight=False)
    ctx.console.print(f"learn: QLAE vs β-VAE in {time.perf_counter() - t:.0f}s")
    _shared_image_checks(ctx)


def _shared_image_checks(ctx: DemoContext) -> None:
    """SimCLR on CIFAR-10 subset a and masked vs plain AE on MNIST subset a (skipped without ../shared)."""
    import numpy as np

    from repscope.learn.experiments import autoencoder_modes, simclr_vs_random
    from repscope.paths import shared_data

    for rel, fn, kw in (("images/cifar10_test_a.npz", simclr_vs_random, {"epochs": 100, "temperature": 0.2}),
                        ("images/mnist_test_a.npz", autoencoder_modes, {"epochs": 15})):
        path = shared_data(*rel.split("/"))
        if path is None:
            ctx.console.print(f"learn: ../shared/data/{rel} not found, skipped")
            continue
        with np.load(path) as z:
            images, labels = z["images"][:2000], z["labels"][:2000].astype(np.int64)
        res = fn(images, labels, seed=ctx.seed, device=ctx.device, **kw)
        ctx.db.record_result(res)
        ctx.console.print(f"learn: {path.name} probe accuracy " + ", ".join(
            f"{r.model} {r.value:.3f}" for r in res.rows if r.metric == "probe_accuracy"), highlight=False)
