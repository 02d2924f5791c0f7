"""Study steps on Ray (`ray: auto` beside a step's `run:`) on one local Ray (`ray.init(num_cpus=2)`, started here
and shut down at the end): a study run with Ray steps records the rows of the same study run locally (the `seconds`
timings and wall-time metrics aside), SAE checkpoints (one per layer) and learner checkpoints/stores (one per seed) are
byte-identical to local ones, `repscope study` runs such a file, and a bad `ray` value is a one-line ConfigError.

Local references run with one torch/BLAS thread, as each Ray worker does (one CPU each): CPU kernels can round
differently with another thread count, and the promise is equal rows and bytes, not closeness.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")

from repscope.errors import ConfigError  # noqa: E402
from repscope.results import ResultsDB  # noqa: E402
from repscope.study import load_study, run_study  # noqa: E402

N = 240
TIMING = {"train_seconds", "samples_per_s"}  # metric rows that measure wall time
LAYERS = ["noise", "mixed", "clean"]


@pytest.fixture(scope="module")
def cluster():
    """One local Ray for this file (no dashboard), shut down at the end."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def _write_toy(workdir: Path) -> None:
    """The study store `toy` (three pooled layers over planted factors), written straight into the workdir so the
    study reuses it instead of extracting."""
    from repscope.store import write_store

    rng = np.random.default_rng(0)
    f = rng.integers(0, 3, size=(N, 3))
    samples = pd.DataFrame({"id": np.arange(N), "label": f[:, 0], "colour": f[:, 0], "size": f[:, 1],
                            "kind": f[:, 2]})
    layers = {"noise": rng.normal(size=(N, 8)).astype(np.float32),
              "mixed": (f @ rng.normal(size=(3, 8)) + 0.5 * rng.normal(size=(N, 8))).astype(np.float32),
              "clean": np.concatenate([f[:, [2, 0, 1]] * 2.0, rng.normal(size=(N, 5))], 1).astype(np.float32)}
    write_store(workdir / "toy", layers, samples, provenance={"model": "toy"}, chunk_rows=64)


SAE = {"layer": ["noise", "clean"], "k": 4, "expansion": 2, "n_steps": 30, "batch_size": 64, "holdout_every": 5,
       "seed": 3, "n_cards": 3, "device": "cpu", "out": "sae"}
LEARN = {"learner": "ae", "layer": "clean", "latents": 3, "epochs": 2, "hidden": 8, "batch_size": 64, "seeds": [0, 1],
         "target": "label", "factors": ["colour", "size"], "metrics": ["mig"], "out_dir": "learned", "device": "cpu",
         "options": {"threads": 1}}
STEPS = [("probe", {"probes": "logistic", "target": "label", "device": "cpu"}), ("sae", SAE), ("learn", LEARN)]
MORE = [("compare", {"measures": "linear_cka", "max_rows": None, "device": "cpu"}),
        ("geometry", {"measures": "twonn,rank", "device": "cpu"}),
        ("disentangle", {"factors": "colour,size,kind", "metrics": ["mig", "sap"], "max_rows": None}),
        ("truncate", {"dims": [2, 4], "max_rows": None, "device": "cpu"}),
        ("quantize_embeddings", {"schemes": "int8,binary", "max_rows": None, "device": "cpu"})]


def _study(home: Path, steps: list[tuple[str, dict]], ray_value: str | None) -> Path:
    """A study file in `home` (workdir `runs` holding the toy store); every step gets `ray: ray_value` (beside `run:`)
    if given."""
    runs = home / "runs"
    runs.mkdir(parents=True)
    _write_toy(runs)
    analyses = [{"run": run, "stores": ["toy"], "params": params, **({"ray": ray_value} if ray_value else {})}
                for run, params in steps]
    path = home / "study.yaml"
    path.write_text(json.dumps({"name": "raystudy", "workdir": "runs", "device": "cpu",
                                "stores": [{"name": "toy", "model": "toy", "data": "toy"}], "analyses": analyses}))
    return path


@pytest.fixture()
def tasks(monkeypatch) -> list[tuple[str, int]]:
    """(unit function, number of units) of every Ray fan-out in the test: the Ray steps really ran on Ray."""
    from repscope.distributed.executor import RayExecutor

    seen: list[tuple[str, int]] = []
    real_map = RayExecutor.map

    def counting(self, units):
        seen.append((units[0].fn.__name__ if units else "", len(units)))
        return real_map(self, units)

    monkeypatch.setattr(RayExecutor, "map", counting)
    return seen


def _one_thread():
    from repscope.threads import limit_threads

    return limit_threads(1)


def _recorded(home: Path) -> tuple[pd.DataFrame, list]:
    """Rows (timings dropped) and artifacts (store provenance aside: it holds the store's creation time)."""
    db = ResultsDB(home / "runs" / "repscope.duckdb")
    df = db.frame()
    df = df[~df["metric"].isin(TIMING)].drop(columns=["seconds", "created"]).reset_index(drop=True)
    arts = [(a["analysis"], a["name"], a["payload"]) for a in db.artifacts() if a["analysis"] != "stores"]
    return df, arts


def _run_local(home: Path, path: Path, monkeypatch) -> None:
    monkeypatch.chdir(home)  # the learn step's relative out_dir lands in this run's folder
    with _one_thread():
        run_study(path)


def _same_store(a: Path, b: Path) -> None:
    """Two stores hold byte-identical arrays and samples, and the same manifest but for the creation time (and the
    checksum over it); the writer lock file names the writing process."""
    skip = {"manifest.json", ".writer.lock"}
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file() and p.name not in skip)
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file() and p.name not in skip)
    assert files_a == files_b and len(files_a) > 2
    assert all((a / f).read_bytes() == (b / f).read_bytes() for f in files_a)
    ma, mb = (json.loads((d / "manifest.json").read_text()) for d in (a, b))
    for m in (ma, mb):
        m.pop("checksum"), m["provenance"].pop("created")
    assert ma == mb


def _learner_checkpoint(path: Path) -> tuple[dict, dict]:
    """(metadata, tensors) of a learner checkpoint. Compared as such, not as bytes: safetensors writes its metadata
    map in hash order, which differs between processes (two local runs differ in those bytes too)."""
    from safetensors import safe_open

    with safe_open(str(path), framework="pt") as f:
        return dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}


def test_ray_study_steps_give_local_rows_and_identical_checkpoints(cluster, tasks, tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from repscope.cli import app
    from repscope.dictionary.checkpoint import load_tensors

    local, remote = tmp_path / "local", tmp_path / "ray"
    _run_local(local, _study(local, STEPS, None), monkeypatch)
    assert tasks == []
    path = _study(remote, STEPS, "auto")
    assert all(a.ray == "auto" for a in load_study(path).analyses)
    monkeypatch.chdir(remote)
    with _one_thread():  # the driver-side parts (concept depth, RRL concatenation) as in the local run
        r = CliRunner().invoke(app, ["study", str(path)], env={"COLUMNS": "200"})
    assert r.exit_code == 0, (r.output, r.exception)
    assert (remote / "runs" / "report.html").is_file()
    assert tasks == [("sweep_layer", 3), ("_sae_layer", 2), ("_learn_seed", 2)]
    lf, la = _recorded(local)
    rf, ra = _recorded(remote)
    assert {"probe", "sae", "learn", "probe_concat", "disentangle"} <= set(lf["analysis"])
    pd.testing.assert_frame_equal(lf, rf)
    assert la == ra and any(a[0] == "sae" for a in la)
    # one SAE per layer, each in its own checkpoint folder, bit-identical to the local one
    sae = sorted(p.name for p in (remote / "runs" / "sae").iterdir())
    assert sae == ["toy_clean_topk", "toy_noise_topk"]
    for name in sae:
        a, b = local / "runs" / "sae" / name, remote / "runs" / "sae" / name
        assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
        ta, tb = load_tensors(a, "trainer.safetensors"), load_tensors(b, "trainer.safetensors")
        ta.pop("extra.torch_rng"), tb.pop("extra.torch_rng")  # the process's global RNG, untouched by training
        assert sorted(ta) == sorted(tb) and all(torch.equal(ta[k], tb[k]) for k in ta)
    wa = load_tensors(remote / "runs" / "sae" / sae[0])["W_dec"]
    wb = load_tensors(remote / "runs" / "sae" / sae[1])["W_dec"]
    assert not torch.equal(wa, wb)  # two layers, two dictionaries: the comparison above is not vacuous
    # one learner per seed: checkpoint and latent store identical to the local ones
    s0, s1 = (_learner_checkpoint(remote / "learned" / f"ae_toy_s{i}.safetensors")[0] for i in (0, 1))
    assert s0["history"] != s1["history"]  # two seeds, two learners: the comparison below is not vacuous
    for seed in (0, 1):
        name = f"ae_toy_s{seed}"
        a, b = local / "learned", remote / "learned"
        (ma, ta), (mb, tb) = (_learner_checkpoint(d / f"{name}.safetensors") for d in (a, b))
        assert ma == mb and json.loads(ma["hparams"])["seed"] == seed
        assert sorted(ta) == sorted(tb) and len(ta) > 2 and all(torch.equal(ta[k], tb[k]) for k in ta)
        _same_store(a / name, b / name)


def test_ray_study_more_steps_give_local_rows(cluster, tasks, tmp_path, monkeypatch):
    local, remote = tmp_path / "local", tmp_path / "ray"
    _run_local(local, _study(local, MORE, None), monkeypatch)
    assert tasks == []
    with _one_thread():
        run_study(_study(remote, MORE, "auto"))
    assert tasks == [("compare_measure", 1), ("profile_layer", 3), ("disentangle_layer", 3), ("_truncate_layer", 3),
                     ("_quantize_embeddings_layer", 3)]
    lf, la = _recorded(local)
    rf, ra = _recorded(remote)
    analyses = {"similarity", "geometry", "disentangle", "truncate", "truncate_summary", "quantize_embeddings"}
    assert analyses <= set(lf["analysis"]), set(lf["analysis"])
    pd.testing.assert_frame_equal(lf, rf)
    assert la == ra


@pytest.mark.parametrize("value,shown", [("3", "got 3"), ("[auto]", "got \\['auto'\\]"), ("''", "got ''"),
                                         ("true", "got True")])
def test_bad_ray_value_is_one_line_config_error(tmp_path, value, shown):
    cfg = tmp_path / "s.yaml"
    cfg.write_text(f"name: x\nstores: [{{name: a, model: m, data: d}}]\n"
                   f"analyses: [{{run: geometry, stores: [a]}}, {{run: sae, stores: [a], params: {{layer: x}}, "
                   f"ray: {value}}}]\n")
    with pytest.raises(ConfigError, match=r"^s\.yaml: analyses\.1\.ray: ray must be auto, "
                                          rf"local or a cluster address .*{shown}") as err:
        load_study(cfg)
    assert "\n" not in str(err.value)
