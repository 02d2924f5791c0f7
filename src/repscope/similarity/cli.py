"""CLI commands of repscope.similarity: `compare` (layer × layer matrices) and `match` (neuron matching)."""

from __future__ import annotations

from pathlib import Path

import typer

from repscope.cli_common import (
    DbOption,
    DeviceOption,
    FormatOption,
    MaxMemoryOption,
    PairByOption,
    StudyOption,
    UnpairedOption,
    choice_option,
    console,
    open_db,
    print_result,
    print_table,
    with_provenance,
)
from repscope.distributed.options import RayOption


def _print_matrix(title: str, mat) -> None:
    print_table(mat.rename_axis("A \\ B").reset_index(), "table", title=title)


def compare(
    store_a: Path = typer.Argument(None, help="Store directory (A); not needed with --list."),
    store_b: Path = typer.Argument(None, help="Second store (B); omit to compare A's layers with each other."),
    measures: str = choice_option("cka", "--measures", "--measure", "-m",
                                  registry="repscope.similarity.registry:MEASURES",
                                  text="Comma-separated registered measures (cka = linear_cka): {choices}."),
    layers: str = typer.Option(None, "--layers", help="Layers of A (names or globs, comma-separated; default all)."),
    layers_b: str = typer.Option(None, "--layers-b", help="Layers of B (default: all of B; in one store: --layers)."),
    max_rows: int = typer.Option(5000, "--max-rows", help="Use a seeded random subset of at most this many rows."),
    streaming: bool = typer.Option(False, "--streaming", help="Exact linear CKA over store chunks (any n; "
                                                               "only cka/debiased_cka)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the row subset."),
    max_memory: str = MaxMemoryOption,
    pair_by: str = PairByOption,
    unpaired: bool = UnpairedOption,
    list_measures: bool = typer.Option(False, "--list", help="List the registered measures and exit."),
    fmt: str = FormatOption,
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
    ray: str = RayOption,
) -> None:
    """Layer × layer similarity within one store or across two; rows go to the results DB (analysis 'similarity').

    Example: repscope compare runs/digits_mlp_s0 runs/digits_mlp_s1 --measure cka,pwcca,procrustes,mknn
    """
    import click

    from repscope.distributed.executor import executor_for
    from repscope.similarity.matrix import result_matrices
    from repscope.similarity.plan import plan_compare
    from repscope.similarity.registry import measures as find_measures
    from repscope.store import RepStore
    from repscope.store.pairing import pair_stores

    if list_measures:
        for m in find_measures(None):
            typer.echo(f"{m.name:16s} {m.kind:10s} {m.paper}")
        return
    if store_a is None:
        raise click.UsageError("Missing argument 'STORE_A'.")
    a0 = RepStore.open(store_a)
    b0 = RepStore.open(store_b) if store_b is not None else None
    names = [m.name for m in find_measures(measures)]  # unknown names fail here, before any data is read
    paired = pair_stores([s for s in (a0, b0) if s is not None], pair_by=pair_by, unpaired=unpaired)
    a, b = paired[0], (paired[1] if b0 is not None else None)
    rdb = open_db(db, study)
    if not streaming and max_rows < a.n_rows:
        console.print(f"using a seeded subset of {max_rows} of {a.n_rows} rows (--max-rows)")
    plan = plan_compare(a, b, names, layers, layers_b, max_rows=max_rows, seed=seed, device=device,
                        max_memory=max_memory, streaming=streaming)
    result = executor_for(ray).run(plan.units, plan.combine)
    note = f" (streaming, n={a.n_rows})" if streaming else f" ({a.name}{'' if b is None else ' vs ' + b.name})"
    n = rdb.record_result(with_provenance(result, a0, b0))
    if fmt == "table":
        for name, mat in result_matrices(result).items():
            _print_matrix(name + note, mat)
    else:
        print_result(result, fmt, rdb.study)
    console.print(f"recorded {n} rows in {rdb.path}")


def match(
    store_a: Path = typer.Argument(..., help="Store directory (A)."),
    store_b: Path = typer.Argument(..., help="Store directory (B), same samples as A."),
    layer: str = typer.Option(..., "--layer", help="Layer of A (and of B unless --layer-b)."),
    layer_b: str = typer.Option(None, "--layer-b", help="Layer of B (default: same name as --layer)."),
    lasso: bool = typer.Option(False, "--lasso", help="Also fit the one-to-many Lasso map (held-out R²)."),
    alpha: float = typer.Option(0.01, "--alpha", help="Lasso penalty on standardised neurons."),
    max_rows: int = typer.Option(5000, "--max-rows", help="Use a seeded random subset of at most this many rows."),
    pair_by: str = PairByOption,
    unpaired: bool = UnpairedOption,
    fmt: str = FormatOption,
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
) -> None:
    """Match neurons one-to-one by correlation (Hungarian) and record the matched-correlation curve.

    Example: repscope match runs/digits_mlp_s0 runs/digits_mlp_s1 --layer act2 --lasso
    """
    from repscope.similarity.layer_pairs import match_layer_pair
    from repscope.similarity.matrix import pick_rows
    from repscope.store import RepStore
    from repscope.store.pairing import pair_stores

    a0, b0 = RepStore.open(store_a), RepStore.open(store_b)
    a, b = pair_stores([a0, b0], pair_by=pair_by, unpaired=unpaired)
    lb = layer_b or layer
    a.layer_info(layer)
    b.layer_info(lb)
    rdb = open_db(db, study)
    result = match_layer_pair(a, b, layer, lb, rows=pick_rows(a, b, max_rows), lasso=lasso, alpha=alpha,
                              device=device)
    rdb.record_result(with_provenance(result, a0, b0))
    if fmt == "table":
        print_table(result.frame()[["metric", "value"]], fmt, title=f"{a.name}:{layer} vs {b.name}:{lb}")
    else:
        print_result(result, fmt, rdb.study)


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
    app.command("compare")(compare)
    app.command("match")(match)
