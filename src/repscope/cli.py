"""repscope command line (Typer). Kept thin: each command parses options and calls library code."""

from __future__ import annotations

import importlib
import os
import sys
from pathlib import Path

import typer
from rich.table import Table

from repscope.cli_common import DbOption, console, open_db
from repscope.errors import RepscopeError

app = typer.Typer(
    name="repscope",
    help="Workbench for learned representations: extract, probe, compare, measure, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
PLUGINS = ["repscope.probe", "repscope.similarity", "repscope.geometry", "repscope.dictionary"]
_DEBUG = {"on": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on error.")) -> None:
    _DEBUG["on"] = debug


@app.command()
def info(store: Path = typer.Argument(..., help="Store directory.")) -> None:
    """Show a store's provenance, layers and sample columns.

    Example: repscope info runs/minilm_templates
    """
    from repscope.store import RepStore

    s = RepStore.open(store, allow_incomplete=True)
    state = "complete" if s.manifest["progress"]["complete"] else "INCOMPLETE"
    t = Table(title=f"{s.root}  ({s.n_rows}/{s.n_samples} rows, {state})")
    t.add_column("layer")
    t.add_column("shape")
    t.add_column("dtype")
    t.add_column("tokens")
    for name in s.layers:
        i = s.layer_info(name)
        t.add_row(name, "×".join(map(str, i["shape"])), i["dtype"], "yes" if i["tokens"] else "")
    console.print(t)
    for k, v in sorted(s.provenance.items()):
        console.print(f"[bold]{k}[/]: {v}")
    console.print(f"[bold]sample columns[/]: {', '.join(map(str, s.samples.columns))}")


@app.command()
def verify(store: Path = typer.Argument(..., help="Store directory.")) -> None:
    """Check every chunk's checksum; names the layer and chunk of the first corruption.

    Example: repscope verify runs/minilm_templates
    """
    from repscope.store import RepStore

    checked = RepStore.open(store).verify()
    console.print(f"[green]ok[/]: {sum(checked.values())} chunks in {len(checked)} arrays verified")


@app.command()
def results(
    sql: str = typer.Argument("SELECT study, store, layer, layer_b, analysis, metric, value FROM results "
                              "ORDER BY created DESC LIMIT 50", help="SQL over table `results` (and `artifacts`)."),
    out: Path = typer.Option(None, "--out", "-o", help="Export to .csv or .parquet instead of printing."),
    db: Path = DbOption,
) -> None:
    """Query the results DB, print a table or export CSV/Parquet.

    Example: repscope results "SELECT layer, value FROM results WHERE metric='accuracy'" -o acc.csv
    """
    rdb = open_db(db)
    if out is not None:
        console.print(f"wrote {rdb.export(sql, out)}")
        return
    df = rdb.query(sql)
    t = Table()
    for c in df.columns:
        t.add_column(str(c))
    for r in df.itertuples(index=False):
        t.add_row(*[f"{v:.4g}" if isinstance(v, float) else str(v) for v in r])
    from rich.console import Console

    Console().print(t)


@app.command()
def report(
    out: Path = typer.Option(Path("report.html"), "--out", "-o", help="HTML file to write."),
    study: str = typer.Option(None, "--study", help="Only this study (default: all)."),
    db: Path = DbOption,
) -> None:
    """Write one self-contained offline HTML report from the results DB.

    Example: repscope report -o report.html
    """
    from repscope.report.build import build_report

    path = build_report(open_db(db), out, study=study)
    typer.echo(str(path.resolve()))


def _register_plugins() -> None:
    from repscope import extract_cli

    extract_cli.register(app)
    for pkg in PLUGINS:
        importlib.import_module(pkg + ".cli").register(app)


_register_plugins()


def main() -> None:
    """Console entry point: one-line errors, tracebacks only with --debug."""
    debug = "--debug" in sys.argv or os.environ.get("REPSCOPE_DEBUG") == "1"
    try:
        app(standalone_mode=False)
    except RepscopeError as err:
        if debug:
            raise
        console.print(f"[red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; rerun the same command to resume where it stopped")
        sys.exit(130)
    except (typer.Exit, SystemExit) as e:
        raise e
    except Exception as err:  # click usage errors carry their own exit codes
        import click

        if isinstance(err, click.ClickException):
            err.show()
            sys.exit(err.exit_code)
        if isinstance(err, click.exceptions.Abort):
            sys.exit(1)
        if debug:
            raise
        console.print(f"[red]error:[/] {type(err).__name__}: {err} (rerun with --debug for the traceback)",
                      highlight=False, soft_wrap=True)
        sys.exit(1)


if __name__ == "__main__":
    main()
