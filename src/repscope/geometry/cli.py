"""CLI commands of repscope.geometry (registered onto the main Typer app by repscope.cli)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from repscope.cli_common import DbOption, DeviceOption, StudyOption, console, open_db, split_csv
from repscope.errors import ConfigError


def geometry(
    store: Path = typer.Argument(..., help="Store directory."),
    measures: str = typer.Option(None, "--measures", "-m",
                                 help="Comma-separated measures (default: all). See --list."),
    layers: str = typer.Option(None, "--layers", "-l", help="Layer names or globs, comma-separated (default: all)."),
    label: str = typer.Option("auto", "--label", help="Label column for cluster/MCR²/info-plane measures "
                              "('auto' = label if present, 'none' = skip them)."),
    max_rows: int = typer.Option(3000, "--max-rows", help="Seeded random subset of rows (0 = all)."),
    seed: int = typer.Option(0, "--seed"),
    params: str = typer.Option(None, "--params", help='JSON per measure, e.g. \'{"mle": {"k1": 5, "k2": 15}}\'.'),
    list_measures: bool = typer.Option(False, "--list", help="List the measures and exit."),
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
) -> None:
    """Geometry profile of a store: intrinsic dimension, anisotropy, rank/spectrum, coding rate, clusters … per layer.

    Example: repscope geometry runs/minilm_templates --measures twonn,mle,anisotropy --label topic
    """
    from rich.table import Table

    from repscope.geometry.measures import MEASURES
    from repscope.geometry.profile import geometry_profile
    from repscope.store import RepStore

    if list_measures:
        for m in MEASURES.values():
            typer.echo(f"{m.name:24s} {m.doc}")
        return
    try:
        extra = json.loads(params) if params else None
    except json.JSONDecodeError as err:
        raise ConfigError(f"--params is not valid JSON ({err.msg}); write e.g. '{{\"mle\": {{\"k1\": 5}}}}'") from err
    s = RepStore.open(store)
    label_col = None if label.lower() == "none" else label
    df = geometry_profile(s, open_db(db, study), measures=split_csv(measures), layers=split_csv(layers),
                          label_col=label_col, max_rows=max_rows or None, seed=seed, device=device, params=extra,
                          progress=lambda msg: console.print(msg, highlight=False))
    if df.empty:
        console.print("no measures computed")
        return
    piv = df.pivot_table(index="metric", columns="layer", values="value", aggfunc="first", sort=False)
    t = Table(title=f"geometry of {s.name} (rows recorded in the results DB)")
    t.add_column("metric")
    for c in piv.columns:
        t.add_column(str(c), justify="right")
    for metric, r in piv.iterrows():
        t.add_row(str(metric), *[f"{v:.4g}" for v in r])
    from rich.console import Console

    Console().print(t)


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
    app.command("geometry")(geometry)
