"""CLI commands for sources and extraction: layers, extract, zoo train-mlp, demo, study."""

from __future__ import annotations

from pathlib import Path

import typer

from repscope.cli_common import DbOption, DeviceOption, FormatOption, StudyOption, console, open_db, print_table
from repscope.distributed.options import GpusPerWorkerOption, RayOption, WorkersOption
from repscope.sources.specs import DATA_HELP, MODEL_HELP

zoo_app = typer.Typer(help="Model zoo: train the digits MLP by seed.", no_args_is_help=True)


def layers(
    model: str = typer.Argument(..., help=MODEL_HELP),
    fmt: str = FormatOption,
    device: str = DeviceOption,
) -> None:
    """List a model's selectable layers with their output shapes (one example forward pass).

    Example: repscope layers minilm
    """
    from repscope.sources.load import load_model

    m = load_model(model, device=device)
    names = m.layer_names()
    raw, _ = m.run(m.example_items(), names)
    import pandas as pd

    shapes = ["×".join(map(str, raw[n].shape)) if n in raw else "?" for n in names]
    print_table(pd.DataFrame({"layer": names, "output shape (example batch)": shapes}), fmt,
                title=f"{m.name}: {len(names)} layers")


def extract_cmd(
    model: str = typer.Argument(..., help=MODEL_HELP),
    data: str = typer.Argument(..., help=DATA_HELP),
    out: Path = typer.Option(..., "--out", "-o", help="Store directory to write (or resume)."),
    layers: str = typer.Option(None, "--layers", "-l", help="Comma-separated names or globs (default: all)."),
    pooling: str = typer.Option("auto", "--pooling", "-p",
                                help="auto, mean, masked-mean, cls, last-token, max, spatial-mean, flatten, none."),
    batch_size: int = typer.Option(64, "--batch-size", "-b", min=1),
    dtype: str = typer.Option("float32", "--dtype", help="float32, float16 or bfloat16."),
    chunk_rows: int = typer.Option(256, "--chunk-rows", min=1, help="Rows per stored chunk (the resume unit)."),
    device: str = DeviceOption,
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing repscope store."),
    allow_nonfinite: bool = typer.Option(False, "--allow-nonfinite", help="Store NaN/Inf instead of failing."),
    seed: int = typer.Option(0, "--seed", help="Seed for generated datasets."),
    ray: str = RayOption,
    workers: int = WorkersOption,
    gpus_per_worker: float = GpusPerWorkerOption,
) -> None:
    """Extract layer representations into a store; rerun the same command to resume after an interruption.

    Example: repscope extract minilm templates:2000 -o runs/minilm --layers 'encoder.layer.*' --pooling masked-mean

    On a Ray cluster (store on a shared filesystem): add --ray ADDRESS --workers 8 --gpus-per-worker 1.
    """
    from repscope.distributed.executor import executor_for
    from repscope.errors import check_output_dir
    from repscope.sources.load import load_dataset
    from repscope.store.ownership import check_store_output

    check_output_dir(out, "--out")
    check_store_output(out, overwrite=overwrite)  # before loading anything: a folder of other files is refused
    ds = load_dataset(data, seed=seed)
    # here, or with --ray on `workers` actors that each load the model (the driver only checks, plans and commits)
    store = executor_for(ray, num_gpus=gpus_per_worker).extract(
        model, ds, out, layers, device=device, workers=workers, pooling=pooling, batch_size=batch_size, dtype=dtype,
        chunk_rows=chunk_rows, overwrite=overwrite, allow_nonfinite=allow_nonfinite, seed=seed)
    console.print(f"[green]wrote[/] {store.root} ({store.n_rows} rows × {len(store.layers)} layers)")


@zoo_app.command("train-mlp")
def train_mlp(
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(None, "--out", "-o", help="Weights file (default zoo/digits_mlp_s{seed}.safetensors)."),
    epochs: int = typer.Option(20, "--epochs"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing weights file repscope wrote."),
) -> None:
    """Train the digits MLP for one seed and save it as safetensors.

    Example: repscope zoo train-mlp --seed 3
    """
    from repscope.sources.zoo.mlp import digits_inputs, save_mlp, train_digits_mlp
    from repscope.store.ownership import check_checkpoint_output

    out = check_checkpoint_output(out or Path("zoo") / f"digits_mlp_s{seed}.safetensors", overwrite=overwrite)
    model = train_digits_mlp(seed, epochs=epochs)
    x, y = digits_inputs()
    acc = float((model(x).argmax(1).numpy() == y).mean())
    path = save_mlp(model, out)
    console.print(f"[green]saved[/] {path} (digits accuracy on all 1797 images: {acc:.3f})")


def demo(
    out: Path = typer.Option(Path("demo_out"), "--out", "-o", help="Folder for stores, DB and report."),
    extended: bool = typer.Option(False, "--extended",
                                  help="Also SST-2, TREC, STS-B and CIFAR ResNets (needs ../shared)."),
    device: str = DeviceOption,
    fresh: bool = typer.Option(True, "--fresh/--reuse", help="Start from an empty results DB (stores are reused)."),
) -> None:
    """Run the full default study: digits MLPs × 3 seeds + MiniLM on template sentences → analyses → report.html.

    Example: repscope demo --out demo_out
    """
    from repscope.demo import run_demo

    path = run_demo(out, extended=extended, device=device, fresh=fresh)
    typer.echo(f"report: {path.resolve()}")


def study(
    config: Path = typer.Argument(..., help="Study YAML file."),
    db: Path = DbOption,
    name: str = StudyOption,
    overwrite: bool = typer.Option(False, "--overwrite", help="Re-extract a store whose model, data or options "
                                   "changed in the file since it was extracted (default: refuse)."),
) -> None:
    """Run a YAML study end to end (extractions, analyses, report).

    Example: repscope study examples/study.yaml
    """
    from repscope.study import run_study

    path = run_study(config, db=open_db(db, name) if db else None, overwrite=overwrite)
    typer.echo(f"report: {path.resolve()}")


def register(app: typer.Typer) -> None:
    """Add the spine's extraction commands."""
    app.command("layers")(layers)
    app.command("extract")(extract_cmd)
    app.command("demo")(demo)
    app.command("study")(study)
    app.add_typer(zoo_app, name="zoo")
