"""Ray scale-out on a local Ray (`ray.init(num_cpus=2)`, started here): extraction byte-identical to local, a killed
worker retried with no lost or duplicated rows, and probe/compare/geometry sweeps giving the local rows (more
commands and token-level extraction: tests/test_ray_more.py).

The local reference runs with this process's thread count, as each Ray worker on this one-node cluster does (a CPU
forward pass can round differently with another thread count, and the store promise is bytes, not closeness); the
sweeps' local references run with one thread, as each Ray task does.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

ray = pytest.importorskip("ray")

CHUNK, BATCH = 128, 50  # 1797 digits → 15 chunks, the last one partial; batches never cross a chunk


@pytest.fixture(scope="module")
def cluster():
    """One local Ray for this file (no dashboard), shut down at the end."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def mlp_digits():
    from repscope.sources.datasets import load_sklearn
    from repscope.sources.models import TorchModuleAdapter
    from repscope.sources.zoo.mlp import train_digits_mlp

    return TorchModuleAdapter(train_digits_mlp(0, epochs=3), device="cpu"), load_sklearn("digits")


@pytest.fixture(scope="module")
def local_store(mlp_digits, tmp_path_factory):
    from repscope.extract import extract

    model, data = mlp_digits
    return extract(model, data, tmp_path_factory.mktemp("local") / "s", chunk_rows=CHUNK, batch_size=BATCH,
                   progress=False)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted((root / "arrays").rglob("*")) if p.is_file()}


def assert_same_store(a: Path, b: Path) -> None:
    """Every array file (chunks, metadata) and samples.parquet byte for byte; the manifests equal except for the
    creation time, resume command and self-checksum (which covers the creation time)."""
    fa, fb = _files(a), _files(b)
    assert sorted(fa) == sorted(fb)
    assert [k for k in fa if fa[k] != fb[k]] == []
    assert (a / "samples.parquet").read_bytes() == (b / "samples.parquet").read_bytes()
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    for m in (ma, mb):
        m["provenance"].pop("created")
        m.pop("checksum")
        m.pop("resume_command")
    assert ma == mb
    assert all(None not in info["chunk_hashes"] for info in mb["layers"].values())


def test_ray_extract_is_byte_identical_to_local(cluster, mlp_digits, local_store, tmp_path):
    from repscope.distributed.ray_extract import ray_extract
    from repscope.store import RepStore

    model, data = mlp_digits
    store = ray_extract(model, data, tmp_path / "r", chunk_rows=CHUNK, batch_size=BATCH, workers=2, progress=False)
    assert_same_store(local_store.root, store.root)
    man = store.manifest
    assert man["progress"] == {"rows_done": 1797, "complete": True}
    assert len(man["layers"]["fc1"]["chunk_hashes"]) == 15
    RepStore.open(store.root).verify()


def test_killed_worker_is_retried_without_lost_or_duplicated_rows(cluster, mlp_digits, local_store, tmp_path,
                                                                  monkeypatch):
    from repscope.distributed.ray_extract import ray_extract
    from repscope.store import RepStore

    model, data = mlp_digits
    marker = tmp_path / "killed"
    monkeypatch.setenv("REPSCOPE_FAULT", f"ray-kill-chunk:6:{marker}")  # SIGKILL after chunk 6's first layer
    store = ray_extract(model, data, tmp_path / "r", chunk_rows=CHUNK, batch_size=BATCH, workers=2, progress=False)
    assert marker.exists(), "the fault never fired: the test did not kill a worker"
    s = RepStore.open(store.root)
    s.verify()
    assert s.n_rows == 1797 and s.samples["id"].tolist() == list(range(1797))  # nothing lost, nothing twice
    x = s.get("act2").numpy()
    assert x.shape == (1797, 64) and np.isfinite(x).all()
    assert_same_store(local_store.root, store.root)


def test_ray_extract_resumes_a_store_a_killed_driver_left(cluster, mlp_digits, local_store, tmp_path):
    """A driver that died after committing some chunks (here: a store whose manifest stops at chunk 4, with later
    chunks half-written) is completed by a rerun, byte-identical to an uninterrupted run."""
    import shutil

    from repscope.distributed.ray_extract import ray_extract
    from repscope.store.manifest import read_manifest, write_manifest

    model, data = mlp_digits
    root = tmp_path / "r"
    shutil.copytree(local_store.root, root)
    man = read_manifest(root)
    man["progress"] = {"rows_done": 4 * CHUNK, "complete": False}
    for info in man["layers"].values():
        info["chunk_hashes"] = info["chunk_hashes"][:4]
    write_manifest(root, man)
    (root / "arrays" / "L_fc1" / "c" / "9" / "0").write_bytes(b"torn")  # an uncommitted chunk a worker left
    store = ray_extract(model, data, root, chunk_rows=CHUNK, batch_size=BATCH, workers=2, progress=False)
    assert_same_store(local_store.root, store.root)


def test_ray_extract_of_data_the_model_rejects_leaves_no_store(cluster, tmp_path):
    """The driver's first batch fails like a local run's (one-line DataError) and removes the store it created.
    (Token-level layers through Ray: tests/test_ray_more.py.)"""
    from repscope.distributed.ray_extract import ray_extract
    from repscope.errors import DataError
    from repscope.sources.datasets import ArrayDataset
    from repscope.sources.models import TorchModuleAdapter

    torch = pytest.importorskip("torch")
    seq = TorchModuleAdapter(torch.nn.Sequential(torch.nn.Linear(4, 3)), device="cpu")
    data = ArrayDataset(np.zeros((10, 5, 7), dtype=np.float32))  # 7 features for a 4-input layer
    with pytest.raises(DataError, match="failed on the first batch"):
        ray_extract(seq, data, tmp_path / "t", pooling="none", progress=False)
    assert not (tmp_path / "t").exists()


def _rows(result):
    return result.frame().drop(columns="seconds")


def test_ray_probe_sweep_gives_the_local_rows(cluster, local_store):
    from repscope.distributed.executor import LocalExecutor, RayExecutor
    from repscope.probe.protocols import layer_sweep
    from repscope.probe.study import plan_sweep
    from repscope.threads import limit_threads

    kw = {"probes": ["logistic", "ridge"], "target": "label", "cv": 3, "seed": 1, "device": "cpu"}
    with limit_threads(1):
        local = _rows(layer_sweep(local_store, **kw))  # the whole-store function: the reference
        units = _rows(LocalExecutor().run(plan_sweep(local_store, **kw)))
    remote = _rows(RayExecutor("auto").run(plan_sweep(local_store, **kw)))
    assert len(local) == 5 * (3 + 6)  # 5 layers × (logistic accuracy, ridge r2 + spearman) × (value, ci_low, ci_high)
    assert local.equals(units) and local.equals(remote)


def test_ray_compare_and_geometry_give_the_local_rows(cluster, local_store):
    """compare (one unit per measure, the symmetric upper triangle mirrored; within one store and across two
    views aligned by --pair-by) and geometry (one unit per layer, spectra merged) give the whole-store functions'
    rows through units, locally and on Ray."""
    from repscope.distributed.executor import LocalExecutor, RayExecutor
    from repscope.geometry.profile import geometry_profile
    from repscope.geometry.study import combine_profile, plan_profile
    from repscope.similarity.matrix import compare_stores
    from repscope.similarity.plan import plan_compare
    from repscope.store.pairing import pair_stores
    from repscope.threads import limit_threads

    ckw = {"max_rows": 600, "device": "cpu"}
    names = ["linear_cka", "procrustes", "pwcca"]  # pwcca: asymmetric, its B side prepared differently
    a, b = pair_stores([local_store, local_store], pair_by="id")
    gkw = {"measures": ["participation_ratio", "anisotropy", "rank", "twonn"], "max_rows": 500, "device": "cpu"}

    def compare_on(executor, store_a, store_b=None):
        plan = plan_compare(store_a, store_b, names, **ckw)
        return executor.run(plan.units, plan.combine)

    def profile_on(executor):
        notes: list[str] = []
        return combine_profile(local_store, executor.map(plan_profile(local_store, **gkw)), notes.append), notes

    with limit_threads(1):
        local_c = compare_stores(local_store, None, names, **ckw)  # the whole-store functions: the references
        local_ab = compare_stores(a, b, names, **ckw)
        local_g = geometry_profile(local_store, **gkw)
        units_c, units_ab = compare_on(LocalExecutor(), local_store), compare_on(LocalExecutor(), a, b)
        units_g = profile_on(LocalExecutor())
    ray = RayExecutor("auto")
    remote_c, remote_ab, remote_g = compare_on(ray, local_store), compare_on(ray, a, b), profile_on(ray)
    assert len(local_c) == 3 * 25 and len(local_ab) == 3 * 25
    assert all(p["pair_by"] == "id" for p in _rows(local_ab)["params"])
    for got in (units_c, remote_c):
        assert _rows(local_c).equals(_rows(got))
    for got in (units_ab, remote_ab):
        assert _rows(local_ab).equals(_rows(got))
    assert len(local_g) > 0 and units_g[1] == remote_g[1] == [f"s/{la}: done" for la in local_store.layers]
    for got, _ in (units_g, remote_g):
        assert _rows(local_g).equals(_rows(got))
        assert [(x.name, x.payload) for x in local_g.artifacts] == [(x.name, x.payload) for x in got.artifacts]


def test_cli_extract_and_probe_with_ray(cluster, mlp_digits, tmp_path):
    """`repscope extract --ray` and `repscope probe --ray` through the CLI, on the Ray this test file started."""
    from typer.testing import CliRunner

    from repscope.cli import app
    from repscope.sources.zoo.mlp import save_mlp
    from repscope.store import RepStore

    weights = save_mlp(mlp_digits[0].module, tmp_path / "mlp.safetensors")  # actors load the model from its spec
    runner = CliRunner()
    out = tmp_path / "cli"
    r = runner.invoke(app, ["extract", str(weights), "digits@300", "-o", str(out), "--chunk-rows", "64",
                            "--ray", "auto", "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert RepStore.open(out).n_rows == 300
    r = runner.invoke(app, ["probe", str(out), "--ray", "auto", "--db", str(tmp_path / "r.duckdb"),
                            "--format", "json"])
    assert r.exit_code == 0, r.output
    import duckdb

    with duckdb.connect(str(tmp_path / "r.duckdb"), read_only=True) as con:
        n = con.execute("select count(*) from results where analysis = 'probe'").fetchone()[0]
    assert n == 5 * 3


def test_local_path_never_imports_ray_and_missing_ray_is_one_line(tmp_path):
    """A local extract through the CLI module leaves ray out of sys.modules; `--ray` without ray → exit 2."""
    script = textwrap.dedent(f"""
        import sys
        import repscope.cli
        from repscope.extract import extract
        from repscope.sources.datasets import load_sklearn
        from repscope.sources.load import load_model
        extract(load_model("digits-mlp:0", device="cpu"), load_sklearn("digits"), {str(tmp_path / 's')!r},
                progress=False)
        assert "ray" not in sys.modules, "the local path imported ray"
        sys.modules["ray"] = None  # as if repscope[ray] were not installed
        sys.argv = ["repscope", "probe", {str(tmp_path / 's')!r}, "--ray", "auto", "--db", {str(tmp_path / 'x.db')!r}]
        repscope.cli.main()
    """)
    env = {**os.environ, "COLUMNS": "200"}
    r = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, timeout=120)
    assert r.returncode == 2, r.stderr
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "install repscope[ray]" in lines[0], r.stderr


def test_cli_ray_extract_of_a_zoo_seed_equals_the_local_store(cluster, tmp_path):
    """`repscope extract digits-mlp:3 digits --ray auto --workers 2` writes the local command's store byte for byte:
    each worker trains the seed's MLP itself (one thread, whatever its own count) and runs its forward passes with
    the local run's thread count (MKL rounds the last 5-row batch differently with 1 and 2 threads)."""
    from typer.testing import CliRunner

    from repscope.cli import app

    runner = CliRunner()
    r = runner.invoke(app, ["extract", "digits-mlp:3", "digits", "-o", str(tmp_path / "local")])
    assert r.exit_code == 0, r.output
    r = runner.invoke(app, ["extract", "digits-mlp:3", "digits", "-o", str(tmp_path / "ray"), "--ray", "auto",
                            "--workers", "2"])
    assert r.exit_code == 0, r.output
    assert_same_store(tmp_path / "local", tmp_path / "ray")
