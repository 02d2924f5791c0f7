"""CLI commands of repscope.similarity: `compare` (layer × layer matrices) and `match` (neuron matching)."""

from __future__ import annotations

import time
from pathlib import Path

import typer
from rich.table import Table

from repscope.cli_common import DbOption, DeviceOption, StudyOption, console, open_db


def _print_matrix(title: str, mat) -> None:
    from rich.console import Console

    t = Table(title=title)
    t.add_column("A \\ B")
    for c in mat.columns:
        t.add_column(str(c))
    for idx, row in mat.iterrows():
        t.add_row(str(idx), *[f"{v:.3f}" for v in row.to_numpy()])
    Console().print(t)


def compare(
    store_a: Path = typer.Argument(..., help="Store directory (A)."),
    store_b: Path = typer.Argument(None, help="Second store (B); omit to compare A's layers with each other."),
    measure: str = typer.Option("cka", "--measure", "-m",
                                help="Comma-separated measures: cka, debiased_cka, rbf_cka, mean_cca, svcca, pwcca, "
                                     "procrustes, shape_angular, shape_cca, rsa, rsa_corr, mknn, knn_jaccard, cknna."),
    layers: str = typer.Option(None, "--layers", help="Layers of A (names or globs, comma-separated; default all)."),
    layers_b: str = typer.Option(None, "--layers-b", help="Layers of B (default: all of B; in one store: --layers)."),
    max_rows: int = typer.Option(5000, "--max-rows", help="Use a seeded random subset of at most this many rows."),
    streaming: bool = typer.Option(False, "--streaming", help="Exact linear CKA over store chunks (any n; "
                                                               "only cka/debiased_cka)."),
    seed: int = typer.Option(0, "--seed", help="Seed of the row subset."),
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
) -> None:
    """Layer × layer similarity within one store or across two; rows go to the results DB (analysis 'similarity').

    Example: repscope compare runs/digits_mlp_s0 runs/digits_mlp_s1 --measure cka,pwcca,procrustes,mknn
    """
    from repscope.errors import ConfigError
    from repscope.similarity.matrix import compare_stores, matrix_rows
    from repscope.similarity.registry import measures
    from repscope.similarity.streaming import streaming_cka_matrix
    from repscope.store import RepStore

    a = RepStore.open(store_a)
    b = RepStore.open(store_b) if store_b is not None else None
    ms = measures(measure)
    rdb = open_db(db, study)
    if streaming:
        bad = [m.name for m in ms if m.name not in ("linear_cka", "debiased_cka")]
        if bad:
            raise ConfigError(f"--streaming computes only cka and debiased_cka, not {', '.join(bad)}; drop them "
                              "or leave out --streaming")
        rows = []
        for m in ms:
            t0 = time.perf_counter()
            mat = streaming_cka_matrix(a, b, layers, layers_b, debiased=m.name == "debiased_cka", device=device)
            secs = (time.perf_counter() - t0) / mat.size
            label = a.name if b is None else f"{a.name} vs {b.name}"
            params = {"measure": m.name, "kind": m.kind, "n": a.n_rows, "store_b": (b or a).name, "streaming": True}
            rows += matrix_rows(mat, m.name, label, a.model, params, secs)
            _print_matrix(f"{m.name} (streaming, n={a.n_rows})", mat)
    else:
        if max_rows < a.n_rows:
            console.print(f"using a seeded subset of {max_rows} of {a.n_rows} rows (--max-rows)")
        mats, rows = compare_stores(a, b, [m.name for m in ms], layers, layers_b, max_rows=max_rows, seed=seed,
                                    device=device)
        for name, mat in mats.items():
            _print_matrix(f"{name} ({a.name}{'' if b is None else ' vs ' + b.name})", mat)
    n = rdb.record_rows(rows)
    console.print(f"recorded {n} rows in {rdb.path}")


def match(
    store_a: Path = typer.Argument(..., help="Store directory (A)."),
    store_b: Path = typer.Argument(..., help="Store directory (B), same samples as A."),
    layer: str = typer.Option(..., "--layer", help="Layer of A (and of B unless --layer-b)."),
    layer_b: str = typer.Option(None, "--layer-b", help="Layer of B (default: same name as --layer)."),
    lasso: bool = typer.Option(False, "--lasso", help="Also fit the one-to-many Lasso map (held-out R²)."),
    alpha: float = typer.Option(0.01, "--alpha", help="Lasso penalty on standardised neurons."),
    max_rows: int = typer.Option(5000, "--max-rows", help="Use a seeded random subset of at most this many rows."),
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
) -> None:
    """Match neurons one-to-one by correlation (Hungarian) and record the matched-correlation curve.

    Example: repscope match runs/digits_mlp_s0 runs/digits_mlp_s1 --layer act2 --lasso
    """
    from repscope.similarity.matrix import load_layers, pick_rows
    from repscope.store import RepStore

    a, b = RepStore.open(store_a), RepStore.open(store_b)
    lb = layer_b or layer
    a.layer_info(layer)
    b.layer_info(lb)
    rows = pick_rows(a, b, max_rows)
    xa, xb = load_layers(a, [layer], rows)[layer], load_layers(b, [lb], rows)[lb]
    rdb = open_db(db, study)
    recs = match_rows(a.name, b.name, a.model, layer, lb, xa, xb, lasso=lasso, alpha=alpha, device=device)
    rdb.record_rows(recs["rows"])
    rdb.record_artifact("neuron_match", recs["artifact_name"], recs["artifact"])
    for r in recs["rows"]:
        console.print(f"{r.metric}: {r.value:.4f}")


def match_rows(name_a: str, name_b: str, model: str, layer: str, layer_b: str, xa, xb, lasso: bool = False,
               alpha: float = 0.01, device: str = "auto") -> dict:
    """Neuron matching of one layer pair as result rows plus the curve artifact (shared by the CLI and demo)."""
    import numpy as np

    from repscope.results import Row
    from repscope.similarity.neurons import lasso_one_to_many, match_neurons

    t0 = time.perf_counter()
    m = match_neurons(xa, xb, device)
    secs = time.perf_counter() - t0
    label = f"{name_a} vs {name_b}"
    params = {"n": int(xa.shape[0]), "d_a": int(xa.shape[1]), "d_b": int(xb.shape[1]), "store_b": name_b}
    vals = {"mean_matched_corr": m.mean, "median_matched_corr": float(np.median(m.corr)),
            "frac_matched_corr_gt_0.5": float(np.mean(m.corr > 0.5)), "mean_best_corr": float(m.best.mean())}
    if lasso:
        sp = lasso_one_to_many(xa, xb, alpha=alpha)
        vals["lasso_mean_r2"] = sp.mean_r2
        vals["lasso_mean_nonzero"] = float(sp.nonzero.mean())
        params["alpha"] = alpha
    rows = [Row("neuron_match", k, float(v), layer=layer, layer_b=layer_b, store=label, model=model, params=params,
                seconds=secs) for k, v in vals.items()]
    art = {"store_a": name_a, "store_b": name_b, "layer": layer, "layer_b": layer_b,
           "curve": [round(float(c), 5) for c in m.curve], "best": [round(float(c), 5) for c in m.best]}
    return {"rows": rows, "artifact_name": f"{name_a}:{layer} vs {name_b}:{layer_b}", "artifact": art}


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
    app.command("compare")(compare)
    app.command("match")(match)
