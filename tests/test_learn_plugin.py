"""The learn plugin end to end: `repscope learn train` (+ --resume), `repscope extract` from a learner checkpoint,
the `run: learn` study step (params checked on load; train → store → analyses) and its report section."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repscope.errors import ConfigError
from repscope.results import ResultsDB
from repscope.store import RepStore, write_store
from repscope.study import load_study, run_study


def run_main(*args):
    """The in-process CLI runner of tests/reliability."""
    from tests.reliability.conftest import run_main as rm

    return rm(*args)


def test_cli_train_resume_and_extract(tmp_path):
    from repscope.learn import load_learner
    from repscope.sources.load import load_dataset

    ck = tmp_path / "zoo" / "vae.safetensors"
    r = run_main("learn", "train", "vae", "shapes:48", "-o", ck, "--latents", "4", "--epochs", "2", "--hidden", "16",
                 "--batch-size", "16")
    assert r.returncode == 0, r.stderr
    assert ck.is_file() and load_learner(ck).epoch_ == 2
    r = run_main("learn", "train", "vae", "shapes:48", "-o", ck, "--epochs", "3", "--resume")
    assert r.returncode == 0, r.stderr
    model = load_learner(ck, device="cpu")
    assert model.epoch_ == 3 and len(model.history_) == 3
    store = tmp_path / "store"
    r = run_main("extract", ck, "shapes:48", "-o", store, "--layers", "latent,encoder.convs.1", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    s = RepStore.open(store)
    assert s.layers == ["encoder.convs.1", "latent"] or set(s.layers) == {"encoder.convs.1", "latent"}
    z = s.get("latent").numpy()
    np.testing.assert_allclose(z, model.transform(load_dataset("shapes:48")), atol=1e-5)
    assert s.get("encoder.convs.1").shape == (48, 32)  # conv map spatially averaged by auto pooling
    assert {"shape", "scale", "pos_x"} <= set(s.samples.columns)


def test_cli_bad_config_is_one_line(tmp_path):
    out = tmp_path / "x.safetensors"
    for args, needle in ((("learn", "train", "gan", "digits", "-o", out), "unknown learner 'gan'"),
                         (("learn", "train", "ae", "digits", "-o", out, "--mode", "sparse"), "sparse"),
                         (("learn", "train", "qlae", "digits", "-o", out, "--resume"), "no checkpoint"),
                         (("learn", "train", "qlae", "digits", "-o", tmp_path / "x.pt"), ".safetensors")):
        r = run_main(*args)
        assert r.returncode == 2, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr
    assert not out.exists()


def test_learn_step_on_shapes_extracts_and_scores():
    from repscope.learn.study import run

    res = run([], learner="qlae", data="shapes:96", latents=5, epochs=2, hidden=16, batch_size=32, seeds=[0],
              factors=["shape", "scale"], metrics=["mig"], device="cpu")
    df = res.frame()
    assert set(df["analysis"]) == {"learn", "disentangle"}
    d = df[df["analysis"] == "disentangle"]
    assert set(d["store"]) == {"qlae_shapes_s0"} and set(d["metric"]) == {"mig"}
    assert (d["layer"] == "latent").all()


@pytest.fixture()
def pixel_store(tmp_path) -> Path:
    from repscope.sources.zoo.mlp import digits_inputs

    x, y = digits_inputs()
    path = tmp_path / "digits_px"
    write_store(path, {"pixels": x[:600].numpy()}, samples=pd.DataFrame({"id": np.arange(600), "label": y[:600]}))
    return path


def _study(tmp_path: Path, store: Path, params: dict) -> Path:
    y = tmp_path / "s.yaml"
    y.write_text(json.dumps({"name": "learn", "workdir": "w", "stores": [
        {"name": "digits_px", "model": "digits-mlp:0", "data": "digits"}],
        "analyses": [{"run": "learn", "stores": ["digits_px"], "params": params}]}))
    (tmp_path / "w").mkdir(exist_ok=True)
    link = tmp_path / "w" / "digits_px"
    if not link.exists():
        link.symlink_to(store, target_is_directory=True)
    return y


def test_study_validates_before_work(pixel_store, tmp_path):
    with pytest.raises(ConfigError, match="unknown learner 'gan'"):
        load_study(_study(tmp_path, pixel_store, {"learner": "gan", "layer": "pixels"}))
    with pytest.raises(ConfigError, match="unknown vae option 'betta'"):
        load_study(_study(tmp_path, pixel_store, {"learner": "vae", "layer": "pixels", "options": {"betta": 2}}))
    with pytest.raises(ConfigError, match="give data"):
        load_study(_study(tmp_path, pixel_store, {"learner": "ae"}))


def test_study_trains_seeds_concat_and_report(pixel_store, tmp_path):
    y = _study(tmp_path, pixel_store, {"learner": "ae", "layer": "pixels", "latents": 6, "epochs": 3, "hidden": 32,
                                       "seeds": [0, 1, 2], "target": "label", "device": "cpu"})
    html = run_study(y).read_text()
    assert "Learners: what small trained models learned" in html
    db = ResultsDB(tmp_path / "w" / "repscope.duckdb")
    learn = db.frame(analysis="learn")
    assert set(learn["store"]) == {f"ae_digits_px_s{i}" for i in range(3)}
    assert (learn[learn["metric"] == "final_loss"]["value"].to_numpy()
            < learn[learn["metric"] == "first_loss"]["value"].to_numpy()).all()
    concat = db.frame(analysis="probe_concat")
    acc = concat[concat["metric"] == "accuracy"].set_index("store")["value"]
    assert "ae_digits_px_s0+ae_digits_px_s1+ae_digits_px_s2" in acc.index and acc.min() > 0.3  # 10 classes: 0.1 chance



def test_digits_demo_rows_and_report_section():
    from repscope.learn.experiments import learners_on_digits
    from repscope.learn.report import report_sections
    from repscope.threads import limit_threads

    with limit_threads(1):
        res = learners_on_digits(epochs=4)
    df = res.frame()
    acc = df[df["metric"] == "probe_accuracy"].set_index("model")["value"]
    assert set(acc.index) == {"pixels", "ae", "vae", "qlae"}
    assert acc["ae"] > 0.5 and acc["qlae"] > 0.5  # 10 digit classes: chance is 0.1
    sections, handled = report_sections(df, [])
    assert handled == {"learn"} and sections[0].tables[0].shape[0] == 4


def _learner_cases() -> list[tuple[str, tuple[str, ...], str]]:
    """Every registered learner on vectors (digits; SimCLR refuses tabular data) and on images (shapes: ConvNet
    encoders; a Matryoshka head takes vectors only), and the autoencoder's other modes (masked = SimMIM)."""
    from repscope.learn.registry import learner_names

    cases = [(kind, (), "digits@64") for kind in learner_names() if kind != "simclr"]
    cases += [(kind, (), "shapes:32") for kind in learner_names() if kind != "matryoshka"]
    cases += [("ae", ("--mode", mode), data) for mode in ("denoising", "masked") for data in ("digits@64", "shapes:32")]
    return cases


@pytest.mark.parametrize(("kind", "extra", "data"), _learner_cases(),
                         ids=lambda v: v if isinstance(v, str) else "-".join(v) or "default")
def test_every_learner_extracts_with_its_default_layers(kind, extra, data, tmp_path):
    """One epoch of each learner, then `repscope layers` (every shape known) and `repscope extract` with the default
    layers: each listed layer is one the forward pass reaches, so each is stored with a row per item. Before, a
    decoder the forward never runs was listed with shape '?' and `extract` failed with KeyError: 'decoder'."""
    from repscope.learn import load_learner

    ck = tmp_path / f"{kind}.safetensors"
    r = run_main("learn", "train", kind, data, "-o", ck, "--epochs", "1", "--hidden", "16", "--batch-size", "16",
                 *extra)
    assert r.returncode == 0, r.stderr
    r = run_main("layers", ck, "--format", "csv", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    table = pd.read_csv(__import__("io").StringIO(r.stdout))
    shapes = dict(zip(table.iloc[:, 0], table.iloc[:, 1].astype(str), strict=True))
    assert "latent" in shapes and "?" not in shapes.values(), shapes
    modules = [name for name, _ in load_learner(ck, device="cpu").named_modules() if name]
    assert not [name for name in shapes if name.split(".")[0] == "decoder"]  # training-only modules left out
    assert set(shapes) <= set(modules)
    store = tmp_path / "store"
    r = run_main("extract", ck, data, "-o", store, "--device", "cpu")
    assert r.returncode == 0, r.stderr
    s = RepStore.open(store)
    assert list(s.layers) == list(shapes)
    assert all(s.get(layer).shape[0] == s.n_rows for layer in s.layers)
