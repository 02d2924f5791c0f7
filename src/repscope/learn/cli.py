"""CLI of repscope.learn: `repscope learn train vae|qlae|ae|simclr|matryoshka DATA -o zoo/NAME.safetensors` (a `learn`
sub-app)."""

from __future__ import annotations

from pathlib import Path

import typer

from repscope.cli_common import DeviceOption, choice_argument, console
from repscope.learn.registry import DEFAULT_EPOCHS
from repscope.params import NonNegativeFloat, PositiveFloat, option_check

learn_app = typer.Typer(help="Train small representation learners (AE, β-VAE, QLAE, SimCLR, a Matryoshka head) on data "
                        "or a store layer.", no_args_is_help=True)


def load_training_data(data: str, *, layer: str | None = None, seed: int = 0):
    """A store directory (with `layer`) or a dataset spec (`shapes:2000`, `digits`, FILE.npz, shared:…)."""
    p = Path(data)
    if p.is_dir() and (p / "manifest.json").is_file():
        from repscope.store import RepStore

        return RepStore.open(p)
    from repscope.sources.load import load_dataset

    return load_dataset(data, seed=seed)


def train_cmd(
    kind: str = choice_argument(..., registry="repscope.learn.registry:LEARNERS",
                                text="Registered learner: {choices} (matryoshka trains on frozen store features)."),
    data: str = typer.Argument(..., help="Dataset spec (shapes:2000, digits, FILE.npz, shared:…) or a store folder."),
    out: Path = typer.Option(..., "--out", "-o", help="Checkpoint file to write (.safetensors)."),
    layer: str = typer.Option(None, "--layer", "-l", help="Store layer to train on (store DATA only)."),
    latents: int = typer.Option(None, "--latents", help="Latent size (default: 10; 64 for simclr; matryoshka: "
                                "the prefix kept, default all dims)."),
    epochs: int = typer.Option(DEFAULT_EPOCHS, "--epochs", min=0,
                               help="Total epochs (a resumed run continues up to this)."),
    batch_size: int = typer.Option(128, "--batch-size", min=2),
    lr: float = typer.Option(1e-3, "--lr", callback=option_check(PositiveFloat), help="Learning rate."),
    hidden: int = typer.Option(256, "--hidden", min=1, help="Hidden width of the MLP/ConvNet."),
    beta: float = typer.Option(4.0, "--beta", callback=option_check(NonNegativeFloat), help="β of the β-VAE."),
    mode: str = typer.Option("plain", "--mode", help="Autoencoder mode: plain, denoising or masked."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the checkpoint at --out."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a checkpoint repscope wrote."),
    checkpoint_every: int = typer.Option(1, "--checkpoint-every", min=0, help="Save every N epochs (0: at the end)."),
    seed: int = typer.Option(0, "--seed"),
    threads: int = typer.Option(None, "--threads", min=1, help="CPU threads for training."),
    device: str = DeviceOption,
) -> None:
    """Train a learner and save it as safetensors; `repscope extract OUT DATA` then reads its layers.

    Example: repscope learn train qlae shapes:2000 -o zoo/qlae_s0.safetensors --latents 10 --epochs 20;
    repscope learn train matryoshka runs/store -l fc1 -o zoo/mrl.safetensors --epochs 30
    """
    from repscope.errors import ConfigError, check_output_dir
    from repscope.learn.base import load_learner
    from repscope.learn.registry import LEARNERS, learner_class
    from repscope.store.ownership import check_checkpoint_output, require_replaceable_checkpoint

    cls = learner_class(kind)
    if out.suffix != ".safetensors":
        raise ConfigError(f"--out '{out}' must end in .safetensors")
    check_output_dir(out.parent, "--out")  # fail before training, not when the first checkpoint is written
    if resume:
        if not out.is_file():
            raise ConfigError(f"--resume: no checkpoint at '{out}'; drop --resume to start a new run")
        require_replaceable_checkpoint(out, "--out")
        model = load_learner(out, device=device)
        if model.KIND != cls.KIND:
            raise ConfigError(f"--resume: '{out}' holds a {model.KIND} checkpoint, not {cls.KIND}")
        model.epochs, model.threads = epochs, threads
    else:
        kw: dict = {"epochs": epochs, "batch_size": batch_size, "lr": lr, "hidden": hidden, "seed": seed,
                    "device": device, "threads": threads}
        if latents is not None:
            kw["latents"] = latents
        extra = {"beta": beta, "mode": mode}  # the options a learner declares in its `cli_options` metadata
        kw.update({o: extra[o] for o in LEARNERS.metadata(kind).get("cli_options", ()) if o in extra})
        check_checkpoint_output(out, overwrite=overwrite, hint=" (or --resume to continue it)")
        model = cls(**kw)
    source = load_training_data(data, layer=layer, seed=seed)
    model.fit(source, layer=layer, checkpoint=out, checkpoint_every=checkpoint_every)
    last = f"{model.history_[-1]:.4g}" if model.history_ else "–"
    console.print(f"learn: {cls.KIND} trained to epoch {model.epoch_} (final loss {last}); saved {out}",
                  highlight=False)


learn_app.command("train")(train_cmd)


def register(app: typer.Typer) -> None:
    """Add the `learn` sub-app to the main app."""
    app.add_typer(learn_app, name="learn")
