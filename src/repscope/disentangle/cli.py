"""CLI command of repscope.disentangle: `disentangle` (added to the main app by `register`, like every package)."""

from __future__ import annotations

from pathlib import Path

import typer
from pydantic import ValidationError

from repscope.cli_common import (
    DbOption,
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
from repscope.distributed.options import RayOption
from repscope.errors import ConfigError


def disentangle_cmd(
    store: Path = typer.Argument(..., help="Store directory."),
    factors: str = typer.Option(..., "--factors", "-f", help="Sample columns that are factors, comma separated."),
    metrics: str = choice_option(None, "--metrics", "-m", registry="repscope.disentangle.suite:DISENTANGLEMENT_METRICS",
                                 text="Metric families (default: all but beta_vae, factor_vae): {choices}."),
    layers: str = typer.Option(None, "--layers", "-l", help="Layer names or globs, comma separated (default: all)."),
    max_rows: int = typer.Option(10000, "--max-rows", min=0, help="Seeded random subset of rows (0 = all; else ≥ 10)."),
    importance: str = choice_option("gbt", "--importance", registry="repscope.disentangle.dci_score:DCI_ENGINES",
                                    text="DCI importance engine: {choices} (gbt: repscope's exact GBT)."),
    sap_mode: str = typer.Option("r2", "--sap-mode",
                                 help="SAP score matrix: r2 (default) or classifier (disentanglement_lib's, discrete "
                                      "factors)."),
    mi_estimator: str = typer.Option("histogram", "--mi-estimator",
                                     help="InfoM/InfoC mutual information: histogram (default) or ksg (QLAE code's)."),
    infoe_split: str = typer.Option("test", "--infoe-split",
                                    help="InfoE readout: test (held-out, default) or train (QLAE code's in-sample)."),
    batch_pool: str = typer.Option("split", "--batch-pool",
                                   help="β-VAE/FactorVAE batch rows: split (held-out evaluation, default) or shared "
                                        "(disentanglement_lib's one source)."),
    bins: int = typer.Option(20, "--bins", min=2, help="Equal-width bins per latent for mutual information."),
    seed: int = typer.Option(0, "--seed"),
    fmt: str = FormatOption,
    db: Path = DbOption,
    study: str = StudyOption,
    ray: str = RayOption,
) -> None:
    """Disentanglement of each layer w.r.t. known factors: MIG, DCI, SAP, modularity/explicitness, InfoMEC.

    Tables go to stdout (--format csv/json: the recorded rows), progress to stderr. --ray: one Ray task per layer.

    Example: repscope disentangle runs/minilm_templates --factors topic,sentiment,tense,negation,number
    """
    from repscope.disentangle.study import DisentangleParams, plan_disentangle
    from repscope.distributed.executor import executor_for
    from repscope.store import RepStore

    try:
        p = DisentangleParams(factors=split_csv(factors) or [], metrics=split_csv(metrics), importance=importance,
                              sap_mode=sap_mode, mi_estimator=mi_estimator, infoe_split=infoe_split,
                              batch_pool=batch_pool, bins=bins, max_rows=max_rows or None)  # the study's checks
    except ValidationError as err:
        e = err.errors()[0]
        cause = (e.get("ctx") or {}).get("error")
        msg = str(cause) if isinstance(cause, ConfigError) else e["msg"].removeprefix("Value error, ")
        raise ConfigError(f"--{str(e['loc'][0]).replace('_', '-')}: {msg}") from None
    s = RepStore.open(store)
    kw = {"metrics": p.metrics, "max_rows": p.max_rows, "seed": seed, "importance": p.importance,
          "sap_mode": p.sap_mode, "mi_estimator": p.mi_estimator, "infoe_split": p.infoe_split,
          "batch_pool": p.batch_pool, "bins": p.bins}
    result = executor_for(ray).run(plan_disentangle(s, p.factors, split_csv(layers), **kw))
    rdb = open_db(db, study)  # only once there is something to record
    rdb.record_result(with_provenance(result, s))
    console.print(f"disentanglement of {s.name}: {len(result.rows)} rows recorded in {rdb.path}", highlight=False)
    if fmt != "table":
        print_result(result, fmt, rdb.study)
        return
    df = result.frame()
    piv = df.pivot_table(index="layer", columns="metric", values="value", aggfunc="first", sort=False)
    piv = piv.loc[[la for la in s.layers if la in piv.index]]
    print_table(piv.reset_index(), fmt, title=f"disentanglement of {s.name} (rows recorded in {rdb.path})")


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
    app.command("disentangle")(disentangle_cmd)
