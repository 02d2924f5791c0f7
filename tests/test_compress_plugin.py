"""The compress plugin on the declared contract: CLI commands (truncate, quantize-embeddings, adapter train|apply),
one-line errors, study steps checked on load, report sections, the adapted store's provenance, the demo step."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from repscope.errors import ConfigError
from repscope.results import ResultsDB
from repscope.store import RepStore, write_store
from repscope.study import load_study, run_study


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    """Layer `signal`: 4 classes in a rank-4 strong signal, randomly rotated into 48 dims of isotropic noise."""
    rng = np.random.default_rng(0)
    n, d = 400, 48
    y = rng.integers(0, 4, n)
    sig = rng.normal(size=(4, 4))[y] * 4 + rng.normal(size=(n, 4))
    q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    x = np.concatenate([sig, rng.normal(size=(n, d - 4))], 1) @ q.T
    samples = pd.DataFrame({"id": np.arange(n), "label": y,
                            "split": np.where(np.arange(n) % 4 == 0, "test", "train")})
    path = tmp_path_factory.mktemp("cmp") / "planted"
    write_store(path, {"noise": rng.normal(size=(n, d)).astype(np.float32), "signal": x.astype(np.float32)},
                samples=samples, chunk_rows=128)
    return path


def _run(*args):
    from tests.reliability.conftest import run_main

    return run_main(*args)


def test_cli_truncate_records_grid_and_summary(planted, tmp_path):
    db = tmp_path / "r.duckdb"
    r = _run("truncate", planted, "--target", "label", "--basis", "raw,pca", "--dims", "4,16", "--db", db,
             "--format", "csv", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout))
    assert set(df["analysis"]) == {"truncate", "truncate_summary"}
    stored = ResultsDB(db).frame(analysis="truncate")
    assert len(stored) == (df["analysis"] == "truncate").sum()
    r = _run("truncate", planted, "--dims", "4", "--db", db, "--device", "cpu")  # the human table
    assert r.returncode == 0 and "smallest (layer, dim)" in r.stdout


@pytest.mark.parametrize("args, needle", [
    (("truncate", "{store}", "--dims", "8,100"), "prefix dim 100 is larger than the layer width d=48"),
    (("truncate", "{store}", "--dims", "8,x"), "--dims takes comma-separated integers"),
    (("truncate", "{store}", "--basis", "ica"), "unknown basis 'ica'"),
    (("quantize-embeddings", "{store}", "--schemes", "int4"), "unknown embedding quantization scheme 'int4'"),
    (("adapter", "train", "{store}", "--layer", "signal", "--objective", "contrastive"),
     "unknown adapter objective 'contrastive'"),
    (("adapter", "train", "{store}", "--layer", "nope"), "layer 'nope' not found"),
])
def test_cli_bad_input_is_one_line_exit_2(planted, tmp_path, args, needle):
    db = tmp_path / "x.duckdb"
    r = _run(*[a.format(store=planted) for a in args], "--db", db)
    assert r.returncode == 2, r.stdout + r.stderr
    assert len(r.stderr.strip().splitlines()) == 1 and needle in r.stderr, r.stderr
    assert not db.exists()


def test_cli_quantize_embeddings(planted, tmp_path):
    db = tmp_path / "q.duckdb"
    r = _run("quantize-embeddings", planted, "--layer", "signal", "--schemes", "int8,binary", "--rescore", "4",
             "--db", db, "--format", "csv", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout))
    params = [json.loads(p) for p in df["params"]]
    assert {(p["scheme"], p["rescore"]) for p in params} == {("float32", 0), ("int8", 0), ("int8", 4), ("binary", 0),
                                                            ("binary", 4)}
    assert {p["bytes_per_vector"] for p in params if p["scheme"] == "binary"} == {6}


def test_cli_adapter_train_and_apply(planted, tmp_path):
    db, ad, out = tmp_path / "a.duckdb", tmp_path / "ad" / "a.safetensors", tmp_path / "adapted"
    r = _run("adapter", "train", planted, "--layer", "signal", "--objective", "supervised", "--dims", "4,16",
             "--epochs", "5", "--out", ad, "--db", db, "--device", "cpu", "--format", "csv")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout))
    assert {json.loads(p)["method"] for p in df["params"]} == {"raw", "pca", "adapter"}
    assert ad.is_file()
    r = _run("adapter", "apply", planted, ad, "--layer", "signal", "--out", out, "--dim", "16")
    assert r.returncode == 0, r.stderr
    s = RepStore.open(out)
    assert s.layers == ["signal"] and s.layer_info("signal")["shape"] == [16]
    prov = s.provenance
    assert prov["source_store"] == str(planted.resolve()) and prov["source_layer"] == "signal"
    assert prov["adapter"] == str(ad.resolve()) and len(prov["adapter_sha256"]) == 64
    from repscope.compress.adapter import load_adapter

    model = load_adapter(ad)
    src = RepStore.open(planted).get("signal")
    torch.testing.assert_close(s.get("signal"), model.transform(src)[:, :16])
    assert (s.samples["label"].to_numpy() == RepStore.open(planted).samples["label"].to_numpy()).all()
    r = _run("adapter", "apply", planted, tmp_path / "missing.safetensors", "--layer", "signal", "--out",
             tmp_path / "o2")
    assert r.returncode == 2 and "not found" in r.stderr and not (tmp_path / "o2").exists()


@pytest.fixture(scope="module")
def unlabelled(planted, tmp_path_factory) -> Path:
    """The planted store's layers with the class in a column named `topic` (no `label`), as template stores have."""
    src = RepStore.open(planted)
    samples = src.samples.rename(columns={"label": "topic"})
    path = tmp_path_factory.mktemp("cmp") / "unlabelled"
    write_store(path, {la: src.get(la).numpy() for la in src.layers}, samples=samples, chunk_rows=128)
    return path


def _cosine_top(x: np.ndarray, k: int) -> list[set[int]]:
    """Each row's k nearest other rows by cosine, by scikit-learn (the independent reference)."""
    from sklearn.neighbors import NearestNeighbors

    idx = NearestNeighbors(n_neighbors=k + 1, metric="cosine", algorithm="brute").fit(x).kneighbors(x)[1]
    return [set(row[row != i][:k]) for i, row in enumerate(idx)]


def test_quantize_and_unsupervised_adapter_need_no_label_column(unlabelled, tmp_path):
    """Without a `label` column (and no --target): quantize-embeddings scores recall vs float32 only, the
    unsupervised adapter scores the cosine neighbourhoods each prefix keeps (checked against scikit-learn); the
    supervised adapter and a missing --target are one-line errors naming the columns there are."""
    db = tmp_path / "q.duckdb"
    r = _run("quantize-embeddings", unlabelled, "--layer", "signal", "--db", db, "--format", "csv", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout))
    assert set(df["metric"]) == {"recall@10_vs_float32"}
    assert all(json.loads(p)["target"] is None for p in df["params"])
    assert "no 'label' column" in r.stderr and "topic" in r.stderr
    ad = tmp_path / "a.safetensors"
    r = _run("adapter", "train", unlabelled, "--layer", "signal", "--dims", "4,16", "--epochs", "2", "--out", ad,
             "--db", db, "--format", "csv", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout)).assign(params=lambda d: [json.loads(p) for p in d["params"]])
    assert set(df["metric"]) == {"recall@10_vs_full"}
    assert {p["method"] for p in df["params"]} == {"raw", "pca", "adapter"}
    s = RepStore.open(unlabelled)
    x_eval = s.get("signal").numpy()[(s.samples["split"] == "test").to_numpy()]  # the split's eval rows
    full = _cosine_top(x_eval, 10)
    for m in (4, 16, 48):
        want = np.mean([len(a & b) / 10 for a, b in zip(_cosine_top(x_eval[:, :m], 10), full, strict=True)])
        got = df[[p["method"] == "raw" and p["dim"] == m for p in df["params"]]]["value"]
        assert len(got) == 1 and got.iloc[0] == pytest.approx(want, abs=1e-12), m
    assert df[[p["method"] == "raw" and p["dim"] == 48 for p in df["params"]]]["value"].iloc[0] == 1.0
    for args, needle in ((("--objective", "supervised"), "the supervised adapter needs a label column"),
                         (("--target", "nope"), "target column 'nope' not in samples")):
        out = tmp_path / "x.safetensors"
        r = _run("adapter", "train", unlabelled, "--layer", "signal", "--out", out, "--db", tmp_path / "x.duckdb",
                 *args)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
        assert needle in r.stderr and "topic, split" in r.stderr, r.stderr
        assert not out.exists() and not (tmp_path / "x.duckdb").exists()


def _study(tmp_path: Path, store: Path, analyses: list[dict]) -> Path:
    y = tmp_path / "s.yaml"
    y.write_text(json.dumps({"name": "cmp", "workdir": "w", "stores": [
        {"name": "planted", "model": "digits-mlp:0", "data": "digits"}], "analyses": analyses}))
    (tmp_path / "w").mkdir(exist_ok=True)
    link = tmp_path / "w" / "planted"
    if not link.exists():
        link.symlink_to(store, target_is_directory=True)
    return y


def test_study_params_are_checked_on_load(planted, tmp_path):
    y = _study(tmp_path, planted, [{"run": "truncate", "stores": ["planted"], "params": {"basis": "raw"}}])
    with pytest.raises(ConfigError, match=r"run: truncate\): unknown param 'basis'"):
        load_study(y)
    y = _study(tmp_path, planted, [{"run": "quantize_embeddings", "stores": ["planted"],
                                    "params": {"schemes": "int8,int3"}}])
    with pytest.raises(ConfigError, match="unknown embedding quantization scheme 'int3'"):
        load_study(y)
    y = _study(tmp_path, planted, [{"run": "adapter", "stores": ["planted"],
                                    "params": {"layer": "signal", "kind": "transformer"}}])
    with pytest.raises(ConfigError, match="unknown adapter kind 'transformer'"):
        load_study(y)


def test_study_runs_all_steps_and_report_has_sections(planted, tmp_path):
    y = _study(tmp_path, planted, [
        {"run": "truncate", "stores": ["planted"], "params": {"dims": [4, 16], "device": "cpu"}},
        {"run": "adapter", "stores": ["planted"], "params": {"layer": "signal", "dims": [4, 16], "epochs": 3,
                                                             "device": "cpu"}},
        {"run": "quantize_embeddings", "stores": ["planted"], "params": {"layers": "signal", "rescore": 2,
                                                                         "device": "cpu"}}])
    html = run_study(y).read_text()
    for title in ("Compression: truncation curves (MRL / 2DMSE)", "Compression: Matryoshka adapter, before vs after",
                  "Compression: embedding quantization (int8, binary, rescoring)"):
        assert title in html
    df = ResultsDB(tmp_path / "w" / "repscope.duckdb").frame()
    assert {"truncate", "truncate_summary", "adapter", "quantize_embeddings"} <= set(df["analysis"])
    assert html.index("Compression: truncation") < html.index("Disentanglement") if "Disentanglement" in html else True


def test_demo_step_on_a_small_templates_store(tmp_path):
    from repscope.compress import demo
    from repscope.demo_context import DemoContext

    rng = np.random.default_rng(0)
    n = 240
    topic = rng.integers(0, 3, n)
    layers = {name: (rng.normal(size=(3, 32))[topic] + rng.normal(size=(n, 32))).astype(np.float32)
              for name in demo.DEMO_LAYERS.split(",")}
    store = write_store(tmp_path / "minilm_templates", layers, samples=pd.DataFrame({"id": np.arange(n),
                                                                                      "topic": topic}))
    ctx = DemoContext(workdir=tmp_path, db=ResultsDB(tmp_path / "d.duckdb", study="demo"),
                      stores={"minilm_templates": store}, device="cpu")
    demo.run(ctx)
    df = ctx.db.frame()
    assert {"truncate", "truncate_summary", "quantize_embeddings"} <= set(df["analysis"])


def test_public_api_resolves():
    import repscope.compress as c

    assert c.__all__ and len(set(c.__all__)) == len(c.__all__)
    assert all(getattr(c, n) is not None for n in c.__all__)
