"""CLI commands of repscope.compress: `truncate`, `adapter train|apply` and `quantize-embeddings`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from repscope.cli_common import (
    DbOption,
    DeviceOption,
    FormatOption,
    StudyOption,
    choice_option,
    console,
    open_db,
    print_result,
    print_table,
    split_csv,
    with_provenance,
)
from repscope.distributed.options import GpusPerWorkerOption, RayOption
from repscope.params import PositiveFloat, option_check

MaxRowsOption = typer.Option(20000, "--max-rows", min=0, help="Cap fit and eval rows each (seeded; 0 = all).")
SeedOption = typer.Option(0, "--seed")

adapter_app = typer.Typer(help="Matryoshka adapter on frozen embeddings: train on a store layer, apply to a store.",
                          no_args_is_help=True)


def _dims(value: str | None) -> list[int] | None:
    from repscope.compress.truncate import check_dims

    return check_dims(value, "--dims")


def _param(df: pd.DataFrame, *keys: str) -> pd.DataFrame:
    return df.assign(**{k: [p.get(k) for p in df["params"]] for k in keys})


def _note_labels(result, store) -> None:
    """Say on stderr when the label metrics were skipped because the store has no `label` column."""
    from repscope.compress.evaluate import DEFAULT_TARGET, is_pair_store, label_columns

    if result.rows and not any(r.params.get("target") for r in result.rows) and not is_pair_store(store.samples):
        console.print(f"no '{DEFAULT_TARGET}' column in {store.name}: label metrics skipped (pass --target, one of "
                      f"{', '.join(label_columns(store.samples.columns))})", highlight=False)


def truncate_cmd(
    store: Path = typer.Argument(..., help="Store directory."),
    target: str = typer.Option("label", "--target", "-t",
                               help="Label column (optional when it is 'label': STS pair stores score Spearman, "
                                    "stores without labels the neighbours kept, recall@k_vs_full)."),
    bases: str = typer.Option("raw,pca", "--bases", "--basis",
                              help="raw (first m coordinates) and/or pca (first m PCs)."),
    dims: str = typer.Option(None, "--dims", help="Prefix dims, comma separated (default 8, 16, 32, … and d)."),
    layers: str = typer.Option(None, "--layers", "-l", help="Layer names or globs, comma separated (default: all)."),
    k: int = typer.Option(10, "--k", min=1, help="Label retrieval recall@k."),
    max_rows: int = MaxRowsOption,
    seed: int = SeedOption,
    fmt: str = FormatOption,
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
    ray: str = RayOption,
    gpus_per_worker: float = GpusPerWorkerOption,
) -> None:
    """How small can the embedding get: probe accuracy, label retrieval and STS Spearman of the first m
    coordinates (raw) or principal components (pca, fit on the training split), per layer (MRL / 2DMSE grid).

    Example: repscope truncate runs/minilm_sst2 --target label --basis raw,pca --dims 16,32,64,128
    """
    from repscope.compress.study import combine_truncate_store, plan_truncate_store
    from repscope.compress.truncate import check_bases
    from repscope.distributed.executor import executor_for
    from repscope.store import RepStore

    bases = check_bases(bases)
    dim_list = _dims(dims)
    s = RepStore.open(store)
    kw = {"target": target, "layers": split_csv(layers), "bases": bases, "dims": dim_list, "ks": (k,), "seed": seed,
          "max_rows": max_rows or None, "device": device}
    units = plan_truncate_store(s, **kw)  # one unit per layer; the cross-layer summary on the driver
    parts = executor_for(ray, num_gpus=gpus_per_worker).map(units)
    result = combine_truncate_store(s, parts, target)
    rdb = open_db(db, study)
    rdb.record_result(with_provenance(result, s))
    console.print(f"truncation of {s.name}: {len(result.rows)} rows recorded in {rdb.path}", highlight=False)
    _note_labels(result, s)
    if fmt != "table":
        print_result(result, fmt, rdb.study)
        return
    df = result.frame()
    summ = _param(df[df["analysis"] == "truncate_summary"], "basis", "bytes_per_vector", "score", "best_full")
    print_table(summ[["basis", "metric", "layer", "value", "bytes_per_vector", "score", "best_full"]]
                .rename(columns={"value": "dim"}), fmt, title=f"smallest (layer, dim) keeping the score: {s.name}")


def quantize_embeddings_cmd(
    store: Path = typer.Argument(..., help="Store directory."),
    layers: str = typer.Option(None, "--layers", "--layer", "-l", help="Layer(s), comma separated (default: all)."),
    schemes: str = choice_option("int8,binary", "--schemes", registry="repscope.compress.quantize_embeddings:SCHEMES",
                                 text="Schemes, comma separated: {choices} (float32 is the reference)."),
    rescore: int = typer.Option(4, "--rescore", min=0, help="Rescore the top k·r candidates (0: no rescoring)."),
    k: int = typer.Option(10, "--k", min=1, help="Neighbours per query."),
    target: str = typer.Option("label", "--target", "-t",
                               help="Label column for label retrieval and the probe (optional when it is 'label': "
                                    "without one, recall@k vs float32 search only)."),
    probe: bool = typer.Option(True, "--probe/--no-probe", help="Also report probe accuracy on decoded codes."),
    ranking: str = typer.Option("cosine", "--ranking",
                                help="int8 search: cosine of decoded vectors (default) or sentence-transformers "
                                     "(code inner product, rescored without renormalising)."),
    max_rows: int = MaxRowsOption,
    seed: int = SeedOption,
    fmt: str = FormatOption,
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
    ray: str = RayOption,
    gpus_per_worker: float = GpusPerWorkerOption,
) -> None:
    """Embedding compression (float16 / int8 / packed-binary storage, no codebook): bytes per vector, recall@k
    vs exact float32 search, label recall@k, STS Spearman and probe accuracy, with Hamming search and float32
    rescoring of k·r candidates. For a learned discrete code (VQ / PQ) of a layer, see quantize.

    Example: repscope quantize-embeddings runs/minilm_sst2 --layer encoder.layer.5 --schemes int8,binary --rescore 4
    """
    from repscope.compress.quantize_embeddings import check_schemes
    from repscope.compress.quantized_eval import RANKINGS
    from repscope.compress.study import plan_quantize_embeddings_store
    from repscope.distributed.executor import executor_for
    from repscope.errors import check_choice
    from repscope.store import RepStore

    names = check_schemes(schemes)
    check_choice(ranking, RANKINGS, "--ranking")
    s = RepStore.open(store)
    kw = {"schemes": names, "rescore": rescore, "k": k, "target": target, "probe": probe, "seed": seed,
          "max_rows": max_rows or None, "device": device, "ranking": ranking}
    result = executor_for(ray, num_gpus=gpus_per_worker).run(plan_quantize_embeddings_store(s, split_csv(layers), **kw))
    rdb = open_db(db, study)
    rdb.record_result(with_provenance(result, s))
    console.print(f"quantization of {s.name}: {len(result.rows)} rows recorded in {rdb.path}", highlight=False)
    _note_labels(result, s)
    if fmt != "table":
        print_result(result, fmt, rdb.study)
        return
    df = _param(result.frame(), "scheme", "rescore", "bytes_per_vector")
    piv = df.pivot_table(index=["layer", "scheme", "rescore", "bytes_per_vector"], columns="metric", values="value",
                         aggfunc="first", sort=False).reset_index()
    print_table(piv, fmt, title=f"embedding quantization of {s.name} (rows recorded in {rdb.path})")


@adapter_app.command("train")
def adapter_train(
    store: Path = typer.Argument(..., help="Store directory."),
    layer: str = typer.Option(..., "--layer", "-l", help="Pooled layer to adapt."),
    objective: str = typer.Option("unsupervised", "--objective",
                                  help="unsupervised (keep pairwise cosines) or supervised (labels)."),
    target: str = typer.Option("label", "--target", "-t",
                               help="Label column (needed by supervised; optional when it is 'label': without "
                                    "labels or STS pairs the curves score the neighbours kept, recall@k_vs_full)."),
    kind: str = typer.Option("linear", "--kind", help="linear or mlp (residual)."),
    dims: str = typer.Option(None, "--dims", help="Prefix dims of the nested loss (default 8, 16, … and d)."),
    epochs: int = typer.Option(30, "--epochs", min=1),
    batch_size: int = typer.Option(512, "--batch-size", min=4),
    lr: float = typer.Option(1e-3, "--lr", callback=option_check(PositiveFloat), help="Learning rate."),
    out: Path = typer.Option(None, "--out", "-o", help="Adapter file (default adapters/<store>_<layer>.safetensors)."),
    apply_to: Path = typer.Option(None, "--apply-out", help="Also write the adapted store here."),
    overwrite: bool = typer.Option(False, "--overwrite",
                                   help="Replace an existing adapter file (and --apply-out store) repscope wrote."),
    max_rows: int = MaxRowsOption,
    seed: int = SeedOption,
    fmt: str = FormatOption,
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
) -> None:
    """Train a Matryoshka adapter (nested MRL loss over prefix dims) on the training rows of a layer, save it as
    safetensors and record truncation curves before (raw, PCA) and after (adapter) on held-out rows.

    Example: repscope adapter train runs/minilm_stsb --layer encoder.layer.5 --objective unsupervised
    """
    from repscope.compress.adapter import KINDS, OBJECTIVES
    from repscope.compress.store import adapter_store, apply_adapter
    from repscope.errors import check_choice, check_output_dir
    from repscope.store import RepStore
    from repscope.store.ownership import check_checkpoint_output, check_store_output

    check_choice(objective, OBJECTIVES, "adapter objective")
    check_choice(kind, KINDS, "adapter kind")
    dim_list = _dims(dims)
    s = RepStore.open(store)
    s.layer_info(layer)
    out = out or Path("adapters") / f"{s.name}_{layer.replace('/', '_')}.safetensors"
    check_output_dir(out.parent, "--out")
    check_checkpoint_output(out, overwrite=overwrite)
    if apply_to is not None:
        check_output_dir(apply_to, "--apply-out")
        check_store_output(apply_to, overwrite=overwrite, inputs=[store], option="--apply-out")
    result, model = adapter_store(s, layer, objective=objective, target=target, kind=kind, dims=dim_list,
                                  epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, max_rows=max_rows or None,
                                  device=device, out=out, progress=True)
    console.print(f"adapter saved to {out}", highlight=False)
    _note_labels(result, s)
    if apply_to is not None:
        adapted = apply_adapter(s, layer, out, apply_to, overwrite=overwrite)
        console.print(f"adapted store written to {adapted.root}", highlight=False)
    rdb = open_db(db, study)
    rdb.record_result(with_provenance(result, s))
    if fmt != "table":
        print_result(result, fmt, rdb.study)
        return
    df = _param(result.frame(), "method", "dim")
    piv = df.pivot_table(index=["metric", "method"], columns="dim", values="value", aggfunc="first").reset_index()
    piv.columns = [str(c) for c in piv.columns]
    print_table(piv, fmt, title=f"truncation before/after the adapter: {s.name} {layer}")


@adapter_app.command("apply")
def adapter_apply(
    store: Path = typer.Argument(..., help="Source store directory."),
    adapter: Path = typer.Argument(..., help="Adapter file written by `repscope adapter train`."),
    layer: str = typer.Option(..., "--layer", "-l", help="Layer the adapter was trained on."),
    out: Path = typer.Option(..., "--out", "-o", help="New store directory."),
    dim: int = typer.Option(None, "--dim", min=1, help="Keep only the first DIM adapted coordinates."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing repscope store at --out."),
) -> None:
    """Write a new store with the adapted embeddings of a layer; its provenance links the source store and adapter.

    Example: repscope adapter apply runs/minilm_stsb adapters/minilm_stsb_encoder.layer.5.safetensors
    --layer encoder.layer.5 --out runs/minilm_stsb_mrl --dim 64
    """
    from repscope.compress.store import apply_adapter
    from repscope.store import RepStore
    from repscope.store.ownership import check_store_output

    check_store_output(out, overwrite=overwrite, inputs=[store])
    s = RepStore.open(store)
    s.layer_info(layer)
    adapted = apply_adapter(s, layer, adapter, out, dim=dim, overwrite=overwrite)
    typer.echo(str(adapted.root))


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
    app.command("truncate")(truncate_cmd)
    app.command("quantize-embeddings")(quantize_embeddings_cmd)
    app.add_typer(adapter_app, name="adapter")
