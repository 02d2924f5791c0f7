"""CLI commands of repscope.dictionary: `repscope sae train|inspect` and `repscope quantize`."""

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
    with_provenance,
)
from repscope.distributed.options import GpusPerWorkerOption, RayOption
from repscope.params import NonNegativeFloat, PositiveFloat, option_check

sae_app = typer.Typer(help="Sparse autoencoders and transcoders: train on a store layer, inspect features.",
                      no_args_is_help=True)


def _print_metrics(title: str, metrics: dict[str, float]) -> None:
    print_table(pd.DataFrame({"metric": list(metrics), "value": [float(v) for v in metrics.values()]}), "table",
                title=title)


def _features_table(features: list[dict]) -> pd.DataFrame:
    rows = []
    for f in features:
        best = f"{f['best_label']} ({f['best_auroc']:.2f})" if f.get("best_label") else ""
        tops = " | ".join((x.get("text") or f"#{x['row']}")[:40] for x in f["top"][:3])
        rows.append({"latent": f["latent"], "freq": f"{f['frequency']:.2%}", "best label (AUROC)": best,
                     "top samples": tops})
    return pd.DataFrame(rows, columns=["latent", "freq", "best label (AUROC)", "top samples"])


@sae_app.command("train")
def train(
    store: Path = typer.Argument(..., help="Store directory."),
    layer: str = typer.Option(..., "--layer", "-l",
                              help="Layer to encode; names or globs, comma separated, train one SAE per layer."),
    arch: str = choice_option("topk", "--arch", registry="repscope.dictionary.modules:ARCHS",
                              text="SAE architecture: {choices}."),
    k: int = typer.Option(32, "--k", help="Active latents per sample (topk, batchtopk, mp)."),
    expansion: float = typer.Option(16.0, "--expansion", callback=option_check(PositiveFloat),
                                    help="Latents = expansion × layer width."),
    n_latents: int = typer.Option(None, "--n-latents", min=1, help="Latents (overrides --expansion)."),
    l1_coeff: float = typer.Option(1.0, "--l1-coeff", "--l1", callback=option_check(NonNegativeFloat),
                                   help="L1 coefficient (relu arch)."),
    n_epochs: float = typer.Option(10.0, "--n-epochs", "--epochs", callback=option_check(PositiveFloat),
                                   help="Passes over the training rows."),
    n_steps: int = typer.Option(None, "--n-steps", "--steps", min=1, help="Optimizer steps (overrides --epochs)."),
    batch_size: int = typer.Option(4096, "--batch-size"),
    lr: float = typer.Option(None, "--lr", callback=option_check(PositiveFloat),
                             help="Learning rate (default: 2e-4·sqrt(16384/latents), capped)."),
    holdout_every: int = typer.Option(10, "--holdout-every", "--holdout",
                                      help="Hold out every N-th row for evaluation (0: none)."),
    dead_rows: str = typer.Option("eval", "--dead-rows",
                                  help="Rows for the dead/dense latent fractions: eval (the held-out rows FVU and L0 "
                                       "use, SAEBench's convention; default) or all."),
    target_layer: str = typer.Option(None, "--target-layer", help="Train a transcoder predicting this layer."),
    target: str = typer.Option(None, "--target", "--label",
                               help="Sample column for probe-after-reconstruction (--label: its old name)."),
    out: Path = typer.Option(None, "--out", "-o", help="Checkpoint directory (default sae/<store>_<layer>_<arch>); "
                             "with several layers, the folder holding one <store>_<layer>_<arch> per layer."),
    resume: bool = typer.Option(True, "--resume/--fresh",
                                help="Resume an existing checkpoint in --out (default), or ignore it (--fresh)."),
    n_cards: int = typer.Option(12, "--n-cards", min=0, help="Feature cards recorded for the report."),
    seed: int = typer.Option(0, "--seed"),
    fmt: str = FormatOption,
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
    ray: str = RayOption,
    gpus_per_worker: float = GpusPerWorkerOption,
) -> None:
    """Train an SAE (or transcoder) on a store layer; resumes from --out; records metrics and feature cards.

    Several layers (--layer 'encoder.layer.*') train one SAE each, in order, or as parallel Ray tasks with --ray.

    Example: repscope sae train runs/minilm_templates --layer encoder.layer.3 --arch topk --k 32 --expansion 16
    """
    from repscope.dictionary.layers import plan_sae_layers, sae_dirs
    from repscope.dictionary.runs import DEAD_ROWS, check_arch, check_run_params
    from repscope.distributed.executor import LocalExecutor, concat_results, executor_for
    from repscope.errors import ConfigError, check_choice
    from repscope.store import RepStore

    check_arch(arch, k)
    check_run_params(holdout_every, batch_size=batch_size)
    check_choice(dead_rows, DEAD_ROWS, "--dead-rows")
    s = RepStore.open(store)
    layer_list = s.resolve_layers(layer)
    if target_layer and len(layer_list) > 1:
        raise ConfigError(f"--target-layer trains one transcoder; give one --layer, not {len(layer_list)}")
    outs = sae_dirs(s.name, layer_list, arch, out)
    kw = {"arch": arch, "k": k, "expansion": expansion, "n_latents": n_latents, "l1_coeff": l1_coeff,
          "n_epochs": n_epochs, "n_steps": n_steps, "batch_size": batch_size, "lr": lr,
          "holdout_every": holdout_every, "seed": seed, "device": device, "resume": resume,
          "target_layer": target_layer, "target": target, "dead_rows": dead_rows, "n_cards": n_cards}
    executor = executor_for(ray, num_gpus=gpus_per_worker)  # one unit per layer, each writing its own folder
    results = executor.map(plan_sae_layers(s, layer_list, outs, progress=isinstance(executor, LocalExecutor), **kw))
    res = concat_results(results)
    rdb = open_db(db, study)
    rdb.record_result(with_provenance(res, s))
    if fmt == "table":
        for la, r in zip(layer_list, results, strict=True):
            _print_metrics(f"{s.name} · {la} · {arch}", r.metrics)
            print_table(_features_table(r.features[:8]), fmt, title="top features")
    else:
        print_result(res, fmt, rdb.study)
    for o in outs:
        console.print(f"saved to {o}")


@sae_app.command("inspect")
def inspect(
    sae_dir: Path = typer.Argument(..., help="Directory written by `repscope sae train`."),
    store: Path = typer.Option(None, "--store", help="Store to inspect on (default: the one it was trained on)."),
    layer: str = typer.Option(None, "--layer", help="Layer (default: the training layer)."),
    top: int = typer.Option(12, "--top", help="How many features to show."),
    target: str = typer.Option(None, "--target", "--label",
                               help="Only this sample column for best-AUROC labels (--label: its old name)."),
    fmt: str = FormatOption,
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
) -> None:
    """Show a trained SAE's top features: top-activating samples, frequency, best-AUROC label; records cards.

    Example: repscope sae inspect sae/minilm_templates_encoder.layer.3_topk --top 8
    """
    from repscope.dictionary.runs import card_result, inspect_store_features
    from repscope.dictionary.sae import SAE
    from repscope.errors import ConfigError
    from repscope.store import RepStore

    est = SAE.load(sae_dir, device=device)
    src = est.source_ or {}
    store_path = store or (Path(src["store"]) if src.get("store") else None)
    layer = layer or src.get("layer")
    if store_path is None or layer is None:
        raise ConfigError(f"'{sae_dir}' was not trained on a store; pass --store and --layer")
    s = RepStore.open(store_path)
    feats = inspect_store_features(est, s, layer, n_features=top, targets=[target] if target else None)
    print_table(_features_table(feats), fmt, title="top features")
    mod = est.module_
    open_db(db, study).record_result(card_result(s, layer, {"arch": mod.arch, "k": mod.k, "n_latents": mod.n_latents},
                                                 feats))


def quantize(
    store: Path = typer.Argument(..., help="Store directory."),
    layer: str = typer.Option(..., "--layer", "-l", help="Layer to quantize."),
    method: str = choice_option("pq", "--method", registry="repscope.dictionary.quantize:METHODS",
                                text="Quantizer: {choices}."),
    bits: int = typer.Option(64, "--bits", help="Bit budget per vector."),
    holdout_every: int = typer.Option(10, "--holdout-every", "--holdout",
                                      help="Hold out every N-th row for evaluation."),
    target: str = typer.Option(None, "--target", "--label",
                               help="Sample column for probe-after-reconstruction (--label: its old name)."),
    seed: int = typer.Option(0, "--seed"),
    fmt: str = FormatOption,
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
) -> None:
    """Learned discrete code of one layer (vector / product / residual / scalar / binary quantizer fitted on it):
    FVU, bits/vector, codebook usage/perplexity and probe drop. For float16/int8/binary storage of the embeddings
    themselves, see quantize-embeddings.

    Example: repscope quantize runs/minilm_templates --layer encoder.layer.5 --method pq --bits 64
    """
    from repscope.dictionary.runs import quantize_store
    from repscope.store import RepStore

    s = RepStore.open(store)
    res = quantize_store(s, layer, method=method, bits=bits, holdout_every=holdout_every, seed=seed, device=device,
                         target=target)
    rdb = open_db(db, study)
    rdb.record_result(with_provenance(res, s))
    if fmt == "table":
        _print_metrics(f"{s.name} · {layer} · {method} {bits} bits", res.metrics)
    else:
        print_result(res, fmt, rdb.study)


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
    app.add_typer(sae_app, name="sae")
    app.command("quantize")(quantize)
