"""repscope command line (Typer). Kept thin: each command parses options and calls library code."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from repscope.cli_common import DbOption, FormatOption, console, open_db, print_table, refresh_choice_help
from repscope.errors import RepscopeError

_APP_SETTINGS = dict(
    name="repscope",
    help="Workbench for learned representations: extract, probe, compare, measure, report.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
app = typer.Typer(**_APP_SETTINGS)
_DEBUG = {"on": False}


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show full tracebacks on error.")) -> None:
    _DEBUG["on"] = debug


@app.command()
def info(store: Path = typer.Argument(..., help="Store directory."), fmt: str = FormatOption) -> None:
    """Show a store's provenance, layers and sample columns (stdout; --format csv/json: the layer table).

    Example: repscope info runs/minilm_templates
    """
    from repscope.store import RepStore

    s = RepStore.open(store, allow_incomplete=True)
    columns = list(s.samples.columns)  # read (and validate) samples.parquet before printing anything
    state = "complete" if s.manifest["progress"]["complete"] else "INCOMPLETE"
    import pandas as pd

    infos = [s.layer_info(name) for name in s.layers]
    table = pd.DataFrame({"layer": s.layers, "shape": ["×".join(map(str, i["shape"])) for i in infos],
                          "dtype": [i["dtype"] for i in infos],
                          "tokens": ["yes" if i["tokens"] else "" for i in infos]})
    print_table(table, fmt, title=f"{s.root}  ({s.n_rows}/{s.n_samples} rows, {state})")
    if fmt == "table":
        about = {**{str(k): v for k, v in sorted(s.provenance.items())}, "sample columns": ", ".join(map(str, columns))}
        print_table(pd.DataFrame({"key": list(about), "value": [str(v) for v in about.values()]}), fmt)


@app.command()
def verify(store: Path = typer.Argument(..., help="Store directory.")) -> None:
    """Check the manifest, samples.parquet and every chunk (present, content hash); names the first bad file.

    Example: repscope verify runs/minilm_templates
    """
    from repscope.store import RepStore

    rep = RepStore.open(store, verify=False).check()  # check() does every read-time check itself, and more
    for note in rep.notes:
        console.print(f"[yellow]note[/]: {note}", highlight=False, soft_wrap=True)
    console.print(f"[green]ok[/]: {sum(rep.checked.values())} chunks in {len(rep.checked)} arrays verified, "
                  f"samples and manifest intact")


@app.command()
def results(
    sql: str = typer.Argument("SELECT study, store, layer, layer_b, analysis, metric, value FROM results "
                              "ORDER BY created DESC LIMIT 50", help="SQL over table `results` (and `artifacts`)."),
    out: Path = typer.Option(None, "--out", "-o", help="Export to .csv or .parquet instead of printing."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing export file at --out (a Parquet "
                                   "file only when repscope wrote it)."),
    fmt: str = FormatOption,
    write: bool = typer.Option(False, "--write", help="Run the SQL read-write with file access (CREATE, COPY, "
                               "ATTACH); without it the console is read-only and cannot touch other files."),
    imports: list[Path] = typer.Option(None, "--import", help="Merge a .pending-*.json side file (saved while the "
                                       "DB was locked) into the DB, then delete it; repeatable."),
    db: Path = DbOption,
) -> None:
    """Query the results DB (read-only unless --write), print a table/CSV/JSON, export, or import side files.

    Example: repscope results "SELECT layer, value FROM results WHERE metric='accuracy'" --format csv > acc.csv
    """
    from repscope.results import save_frame
    from repscope.store.ownership import check_export_output

    if out is not None:
        check_export_output(out, overwrite=overwrite)  # before the SQL runs
    rdb = open_db(db)
    if imports:
        for f in imports:
            got = rdb.import_pending(f)
            note = " (already imported before; nothing added)" if got.already_imported else ""
            console.print(f"imported {got.rows} rows and {got.artifacts} artifacts from {f} into {rdb.path}{note}; "
                          "removed the file", highlight=False, soft_wrap=True)
        return
    df = rdb.run_sql(sql, write=write)
    if out is not None:
        console.print(f"wrote {save_frame(df, out, overwrite=overwrite)}", highlight=False, soft_wrap=True)
        return
    print_table(df, fmt)


@app.command()
def report(
    out: Path = typer.Option(None, "--out", "-o", help="HTML file to write (default report.html, or compare.html)."),
    study: str = typer.Option(None, "--study", help="Only this study (default: all)."),
    db: Path = DbOption,
    compare: tuple[str, str] = typer.Option(None, "--compare", metavar="DB_A DB_B",
                                              help="Compare two results DBs: shared metrics, deltas, CIs."),
    compare_studies: tuple[str, str] = typer.Option(None, "--compare-studies", metavar="STUDY_A STUDY_B",
                                                    help="Compare two studies of one DB (--db)."),
    pair: list[str] = typer.Option(None, "--pair", metavar="STORE_B=STORE_A",
                                   help="Match a store of B to a store of A (repeatable)."),
    unpaired: bool = typer.Option(False, "--unpaired", help="With --compare: compare a store's metrics even when the "
                                  "two runs extracted it from different data."),
) -> None:
    """Write one self-contained offline HTML report from the results DB, or a comparison of two runs.

    Example: repscope report -o report.html
    Example: repscope report --compare runs/v1.duckdb runs/v2.duckdb -o v1_vs_v2.html
    """
    compare = compare if compare and compare[0] is not None else None
    compare_studies = compare_studies if compare_studies and compare_studies[0] is not None else None
    if compare or compare_studies:
        from repscope.report.compare import build_compare, parse_pairs

        pairs = parse_pairs(pair)
        if compare:
            path = build_compare(Path(compare[0]), Path(compare[1]), out or Path("compare.html"), study_a=study,
                                 study_b=study, store_map=pairs, unpaired=unpaired)
        else:
            path = build_compare(open_db(db), None, out or Path("compare.html"), study_a=compare_studies[0],
                                 study_b=compare_studies[1], store_map=pairs, unpaired=unpaired)
        typer.echo(str(path.resolve()))
        return
    from repscope.report.build import build_report

    path = build_report(open_db(db), out or Path("report.html"), study=study)
    typer.echo(str(path.resolve()))


def _register_plugins(target: typer.Typer) -> None:
    """Add the commands of every plugin in `repscope.analyses.PLUGINS` (read now, in pipeline order)."""
    from repscope.analyses import plugins

    for plugin in plugins():
        plugin.register_cli(target)


def build_app() -> typer.Typer:
    """A fresh app: the core commands above plus every currently registered analysis plugin's commands."""
    fresh = typer.Typer(**_APP_SETTINGS)
    fresh.registered_callback = app.registered_callback
    fresh.registered_commands.extend(_CORE_COMMANDS)
    _register_plugins(fresh)
    refresh_choice_help()
    return fresh


_CORE_COMMANDS = list(app.registered_commands)
_register_plugins(app)


def _click_exception_types() -> tuple[type, ...]:
    """click's ClickException and Abort, from click itself and from the copy newer typer versions vendor."""
    import importlib

    types: list[type] = [typer.Abort]
    for mod in ("click.exceptions", "typer._click.exceptions"):
        try:
            m = importlib.import_module(mod)
        except ImportError:
            continue
        types += [t for t in (getattr(m, "ClickException", None), getattr(m, "Abort", None)) if t is not None]
    return tuple(types)


def _one_line(text: str) -> str:
    """Collapse a message onto one line (click and library messages may hold newlines)."""
    return " ".join(str(text).split())


def _usage_message(err: Exception) -> str:
    """click/typer usage error as one line naming the option, plus the rejected value when the message omits it."""
    msg = err.format_message() if hasattr(err, "format_message") else str(err)  # type: ignore[attr-defined]
    cause = err.__cause__
    errors = getattr(cause, "errors", None)
    if callable(errors):  # typer ≥ 0.2x coerces values with pydantic; the input value is in the cause
        try:
            value = errors()[0].get("input")
        except (TypeError, IndexError, AttributeError):
            value = None
        if isinstance(value, str) and repr(value) not in msg:
            msg = f"{msg.rstrip('.')} (got {value!r})"
    return _one_line(msg)


def _fail(message: str, code: int = 2) -> None:
    """Print `error: MESSAGE` as exactly one line on stderr and exit with `code`."""
    from rich.markup import escape

    console.print(f"[red]error:[/] {escape(_one_line(message))}", highlight=False, soft_wrap=True, emoji=False)
    sys.exit(code)


def main() -> None:
    """Console entry point: every error is one line on stderr (exit 2 for user errors), tracebacks only with --debug."""
    debug = "--debug" in sys.argv or os.environ.get("REPSCOPE_DEBUG") == "1"
    click_types = _click_exception_types()
    if any(a in ("--help", "-h") for a in sys.argv[1:]):
        refresh_choice_help()  # option help lists the registries' current names
    try:
        rc = app(standalone_mode=False)
    except RepscopeError as err:
        if debug:
            raise
        _fail(str(err))
    except KeyboardInterrupt:
        console.print("[yellow]interrupted[/]; rerun the same command to resume where it stopped")
        sys.exit(130)
    except SystemExit:
        raise
    except Exception as err:
        if isinstance(err, click_types):
            if type(err).__name__ == "NoArgsIsHelpError":  # bare `repscope` / `repscope sae`: show the help
                err.show()  # type: ignore[attr-defined]
                sys.exit(getattr(err, "exit_code", 2))
            if isinstance(err, typer.Abort) or type(err).__name__ == "Abort":
                sys.exit(1)
            _fail(_usage_message(err))  # usage errors, bad values, missing options: exit 2
        if debug:
            raise
        if isinstance(err, OSError) and err.filename:
            _fail(f"cannot access '{err.filename}': {err.strerror or err}; check the path and its permissions")
        _fail(f"{type(err).__name__}: {err} (rerun with --debug for the traceback)", code=1)
    if rc == 130:  # typer turns Ctrl-C inside a command into Exit(130), returned in non-standalone mode
        console.print("[yellow]interrupted[/]; rerun the same command to resume where it stopped")
    if isinstance(rc, int) and not isinstance(rc, bool) and rc:
        sys.exit(rc)


if __name__ == "__main__":
    main()
