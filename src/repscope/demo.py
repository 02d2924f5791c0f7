"""`repscope demo`: the default study on a fresh machine (no ../shared needed), and `--extended` with shared data.

Default: digits MLP × 3 seeds (all layers) and MiniLM (7 hidden states, masked-mean) on 2,000 template sentences,
then every analysis package's demo step, then report.html. Extended adds MiniLM on SST-2, TREC and STS-B and the
CIFAR ResNet-20/56 on the CIFAR-10 subset.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from repscope.analyses import plugins
from repscope.demo_context import DemoContext
from repscope.errors import RepscopeError, StoreError
from repscope.extract import extract
from repscope.paths import shared_data
from repscope.report.build import build_report
from repscope.report.provenance import record_stores
from repscope.results import ResultsDB
from repscope.sources.datasets import Dataset, TextDataset, load_sts_pairs, load_tsv_text
from repscope.store import RepStore

N_TEMPLATES = int(os.environ.get("REPSCOPE_DEMO_N", "2000"))  # smaller in smoke tests


def _cached_store(ctx: DemoContext, name: str, build: Callable[[Path], RepStore]) -> None:
    """Reuse a complete store of that name in the workdir, else build (or resume) it."""
    path = ctx.workdir / "stores" / name
    try:
        ctx.stores[name] = RepStore.open(path)
        ctx.console.print(f"reusing store {path}")
        return
    except StoreError:
        pass
    t = time.perf_counter()
    ctx.stores[name] = build(path)
    ctx.console.print(f"[green]store[/] {name}: {ctx.stores[name].n_rows} rows in {time.perf_counter() - t:.1f}s")


def _concat_text(parts: list[TextDataset], name: str) -> TextDataset:
    df = pd.concat([p.samples for p in parts], ignore_index=True)
    cols = {c: df[c].to_numpy() for c in df.columns if c not in ("id", "text", "split")}
    return TextDataset(df["text"].tolist(), cols, name=name, split=df["split"].tolist())


def default_stores(ctx: DemoContext) -> None:
    """Digits MLP seeds 0–2 and MiniLM on template sentences."""
    from repscope.sources.datasets import load_sklearn
    from repscope.sources.models import TorchModuleAdapter
    from repscope.sources.templates import generate_sentences
    from repscope.sources.zoo.minilm import load_minilm
    from repscope.sources.zoo.mlp import train_digits_mlp

    digits = load_sklearn("digits")
    rng = np.random.default_rng(0)
    digits.samples["split"] = np.where(rng.random(len(digits)) < 0.8, "train", "test")
    for seed in range(3):
        _cached_store(ctx, f"digits_mlp_s{seed}", lambda p, seed=seed: extract(
            TorchModuleAdapter(train_digits_mlp(seed), device=ctx.device), digits, p, seed=seed))
    templates = generate_sentences(N_TEMPLATES, seed=ctx.seed)
    _cached_store(ctx, "minilm_templates", lambda p: extract(
        load_minilm(ctx.device), templates, p, pooling="masked-mean", seed=ctx.seed))


def extended_stores(ctx: DemoContext) -> None:
    """MiniLM on SST-2/TREC/STS-B and ResNet-20/56 on CIFAR-10 (needs ../shared/data)."""
    from repscope.sources.datasets import NpzImages
    from repscope.sources.models import TorchModuleAdapter
    from repscope.sources.zoo.minilm import load_minilm
    from repscope.sources.zoo.resnet_cifar import cifar_transform, load_cifar_resnet

    if shared_data("text", "sst2", "dev.tsv") is None:
        raise StoreError("--extended needs ../shared/data; set REPSCOPE_SHARED to the shared folder")
    minilm = load_minilm(ctx.device)
    text_sets: dict[str, Dataset] = {
        "minilm_sst2": _concat_text([load_tsv_text(shared_data("text", "sst2", "train.tsv"), limit=2000),
                                     load_tsv_text(shared_data("text", "sst2", "dev.tsv"))], "sst2"),
        "minilm_trec": _concat_text([load_tsv_text(shared_data("text", "trec", "train.tsv"), limit=2000),
                                     load_tsv_text(shared_data("text", "trec", "test.tsv"))], "trec"),
        "minilm_stsb": load_sts_pairs(shared_data("text", "stsb", "dev.tsv")),
    }
    for name, ds in text_sets.items():
        _cached_store(ctx, name, lambda p, ds=ds: extract(minilm, ds, p, pooling="masked-mean"))
    cifar = NpzImages(shared_data("images", "cifar10_test_a.npz"))
    for depth in (20, 56):
        _cached_store(ctx, f"resnet{depth}_cifar", lambda p, depth=depth: extract(
            TorchModuleAdapter(load_cifar_resnet(depth), transform=cifar_transform, modality="image",
                               device=ctx.device),
            cifar, p, layers="conv1,layer?.?,avgpool", pooling="spatial-mean", batch_size=200, chunk_rows=400))


def run_demo(out: str | Path = "demo_out", extended: bool = False, device: str = "auto", fresh: bool = True,
             steps: list[str] | None = None) -> Path:
    """Build the demo stores, run each plugin's demo step (pipeline order), write report.html; returns its path.

    `steps` limits the run to the named plugins (`repscope.analyses.PLUGINS`)."""
    from repscope.errors import OutputError
    from repscope.results.connect import is_results_db
    from repscope.store.ownership import check_report_output

    workdir = Path(out)
    check_report_output(workdir / "report.html", option="--out")  # refused before any work, not at the end
    db_path = workdir / "repscope.duckdb"
    if fresh and db_path.exists():
        if not is_results_db(db_path):
            raise OutputError(f"'{db_path}' is not a repscope results DB; repscope never deletes it: move it away or "
                              "choose another --out")
        db_path.unlink()
    workdir.mkdir(parents=True, exist_ok=True)
    ctx = DemoContext(workdir=workdir, db=ResultsDB(db_path, study="demo"), extended=extended, device=device)
    t0 = time.perf_counter()
    default_stores(ctx)
    if extended:
        extended_stores(ctx)
    record_stores(ctx.db, ctx.stores)  # provenance cards of the report
    failed = []
    chosen = [p for p in plugins() if p.demo is not None and (steps is None or p.name in steps)]
    unknown = set(steps or ()) - {p.name for p in plugins()}
    if unknown:
        raise RepscopeError(f"unknown demo step(s) {', '.join(sorted(unknown))}; choose from "
                            f"{', '.join(p.name for p in plugins() if p.demo is not None)}")
    for plugin in chosen:
        t = time.perf_counter()
        ctx.console.rule(plugin.name)
        try:
            plugin.run_demo(ctx)
        except Exception as err:  # keep going so the report still shows the other analyses; re-raised below
            failed.append(f"{plugin.name}: {type(err).__name__}: {err}")
            ctx.console.print(f"[red]demo step {plugin.name} failed:[/] {err}")
        ctx.console.print(f"{plugin.name} done in {time.perf_counter() - t:.1f}s")
    report = build_report(ctx.db, workdir / "report.html", title="repscope demo" + (" (extended)" if extended else ""))
    ctx.console.print(f"demo finished in {time.perf_counter() - t0:.0f}s")
    if failed:
        raise RepscopeError("demo steps failed: " + " | ".join(failed) + f"; the report of the rest is {report}")
    return report
