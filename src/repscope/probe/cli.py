"""CLI commands of repscope.probe (registered onto the main Typer app by repscope.cli)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from repscope.cli_common import DbOption, DeviceOption, StudyOption, console, open_db, split_csv


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""

    @app.command("probe")
    def probe_cmd(
        store: Path = typer.Argument(..., help="Store directory."),
        probe: str = typer.Option("logistic", "--probe", help="Comma list of logistic, nb, lda, knn, sparse, ridge."),
        target: str = typer.Option("label", "--target", help="Sample column to predict (label or a factor)."),
        cv: int = typer.Option(0, "--cv", help="k-fold CV (0: the store's split column, else a stratified holdout)."),
        layers: str = typer.Option(None, "--layers", help="Layer names/globs, comma separated (default: all)."),
        few_shot: bool = typer.Option(False, "--few-shot", help="Also run a few-shot curve on the best layer."),
        retrieval: bool = typer.Option(False, "--retrieval", help="Also run label retrieval (recall@k, mAP, nDCG)."),
        threshold: float = typer.Option(0.9, "--threshold", help="Concept depth: fraction of the best score."),
        test_size: float = typer.Option(0.25, "--test-size", help="Holdout fraction when there is no split/CV."),
        seed: int = typer.Option(0, "--seed", help="Seed for splits and few-shot draws."),
        device: str = DeviceOption,
        db: Path = DbOption,
        study: str = StudyOption,
    ) -> None:
        """Probe every layer of a store for a target; write accuracy with CI and concept depth to the results DB.

        Example: repscope probe runs/minilm_templates --probe logistic,nb,knn --target sentiment --cv 5 --few-shot
        """
        from repscope.probe.protocols import concept_depth, few_shot_curve, layer_sweep, retrieval_sweep
        from repscope.store import RepStore

        s = RepStore.open(store)
        rdb = open_db(db, study)
        probes = split_csv(probe) or ["logistic"]
        layer_list = s.resolve_layers(layers)
        sweep = layer_sweep(s, probes, target, layer_list, cv=cv or None, test_size=test_size, seed=seed, db=rdb,
                            device=device)
        t = Table(title=f"{s.name}: {target} ({sweep['mode'].iloc[0]})")
        t.add_column("layer")
        for p in dict.fromkeys(sweep["probe"]):
            t.add_column(p)
        main_metric = sweep["metric"].iloc[0]
        piv = sweep[sweep["metric"] == main_metric].pivot_table(index="layer", columns="probe", values="value")
        for layer in layer_list:
            t.add_row(layer, *[f"{piv.loc[layer, p]:.3f}" if p in piv.columns else "" for p in
                               dict.fromkeys(sweep["probe"])])
        console.print(t)
        if main_metric == "accuracy":
            depth = concept_depth(sweep, layer_list, threshold=threshold, db=rdb, model=s.model)
            for r in depth.itertuples():
                console.print(f"concept depth ({r.probe}): {r.depth_layer} (layer {r.depth}, relative "
                              f"{r.relative_depth:.2f}); best {r.best:.3f} at {r.best_layer}")
            classifier_probes = [p for p in dict.fromkeys(sweep["probe"]) if p != "ridge"]
            if few_shot and classifier_probes:
                best = piv[classifier_probes[0]].idxmax()
                fs = few_shot_curve(s, best, classifier_probes, target, seed=seed, db=rdb, device=device)
                for r in fs.itertuples():
                    console.print(f"few-shot {r.probe} n={r.shots}/class @ {best}: {r.value:.3f} "
                                  f"[{r.ci_low:.3f}, {r.ci_high:.3f}]")
        if retrieval:
            rt = retrieval_sweep(s, target, layer_list, db=rdb, device=device)
            for r in rt[rt["metric"] == "mAP"].itertuples():
                console.print(f"retrieval mAP @ {r.layer}: {r.value:.3f}")
        console.print(f"[green]wrote[/] probe results to {rdb.path}")

    @app.command("sts")
    def sts_cmd(
        store: Path = typer.Argument(..., help="Store with sample columns pair, side (0/1) and score."),
        layers: str = typer.Option(None, "--layers", help="Layer names/globs, comma separated (default: all)."),
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
        res = sts_sweep(s, s.resolve_layers(layers), db=rdb)
        t = Table(title=f"{s.name}: STS Spearman")
        t.add_column("layer")
        t.add_column("spearman")
        for r in res.itertuples():
            t.add_row(r.layer, f"{r.value:.4f}")
        console.print(t)
        console.print(f"[green]wrote[/] STS results to {rdb.path}")
