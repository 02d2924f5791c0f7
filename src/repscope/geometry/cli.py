"""CLI commands of repscope.geometry (registered onto the main Typer app by repscope.cli)."""

from __future__ import annotations

import json
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
from repscope.errors import ConfigError


def geometry(
    store: Path = typer.Argument(None, help="Store directory; not needed with --list."),
    measures: str = choice_option(None, "--measures", "-m", registry="repscope.geometry.measures:MEASURES",
                                  text="Comma-separated measures (default: the default set): {choices}."),
    layers: str = typer.Option(None, "--layers", "-l", help="Layer names or globs, comma-separated (default: all)."),
    target: str = typer.Option("auto", "--target", "--label",
                               help="Sample column for the cluster/MCR²/info-plane measures ('auto' = label if "
                                    "present, 'none' = skip them); --label is its old name."),
    max_rows: int = typer.Option(3000, "--max-rows", help="Seeded random subset of rows (0 = all)."),
    seed: int = typer.Option(0, "--seed"),
    params: str = typer.Option(None, "--params", help='JSON per measure, e.g. \'{"mle": {"k1": 5, "k2": 15}}\'.'),
    max_memory: str = MaxMemoryOption,
    list_measures: bool = typer.Option(False, "--list", help="List the measures and exit."),
    fmt: str = FormatOption,
    device: str = DeviceOption,
    db: Path = DbOption,
    study: str = StudyOption,
    ray: str = RayOption,
) -> None:
    """Geometry profile of a store: intrinsic dimension, anisotropy, rank/spectrum, coding rate, clusters … per layer.

    Example: repscope geometry runs/minilm_templates --measures twonn,mle,anisotropy --target topic
    """
    from repscope.distributed.executor import executor_for
    from repscope.geometry.measures import MEASURES
    from repscope.geometry.study import combine_profile, plan_profile
    from repscope.store import RepStore

    if list_measures:
        for m in MEASURES.values():
            typer.echo(f"{m.name:24s} {m.doc}")
        return
    if store is None:
        import click

        raise click.UsageError("Missing argument 'STORE'.")
    try:
        extra = json.loads(params) if params else None
    except json.JSONDecodeError as err:
        raise ConfigError(f"--params is not valid JSON ({err.msg}); write e.g. '{{\"mle\": {{\"k1\": 5}}}}'") from err
    if extra is not None and not (isinstance(extra, dict) and all(isinstance(v, dict) for v in extra.values())):
        raise ConfigError("--params must map measure names to objects of parameters, e.g. '{\"mle\": {\"k1\": 5}}'")
    for name, kw in (extra or {}).items():
        allowed = sorted(MEASURES.get(name).defaults) if name in MEASURES else sorted(kw)
        if set(kw) - set(allowed):
            raise ConfigError(f"--params: unknown key(s) {', '.join(sorted(set(kw) - set(allowed)))} for measure "
                              f"'{name}'; allowed: {', '.join(allowed) or 'none'}")
    s = RepStore.open(store)
    column = None if target.lower() == "none" else target
    units = plan_profile(s, split_csv(measures), split_csv(layers), target=column, max_rows=max_rows or None,
                         seed=seed, device=device, params=extra, max_memory=max_memory)
    result = combine_profile(s, executor_for(ray).map(units), progress=lambda msg: console.print(msg, highlight=False))
    rdb = open_db(db, study)  # only once there is something to record: a bad option leaves no DB file behind
    rdb.record_result(with_provenance(result, s))
    if not result.rows:
        console.print("no measures computed")
        return
    if fmt != "table":
        print_result(result, fmt, rdb.study)
        return
    df = result.frame()
    piv = df.pivot_table(index="metric", columns="layer", values="value", aggfunc="first", sort=False)
    piv = piv[[c for c in s.layers if c in piv.columns]]
    print_table(piv.reset_index(), fmt, title=f"geometry of {s.name} (rows recorded in {rdb.path})")


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
    app.command("geometry")(geometry)
