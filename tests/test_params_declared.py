"""One declaration of parameters per step: for every study step that names its CLI command (`StudyStep.command`), the
command's options are the step's params-model fields — same names, same defaults (the CLI default validated by the
model equals the model default), required where the model requires, same choices. Only the options of the front end
itself differ: where rows are recorded and printed (--db, --format, --study), which executor runs the units (--ray,
--workers, --gpus-per-worker) and listing flags. A study with a bad nested param fails at load, fast, in one line."""

from __future__ import annotations

import json
import time
import typing
from pathlib import Path

import pytest
import typer
from pydantic_core import PydanticUndefined

from repscope.analyses import study_steps
from repscope.cli import app

FRONT_END = {"db", "fmt", "study", "ray", "workers", "gpus_per_worker", "list_measures"}
STEPS = {name: step for name, step in study_steps().items() if step.command}


def _command(path: str):
    cmd = typer.main.get_command(app)
    for part in path.split():
        cmd = cmd.commands[part]
    return cmd


def _options(step) -> dict:
    return {p.name: p for p in _command(step.command).params
            if type(p).__name__.endswith("Option") and p.name not in FRONT_END | set(step.command_only)}


def _arguments(step) -> set[str]:
    return {p.name for p in _command(step.command).params if type(p).__name__.endswith("Argument")}


def _valid(model, key: str, value):
    """`value` as the model's validators make it for field `key` (other fields left unset)."""
    obj = model.model_construct()
    model.__pydantic_validator__.validate_assignment(obj, key, value)
    return getattr(obj, key)


def _literal_choices(annotation) -> set[str] | None:
    for arg in (annotation, *typing.get_args(annotation)):
        if typing.get_origin(arg) is typing.Literal:
            return {str(a) for a in typing.get_args(arg)}
    return None


def test_every_step_with_a_command_is_checked():
    assert {"probe", "sts", "compare", "geometry", "sae", "quantize", "truncate", "adapter", "quantize_embeddings",
            "compat", "disentangle"} <= set(STEPS)


@pytest.mark.parametrize("name", sorted(STEPS))
def test_cli_options_are_the_params_model_fields(name):
    step = STEPS[name]
    model = step.model()
    fields = {k: f for k, f in model.model_fields.items() if k not in _arguments(step)}
    options = _options(step)
    assert sorted(options) == sorted(fields), f"{step.command}: options ≠ {model.__name__} fields"
    for key, opt in options.items():
        field = fields[key]
        flag = "--" + key.replace("_", "-")
        assert flag in opt.opts + opt.secondary_opts or flag.replace("-", "_") in opt.opts, \
            f"{step.command} {key}: no {flag} flag ({opt.opts})"
        if field.default is PydanticUndefined and field.default_factory is None:
            assert opt.required, f"{step.command} {flag}: required by {model.__name__}, optional on the CLI"
            continue
        default = field.get_default(call_default_factory=True)
        if opt.default is None:
            assert default is None or opt.is_flag, f"{step.command} {flag}: CLI default None, model {default!r}"
            continue
        assert _valid(model, key, opt.default) == _valid(model, key, default), \
            f"{step.command} {flag}: CLI default {opt.default!r} ≠ model default {default!r}"

    for key, field in fields.items():  # a fixed set of choices: the CLI refuses what the model refuses, while parsing
        literal = _literal_choices(field.annotation)
        if literal is None:
            continue
        opt = options[key]
        assert opt.callback is not None, f"{step.command} --{key}: choices {sorted(literal)} not checked by the CLI"
        for choice in literal:
            assert opt.callback(None, opt, choice) == choice  # click's (ctx, param, value) callback
        with pytest.raises(typer.BadParameter):
            opt.callback(None, opt, "not-a-choice")


def test_bad_nested_param_fails_at_load_in_one_line(tmp_path: Path):
    from repscope.errors import ConfigError
    from repscope.study import load_study

    path = tmp_path / "s.yaml"
    path.write_text(json.dumps({"name": "x", "stores": [{"name": "a", "model": "digits-mlp:0", "data": "digits"}],
                                "analyses": [{"run": "geometry", "stores": ["a"],
                                              "params": {"params": {"mle": {"bogus": 1}}}}]}))
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match="bogus") as err:
        load_study(path)
    assert time.perf_counter() - t0 < 2.0
    assert "\n" not in str(err.value)
