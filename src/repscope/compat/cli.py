"""CLI command of repscope.compat: `compat OLD_STORE NEW_STORE` (added to the main app by `register`)."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from repscope.cli_common import (
    DbOption,
    DeviceOption,
    FormatOption,
    PairByOption,
    StudyOption,
    UnpairedOption,
    console,
    open_db,
    print_result,
    print_table,
    split_csv,
    with_provenance,
)
from repscope.compat.study import CompatParams
from repscope.errors import ConfigError
from repscope.params import option_check

_METRIC = CompatParams.model_fields["metric"].annotation  # the choices, declared once by the params model


def compat_cmd(
    old_store: Path = typer.Argument(..., help="Store of the old model (its index is kept)."),
    new_store: Path = typer.Argument(..., help="Store of the new model, same samples as the old store."),
    target: str = typer.Option("label", "--target", "-t", help="Sample column whose equal values are relevant."),
    transforms: str = typer.Option(None, "--transforms",
                                   help="Comma-separated: none, procrustes, ridge, lstsq, bct "
                                        "(default: none,procrustes,ridge,bct)."),
    layer_old: str = typer.Option(None, "--layer-old", help="Layer of the old store (default: its last pooled layer)."),
    layer_new: str = typer.Option(None, "--layer-new", help="Layer of the new store (default: its last pooled layer)."),
    fit_fraction: float = typer.Option(0.5, "--fit-fraction", help="Share of samples the transforms are fit on."),
    max_rows: int = typer.Option(10000, "--max-rows", min=0, help="Seeded random subset of samples (0 = all)."),
    metric: str = typer.Option("cosine", "--metric", callback=option_check(_METRIC),
                               help="Retrieval distance: cosine or euclidean."),
    alpha: float = typer.Option(1e-2, "--alpha", help="Ridge strength, relative to the mean eigenvalue of XᵀX."),
    bct_lambda: float = typer.Option(1.0, "--bct-lambda", help="Weight of BCT's influence loss."),
    bct_epochs: int = typer.Option(300, "--bct-epochs", help="Full-batch epochs of the BCT head."),
    bct_lr: float = typer.Option(1e-2, "--bct-lr", help="Learning rate of the BCT head."),
    seed: int = typer.Option(0, "--seed"),
    pair_by: str = PairByOption,
    unpaired: bool = UnpairedOption,
    device: str = DeviceOption,
    fmt: str = FormatOption,
    db: Path = DbOption,
    study: str = StudyOption,
) -> None:
    """Backward compatibility (BCT, Shen et al. 2020): can new-model queries search the old model's index?

    Label retrieval on held-out samples (transforms are fit on the rest): M(old,old), M(new,new) and, per transform,
    M(new→old), with the compatibility criterion M(new→old) > M(old,old) and the update gain.

    Tables go to stdout (--format csv/json: the recorded rows), progress to stderr.

    Example: repscope compat runs/resnet20 runs/resnet56 --target label --transforms none,procrustes,ridge,bct
    """
    from repscope.compat.store import compat_stores
    from repscope.compat.study import CompatParams
    from repscope.store import RepStore
    from repscope.store.pairing import pair_stores

    try:
        p = CompatParams(target=target, layer_old=layer_old, layer_new=layer_new, transforms=split_csv(transforms),
                         fit_fraction=fit_fraction, seed=seed, metric=metric, alpha=alpha, bct_lambda=bct_lambda,
                         bct_epochs=bct_epochs, bct_lr=bct_lr)
    except ValidationError as err:
        e = err.errors()[0]
        cause = (e.get("ctx") or {}).get("error")
        msg = str(cause) if isinstance(cause, ConfigError) else e["msg"].removeprefix("Value error, ")
        raise ConfigError(f"--{str(e['loc'][0]).replace('_', '-')}: {msg}") from None
    old0, new0 = RepStore.open(old_store), RepStore.open(new_store)
    old, new = pair_stores([old0, new0], pair_by=pair_by, unpaired=unpaired)
    result = compat_stores(old, new, target=p.target, layer_old=p.layer_old, layer_new=p.layer_new,
                           transforms=p.transforms, fit_fraction=p.fit_fraction, seed=p.seed,
                           max_rows=max_rows or None, metric=p.metric, alpha=p.alpha, bct_lambda=p.bct_lambda,
                           bct_epochs=p.bct_epochs, bct_lr=p.bct_lr, progress=True, device=device)
    rdb = open_db(db, study)  # only once there is something to record
    rdb.record_result(with_provenance(result, old0, new0))
    for art in result.artifacts:
        for name, why in art.payload.get("skipped", {}).items():
            console.print(f"compat: transform '{name}' skipped: {why}", highlight=False)
    console.print(f"compatibility of {new.name} with {old.name}: {len(result.rows)} rows recorded in {rdb.path}",
                  highlight=False)
    if fmt != "table":
        print_result(result, fmt, rdb.study)
        return
    from repscope.compat.report import compat_table

    table = compat_table(result.frame())
    layers = f"{table['layer'].iloc[0]} → {table['layer_b'].iloc[0]}" if len(table) else ""
    print_table(table.drop(columns=["store", "layer", "layer_b"]), fmt,
                title=f"compatibility {old.name} → {new.name}, {layers} (rows recorded in {rdb.path})")


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
    app.command("compat")(compat_cmd)
