"""Registries are real: string and list forms resolve alike, and built-ins survive early user registrations."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from repscope.errors import ConfigError
from repscope.registry import Registry, split_names
from repscope.store.writer import write_store


def test_resolve_many_string_and_list_alike():
    reg: Registry[int] = Registry("thing")
    reg.register("alpha", 1, aliases=("a",))
    reg.register("beta", 2)
    assert reg.resolve_many("alpha") == ["alpha"]  # a string is one name, not its characters
    assert reg.resolve_many("a, beta,alpha") == ["alpha", "beta"]
    assert reg.resolve_many(["A", "beta"]) == ["alpha", "beta"]
    assert split_names(" x,,y ") == ["x", "y"]
    with pytest.raises(ConfigError, match="no thing given"):
        reg.resolve_many("")
    with pytest.raises(ConfigError, match="unknown thing 'gamma'"):
        reg.resolve_many("alpha,gamma")


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    rng = np.random.default_rng(0)
    y = np.repeat(np.arange(3), 40)
    x = rng.normal(size=(120, 6)) + y[:, None]
    path = tmp_path_factory.mktemp("reg") / "s"
    return write_store(path, {"a": x, "b": rng.normal(size=(120, 5))}, pd.DataFrame({"label": y}))


def test_layer_sweep_string_equals_list(small_store):
    from repscope.probe.protocols import layer_sweep

    one = layer_sweep(small_store, "logistic", device="cpu").frame()
    many = layer_sweep(small_store, ["logistic"], device="cpu").frame()
    cols = ["layer", "metric", "value"]
    pd.testing.assert_frame_equal(one[cols].reset_index(drop=True), many[cols].reset_index(drop=True))
    assert len(one) >= 2 and one["params"].map(lambda p: "logistic" in str(p)).all()


def test_geometry_profile_string_equals_list(small_store):
    from repscope.geometry.profile import geometry_profile

    one = geometry_profile(small_store, "twonn", device="cpu", spectra=False).frame()
    many = geometry_profile(small_store, ["twonn"], device="cpu", spectra=False).frame()
    cols = ["layer", "metric", "value"]
    pd.testing.assert_frame_equal(one[cols].reset_index(drop=True), many[cols].reset_index(drop=True))
    assert len(one) >= 2


def test_learner_registered_before_first_lookup_keeps_builtins():
    code = (
        "from repscope.learn.registry import LEARNERS, learner_names\n"
        "class Toy: pass\n"
        "LEARNERS.register('toy', Toy)\n"
        "print(','.join(sorted(learner_names())))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    names = set(out.split(","))
    assert {"toy", "ae", "vae", "qlae", "simclr", "matryoshka"} <= names


def test_learn_epochs_default_is_one_value():
    import inspect

    from typer.models import OptionInfo

    from repscope.learn.base import Learner
    from repscope.learn.cli import train_cmd
    from repscope.learn.study import LearnParams

    cli_default = inspect.signature(train_cmd).parameters["epochs"].default
    assert isinstance(cli_default, OptionInfo)
    study_default = LearnParams.model_fields["epochs"].default
    class_default = inspect.signature(Learner.__init__).parameters["epochs"].default
    assert cli_default.default == study_default == class_default
