"""The compat plugin on the declared contract: CLI command, study step (params checked on load), report section.

Planted stores: `old` holds class-structured features, `new` the same features rotated (layer `rot`) and pure noise
(layer `noise`); Procrustes must make `rot` compatible, nothing can make `noise` compatible."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repscope.analyses import COMPRESSION, DISENTANGLEMENT, plugins
from repscope.errors import ConfigError
from repscope.report.build import build_report
from repscope.results import ResultsDB
from repscope.store import write_store
from repscope.study import load_study, run_study


@pytest.fixture(scope="module")
def pair(tmp_path_factory) -> tuple[Path, Path, Path]:
    rng = np.random.default_rng(0)
    n, d = 500, 24
    y = rng.integers(0, 8, n)
    old = 1.5 * rng.standard_normal((8, d))[y] + rng.standard_normal((n, d))
    q, _ = np.linalg.qr(rng.standard_normal((d, d)))
    samples = pd.DataFrame({"id": np.arange(n), "label": y})
    root = tmp_path_factory.mktemp("compat")
    write_store(root / "old", {"pre": rng.standard_normal((n, 4)).astype(np.float32),
                               "emb": old.astype(np.float32)}, samples=samples, provenance={"model": "old-model"})
    write_store(root / "new", {"rot": (old @ q).astype(np.float32),
                               "noise": rng.standard_normal((n, d)).astype(np.float32)}, samples=samples,
                provenance={"model": "new-model"})
    write_store(root / "other", {"emb": old[:400].astype(np.float32)}, samples=samples.iloc[:400])
    return root / "old", root / "new", root / "other"


def test_plugin_is_declared_between_compression_and_disentanglement():
    p = {x.name: x for x in plugins()}["compat"]
    assert COMPRESSION < p.order < DISENTANGLEMENT
    assert [s.name for s in p.steps] == ["compat"]


def test_cli_rotated_model_is_compatible_after_procrustes(pair, tmp_path):
    from tests.reliability.conftest import run_main

    old, new, _ = pair
    db = tmp_path / "r.duckdb"
    r = run_main("compat", old, new, "--target", "label", "--transforms", "none,procrustes,ridge", "--layer-old",
                 "emb", "--layer-new", "rot", "--db", db, "--format", "csv")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout))
    df["params"] = df["params"].map(json.loads)
    for k in ("query", "gallery", "transform", "direction"):
        df[k] = df["params"].map(lambda p, k=k: p[k])
    mp = df[df["metric"] == "mAP"].set_index(["query", "gallery", "transform"])["value"]
    assert abs(mp[("procrustes(new)", "old", "procrustes")] - mp[("old", "old", "-")]) < 1e-4  # float32 stores
    assert mp[("new", "old", "none")] < 0.3 < mp[("old", "old", "-")]
    assert set(df["layer"]) == {"emb"} and set(df["layer_b"]) == {"rot"}
    assert set(df["layer_index"]) == {1} and set(df["layer_b_index"]) == {0}
    assert set(df["store"]) == {"old → new"}
    assert len(ResultsDB(db).frame(analysis="compat")) == len(df)
    r = run_main("compat", old, new, "--layer-old", "emb", "--layer-new", "noise", "--transforms", "procrustes,bct",
                 "--bct-epochs", "50", "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    rows = json.loads(r.stdout)
    compat = {(x["params"]["query"], x["value"]) for x in rows if x["metric"] == "compatible:mAP"}
    assert compat == {("procrustes(new)", 0.0), ("bct(new)", 0.0)}  # noise is never compatible


def test_cli_bad_input_is_one_line(pair, tmp_path):
    from tests.reliability.conftest import run_main

    old, new, other = pair
    db = tmp_path / "x.duckdb"
    r = run_main("compat", old, other, "--layer-old", "emb", "--db", db)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1
    assert "do not hold the same samples" in r.stderr
    assert not db.exists()
    r = run_main("compat", old, new, "--transforms", "none,rotate", "--db", db)
    assert r.returncode == 2 and "unknown compat transform 'rotate'" in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1
    r = run_main("compat", old, new, "--layer-new", "nope", "--db", db)
    assert r.returncode == 2 and "nope" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = run_main("compat", old, new, "--target", "colour", "--db", db)
    assert r.returncode == 2 and "colour" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _study(tmp_path: Path, pair: tuple[Path, Path, Path], params: dict, stores=("old", "new")) -> Path:
    y = tmp_path / "s.yaml"
    y.write_text(json.dumps({"name": "compat", "workdir": "w", "stores": [
        {"name": "old", "model": "digits-mlp:0", "data": "digits"},
        {"name": "new", "model": "digits-mlp:1", "data": "digits"}],
        "analyses": [{"run": "compat", "stores": list(stores), "params": params}]}))
    (tmp_path / "w").mkdir(exist_ok=True)
    for name, src in zip(("old", "new"), pair[:2], strict=True):
        link = tmp_path / "w" / name
        if not link.exists():
            link.symlink_to(src, target_is_directory=True)
    return y


def test_study_step_validates_params_before_work(pair, tmp_path):
    with pytest.raises(ConfigError, match=r"analyses\.0 \(run: compat\): unknown param 'transform'"):
        load_study(_study(tmp_path, pair, {"transform": ["none"]}))
    with pytest.raises(ConfigError, match="unknown compat transform 'rotate'"):
        load_study(_study(tmp_path, pair, {"transforms": "none,rotate"}))
    with pytest.raises(ConfigError, match="fit_fraction"):
        load_study(_study(tmp_path, pair, {"fit_fraction": 1.0}))


def test_study_runs_and_report_has_compatibility_table(pair, tmp_path):
    y = _study(tmp_path, pair, {"layer_old": "emb", "layer_new": "rot", "transforms": "none,procrustes",
                                "max_rows": 400})
    html = run_study(y).read_text()
    assert "Backward compatibility: new queries against the old index" in html
    df = ResultsDB(tmp_path / "w" / "repscope.duckdb").frame(analysis="compat")
    assert {p["n_fit"] + p["n_eval"] for p in df["params"]} == {400}
    comp = df[df["metric"] == "compatible:mAP"]
    assert {p["transform"] for p in comp["params"]} == {"none", "procrustes"}
    from repscope.compat.report import compat_table

    tab = compat_table(df)
    assert list(tab["transform"][:3]) == ["-", "-", "-"] and "procrustes(new)" in set(tab["query"])
    assert build_report(ResultsDB(tmp_path / "w" / "repscope.duckdb"), tmp_path / "r2.html").exists()
    with pytest.raises(ConfigError, match="exactly two stores"):
        from repscope.compat.study import run

        run([])


def test_demo_step_records_compat_rows(tmp_path):
    from repscope.compat.demo import run
    from repscope.demo_context import DemoContext

    rng = np.random.default_rng(1)
    y = rng.integers(0, 5, 300)
    x = 2.0 * rng.standard_normal((5, 16))[y] + rng.standard_normal((300, 16))
    samples = pd.DataFrame({"id": np.arange(300), "label": y})
    stores = {name: write_store(tmp_path / name, {"act2": feats.astype(np.float32)}, samples=samples)
              for name, feats in (("digits_mlp_s0", x), ("digits_mlp_s1", x @ np.linalg.qr(
                  rng.standard_normal((16, 16)))[0]))}
    ctx = DemoContext(workdir=tmp_path, db=ResultsDB(tmp_path / "d.duckdb", study="demo"), stores=stores,
                      device="cpu")
    run(ctx)
    df = ResultsDB(tmp_path / "d.duckdb").frame(analysis="compat")
    assert {p["transform"] for p in df["params"]} == {"-", "none", "procrustes", "ridge", "bct"}
    assert set(df["layer"]) == {"act2"}
    run(DemoContext(workdir=tmp_path, db=ResultsDB(tmp_path / "e.duckdb"), stores={}))  # skipped without stores
    # the extended demo adds ResNet-20 → ResNet-56 on `avgpool` when those stores are there
    ext = {name: write_store(tmp_path / name, {"avgpool": s.get("act2").numpy()}, samples=samples)
           for name, s in (("resnet20_cifar", stores["digits_mlp_s0"]), ("resnet56_cifar", stores["digits_mlp_s1"]))}
    run(DemoContext(workdir=tmp_path, db=ResultsDB(tmp_path / "f.duckdb"), stores={**stores, **ext}, extended=True,
                    device="cpu"))
    df = ResultsDB(tmp_path / "f.duckdb").frame(analysis="compat")
    assert set(df["layer"]) == {"act2", "avgpool"}
    assert set(df["store"]) == {"digits_mlp_s0 → digits_mlp_s1", "resnet20_cifar → resnet56_cifar"}
