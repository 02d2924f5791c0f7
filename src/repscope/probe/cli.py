"""CLI commands of repscope.probe: `probe` and `sts` (added to the main app by `register`, like every package)."""

from __future__ import annotations

from pathlib import Path

import typer

from repscope.cli_common import (
    DbOption,
    DeviceOption,
    FormatOption,
    MaxMemoryOption,
    StudyOption,
    choice_option,
    console,
    open_db,
    print_result,
    print_table,
    split_csv,
    with_provenance,
)
from repscope.distributed.options import RayOption


def probe_cmd(
    store: Path = typer.Argument(..., help="Store directory."),
    probes: str = choice_option("logistic", "--probes", "--probe", registry="repscope.probe.registry:PROBES",
                               text="Comma list of registered probes: {choices}."),
    target: str = typer.Option("label", "--target", help="Sample column to predict (label or a factor)."),
    cv: int = typer.Option(0, "--cv", help="k-fold CV (0: the store's split column, else a stratified holdout)."),
    layers: str = typer.Option(None, "--layers", help="Layer names/globs, comma separated (default: all)."),
    few_shot: bool = typer.Option(False, "--few-shot", help="Also run a few-shot curve on the best layer."),
    retrieval: bool = typer.Option(False, "--retrieval", help="Also run label retrieval (recall@k, mAP, nDCG)."),
    threshold: float = typer.Option(0.9, "--threshold", help="Concept depth: fraction of the best score."),
    test_size: float = typer.Option(0.25, "--test-size", help="Holdout fraction when there is no split/CV."),
    seed: int = typer.Option(0, "--seed", help="Seed for splits and few-shot draws."),
    max_memory: str = MaxMemoryOption,
    fmt: str = FormatOption,
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
    ray: str = RayOption,
) -> None:
    """Probe every layer of a store for a target; write accuracy with CI and concept depth to the results DB.

    Tables go to stdout (--format csv/json: the recorded rows), progress to stderr.

    Example: repscope probe runs/minilm_templates --probe logistic,nb,knn --target sentiment --cv 5 --few-shot
    """
    from repscope.errors import ConfigError
    from repscope.probe.protocols import as_table, concept_depth, few_shot_curve, retrieval_sweep
    from repscope.store import RepStore, pooled_layers

    if cv < 0 or cv == 1:
        raise ConfigError(f"--cv {cv}: use 0 (the store's split column, else a holdout) or k >= 2 folds")
    if not 0 < test_size < 1:
        raise ConfigError(f"--test-size {test_size}: the holdout fraction must be in (0, 1), e.g. 0.25")
    s = RepStore.open(store)
    probes = split_csv(probes) or ["logistic"]
    layer_list = pooled_layers(s, layers, "probing")
    from repscope.distributed.executor import executor_for
    from repscope.probe.study import plan_sweep

    result = executor_for(ray).run(plan_sweep(s, probes, target, layer_list, cv=cv or None, test_size=test_size,
                                              seed=seed, device=device, max_memory=max_memory))
    sweep = as_table(result)
    main_metric = sweep["metric"].iloc[0]
    piv = sweep[sweep["metric"] == main_metric].pivot_table(index="layer", columns="probe", values="value")
    tables = [(piv.reindex(index=layer_list, columns=list(dict.fromkeys(sweep["probe"]))).reset_index(),
               f"{s.name}: {target} {main_metric} ({sweep['eval'].iloc[0]})")]
    if main_metric == "accuracy":
        depth = concept_depth(sweep, layer_list, threshold=threshold, model=s.model)
        result.extend(depth)
        tables.append((_depth_table(as_table(depth)), f"concept depth (threshold {threshold})"))
        from repscope.probe.registry import is_regression

        classifier_probes = [p for p in dict.fromkeys(sweep["probe"]) if not is_regression(p)]
        if few_shot and classifier_probes:
            best = piv[classifier_probes[0]].idxmax()
            fs = few_shot_curve(s, best, classifier_probes, target, seed=seed, device=device)
            result.extend(fs)
            cols = ["probe", "shots", "value", "ci_low", "ci_high"]
            tables.append((as_table(fs)[cols], f"few-shot accuracy @ {best} (examples per class)"))
    if retrieval:
        rt = retrieval_sweep(s, target, layer_list, device=device, max_memory=max_memory, seed=seed)
        result.extend(rt)
        tables.append((as_table(rt).pivot_table(index="layer", columns="metric", values="value")
                       .reindex(layer_list).reset_index(), "label retrieval"))
    rdb = open_db(db, study)  # only once there is something to record: a bad option leaves no DB file behind
    rdb.record_result(with_provenance(result, s))
    if fmt == "table":
        for df, title in tables:
            print_table(df, fmt, title=title)
    else:
        print_result(result, fmt, rdb.study)
    console.print(f"[green]wrote[/] {len(result)} probe rows to {rdb.path}")


def _depth_table(depth):
    wide = depth.pivot_table(index=["probe", "best_layer"], columns="metric", values="value").reset_index()
    layers = depth[depth["metric"] == "depth"].set_index("probe")["layer"]
    wide.insert(1, "depth layer", wide["probe"].map(layers))
    return wide[["probe", "depth layer", "depth", "relative_depth", "best", "best_layer"]]


def sts_cmd(
    store: Path = typer.Argument(..., help="Store with sample columns pair, side (0/1) and score."),
    layers: str = typer.Option(None, "--layers", help="Layer names/globs, comma separated (default: all)."),
    max_memory: str = MaxMemoryOption,
    fmt: str = FormatOption,
    db: Path = DbOption,
    study: str = StudyOption,
) -> None:
    """Semantic textual similarity: Spearman of pair cosine vs gold score, per layer, into the results DB.

    Example: repscope sts runs/minilm_stsb --layers 'encoder.layer.*'
    """
    from repscope.probe.protocols import sts_sweep
    from repscope.store import RepStore

    s = RepStore.open(store)
    rdb = open_db(db, study)
    result = sts_sweep(s, s.resolve_layers(layers), max_memory=max_memory)
    rdb.record_result(with_provenance(result, s))
    if fmt == "table":
        df = result.frame()[["layer", "value"]].rename(columns={"value": "spearman"})
        print_table(df, fmt, title=f"{s.name}: STS Spearman")
    else:
        print_result(result, fmt, rdb.study)
    console.print(f"[green]wrote[/] STS results to {rdb.path}")


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
    app.command("probe")(probe_cmd)
    app.command("sts")(sts_cmd)
