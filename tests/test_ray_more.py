"""More Ray scale-out on one local Ray (`ray.init(num_cpus=2)`, started here and shut down at the end): `sae train`
(one SAE per layer, checkpoints bit-identical to local ones), `disentangle`, `truncate` and `quantize-embeddings`
give the local rows, and token-level layers extract through Ray byte-identically to a local extraction.

References run with one torch/BLAS thread, as each Ray worker does (one CPU each): CPU kernels can round differently
with another thread count, and the promise is equal rows and bytes, not closeness.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ray = pytest.importorskip("ray")
torch = pytest.importorskip("torch")

from repscope.sources.models import TorchModuleAdapter  # noqa: E402

N = 360
FACTORS = ["colour", "size", "kind"]
TIMING = {"train_seconds", "samples_per_s"}  # SAE metric rows that measure wall time


@pytest.fixture(scope="module")
def cluster():
    """One local Ray for this file (no dashboard), shut down at the end."""
    if not ray.is_initialized():
        ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the toy models below travel by value
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three pooled layers over planted factors: pure noise, factors mixed linearly, factors on their own axes."""
    from repscope.store import write_store

    rng = np.random.default_rng(0)
    f = rng.integers(0, 4, size=(N, 3))
    samples = pd.DataFrame({"id": np.arange(N), "label": f[:, 0], "colour": f[:, 0], "size": f[:, 1],
                            "kind": f[:, 2]})
    layers = {"noise": rng.normal(size=(N, 12)).astype(np.float32),
              "mixed": (f @ rng.normal(size=(3, 12)) + 0.5 * rng.normal(size=(N, 12))).astype(np.float32),
              "clean": np.concatenate([f[:, [2, 0, 1]] * 2.0, rng.normal(size=(N, 9))], 1).astype(np.float32)}
    return write_store(tmp_path_factory.mktemp("more") / "toy", layers, samples, provenance={"model": "toy"},
                       chunk_rows=128)


def _rows(result) -> pd.DataFrame:
    return result.frame().drop(columns="seconds")


def _one_thread():
    from repscope.threads import limit_threads

    return limit_threads(1)


# ---- sae train --------------------------------------------------------------------------------------------------
SAE_KW = {"arch": "topk", "k": 4, "expansion": 2.0, "n_steps": 40, "batch_size": 64, "holdout_every": 5, "seed": 3,
          "device": "cpu", "n_cards": 4, "checkpoint_every": 0}


def _config(d: Path) -> dict:
    cfg = json.loads((d / "config.json").read_text())
    for key in TIMING:
        cfg["metrics"].pop(key, None)
    return cfg


def test_ray_sae_train_gives_local_rows_and_identical_checkpoints(cluster, store, tmp_path):
    from repscope.dictionary.checkpoint import load_tensors
    from repscope.dictionary.layers import plan_sae_layers
    from repscope.distributed.executor import LocalExecutor, RayExecutor
    from repscope.results import Result

    layers = ["noise", "clean"]
    with _one_thread():
        local = LocalExecutor().map(plan_sae_layers(store, layers, [tmp_path / "local" / la for la in layers],
                                                    **SAE_KW))
    remote = RayExecutor("auto").map(plan_sae_layers(store, layers, [tmp_path / "ray" / la for la in layers],
                                                     **SAE_KW))
    assert all(r.estimator is None and r.features for r in local + remote)  # weights stay in the folders
    lr, rr = Result(), Result()
    for a, b in zip(local, remote, strict=True):
        lr.extend(a)
        rr.extend(b)
    lf, rf = _rows(lr), _rows(rr)
    keep_l, keep_r = ~lf["metric"].isin(TIMING), ~rf["metric"].isin(TIMING)
    assert keep_l.sum() > 2 * 6 and lf[keep_l].reset_index(drop=True).equals(rf[keep_r].reset_index(drop=True))
    assert list(lf["layer"].unique()) == layers
    assert [(x.name, x.payload) for x in lr.artifacts] == [(x.name, x.payload) for x in rr.artifacts]
    for la in layers:
        a, b = tmp_path / "local" / la, tmp_path / "ray" / la
        assert (a / "model.safetensors").read_bytes() == (b / "model.safetensors").read_bytes()
        assert _config(a) == _config(b)
        ta, tb = load_tensors(a, "trainer.safetensors"), load_tensors(b, "trainer.safetensors")
        ta.pop("extra.torch_rng"), tb.pop("extra.torch_rng")  # the process's global RNG, untouched by training
        assert sorted(ta) == sorted(tb) and all(torch.equal(ta[k], tb[k]) for k in ta)
    # the two layers really learned different dictionaries (the comparison above is not vacuous)
    wa = load_tensors(tmp_path / "ray" / "noise")["W_dec"]
    wb = load_tensors(tmp_path / "ray" / "clean")["W_dec"]
    assert wa.shape == wb.shape and not torch.equal(wa, wb)


def test_ray_sae_train_refuses_shared_folders(store, tmp_path):
    """The driver checks the folders while planning, before any unit (local or Ray) exists."""
    from repscope.dictionary.layers import plan_sae_layers
    from repscope.errors import ConfigError

    with pytest.raises(ConfigError, match="two layers would write the SAE folder"):
        plan_sae_layers(store, ["noise", "clean"], [tmp_path / "same", tmp_path / "x" / ".." / "same"], **SAE_KW)
    assert not (tmp_path / "same").exists()


# ---- disentangle, truncate, quantize-embeddings -----------------------------------------------------------------
DIS_KW = {"metrics": ["mig", "sap", "modularity", "dci"], "max_rows": 300, "seed": 1}  # DCI: the numba GBT
TRUNC_KW = {"target": "label", "bases": ["raw", "pca"], "dims": [2, 6], "seed": 0, "max_rows": None,
            "device": "cpu"}
QUANT_KW = {"schemes": ["int8", "binary"], "rescore": 2, "k": 5, "target": "label", "seed": 0, "device": "cpu"}


def test_ray_disentangle_gives_the_local_rows(cluster, store):
    from repscope.disentangle.store import disentangle_store
    from repscope.disentangle.study import plan_disentangle
    from repscope.distributed.executor import LocalExecutor, RayExecutor

    with _one_thread():
        local = disentangle_store(store, FACTORS, **DIS_KW)  # the whole-store function: the reference
        units = LocalExecutor().run(plan_disentangle(store, FACTORS, **DIS_KW))
    remote = RayExecutor("auto").run(plan_disentangle(store, FACTORS, **DIS_KW))
    lf = _rows(local)
    assert len(lf) == 3 * 6 and list(lf["layer"].unique()) == store.layers
    mig = lf[lf.metric == "mig"].set_index("layer")["value"]
    assert mig["clean"] > 0.5 > mig["noise"]  # planted: the factors sit on the clean layer's axes
    for got in (units, remote):
        assert lf.equals(_rows(got))
        assert [(a.name, a.payload) for a in local.artifacts] == [(a.name, a.payload) for a in got.artifacts]


def test_ray_compare_over_the_memory_budget_gives_the_local_streamed_rows(cluster, store, capsys):
    """Over the budget the plan has no units: its combine runs the local streaming path on the driver (its warning
    on the driver's stderr), whichever executor ran the (no) units."""
    from repscope.distributed.executor import RayExecutor
    from repscope.similarity.matrix import compare_stores
    from repscope.similarity.plan import plan_compare

    # 60 KB: the three layers (360 × 36 floats, ×5 working copies) cannot be loaded whole, CKA's Grams can stream
    kw = {"max_rows": None, "device": "cpu", "max_memory": 60_000}
    local = compare_stores(store, None, ["linear_cka", "procrustes"], **kw)
    capsys.readouterr()
    plan = plan_compare(store, None, ["linear_cka", "procrustes"], **kw)
    assert plan.units == []
    remote = RayExecutor("auto").run(plan.units, plan.combine)
    assert "memory budget" in capsys.readouterr().err
    lf = _rows(local)
    params = [json.loads(p) if isinstance(p, str) else p for p in lf["params"]]
    assert all(p.get("streaming") is True for p, m in zip(params, lf.metric, strict=True) if m == "linear_cka")
    assert all(p.get("subsampled") is True and p["rows_used"] < N for p, m in zip(params, lf.metric, strict=True)
               if m == "procrustes")
    assert lf.equals(_rows(remote))
    loaded = compare_stores(store, None, ["linear_cka"], max_rows=None, device="cpu", max_memory="1GB")
    np.testing.assert_allclose(_rows(loaded)["value"], lf[lf.metric == "linear_cka"]["value"], rtol=1e-6)


def test_ray_truncate_and_quantize_embeddings_give_the_local_rows(cluster, store):
    from repscope.compress.store import quantize_embeddings_store
    from repscope.compress.study import combine_truncate_store, plan_quantize_embeddings_store, plan_truncate_store
    from repscope.compress.truncate import truncate_store
    from repscope.distributed.executor import LocalExecutor, RayExecutor

    def truncate_on(executor):  # one unit per layer; the cross-layer summary on the driver
        return combine_truncate_store(store, executor.map(plan_truncate_store(store, **TRUNC_KW)), "label")

    with _one_thread():
        local_t = truncate_store(store, **TRUNC_KW)  # the whole-store functions: the references
        local_q = quantize_embeddings_store(store, None, **QUANT_KW)
        units_t = truncate_on(LocalExecutor())
        units_q = LocalExecutor().run(plan_quantize_embeddings_store(store, None, **QUANT_KW))
    remote_t = truncate_on(RayExecutor("auto"))
    remote_q = RayExecutor("auto").run(plan_quantize_embeddings_store(store, None, **QUANT_KW))
    lt = _rows(local_t)
    assert set(lt["analysis"]) == {"truncate", "truncate_summary"} and set(lt["layer"]) == set(store.layers)
    for got in (units_t, remote_t):
        assert lt.equals(_rows(got))
        assert [(a.name, a.payload) for a in local_t.artifacts] == [(a.name, a.payload) for a in got.artifacts]
    lq = _rows(local_q)
    assert list(lq["layer"].unique()) == store.layers and lq.equals(_rows(units_q)) and lq.equals(_rows(remote_q))


def test_cli_sae_disentangle_truncate_with_ray_record_rows(cluster, store, tmp_path):
    """Through the CLI on the Ray this file started: each command records its rows (driver only) in the DB."""
    import duckdb
    from typer.testing import CliRunner

    from repscope.cli import app

    runner = CliRunner()
    db = tmp_path / "r.duckdb"
    root = str(store.root)
    r = runner.invoke(app, ["sae", "train", root, "--layer", "noise,clean", "--k", "4", "--expansion", "2",
                            "--steps", "20", "--batch-size", "64", "--holdout", "5", "--device", "cpu",
                            "--out", str(tmp_path / "saes"), "--ray", "auto", "--db", str(db)])
    assert r.exit_code == 0, r.output
    assert sorted(p.name for p in (tmp_path / "saes").iterdir()) == ["toy_clean_topk", "toy_noise_topk"]
    for args in (["disentangle", root, "--factors", "colour,size", "--metrics", "mig,sap"],
                 ["truncate", root, "--dims", "2,6", "--device", "cpu"],
                 ["quantize-embeddings", root, "--schemes", "int8", "--device", "cpu"]):
        r = runner.invoke(app, [*args, "--ray", "auto", "--db", str(db), "--format", "json"])
        assert r.exit_code == 0, r.output
    with duckdb.connect(str(db), read_only=True) as con:
        got = dict(con.execute("select analysis, count(distinct layer) from results group by analysis").fetchall())
    assert got == {"sae": 2, "disentangle": 3, "truncate": 3, "truncate_summary": got.get("truncate_summary", -1),
                   "quantize_embeddings": 3}
    assert got["truncate_summary"] >= 1


# ---- token-level layers through Ray extraction --------------------------------------------------------------
class _MeanTokens(torch.nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.mean(1)


class _TokenNet(torch.nn.Module):
    """enc: token-level (b, T, 6); pool: one vector per sample (b, 6)."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng():  # fixed weights without touching the test process's RNG
            torch.manual_seed(0)
            self.enc = torch.nn.Linear(4, 6)
        self.pool = _MeanTokens()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(torch.tanh(self.enc(x)))


class _MaskedTokens(TorchModuleAdapter):
    """Sequences padded with all-zero tokens; the mask marks the real ones, so samples have different lengths."""

    def run(self, items, layers):
        raw, _ = super().run(items, layers)
        return raw, (torch.as_tensor(items) != 0).any(-1).long()


def _token_data():
    from repscope.sources.datasets import ArrayDataset

    rng = np.random.default_rng(0)
    n, t = 2000, 11  # ~12 000 tokens: two 8192-token chunks, whose border falls inside a row chunk
    x = rng.normal(size=(n, t, 4)).astype(np.float32) + 3.0
    lengths = rng.integers(1, t + 1, size=n)
    x[np.arange(t)[None, :] >= lengths[:, None]] = 0.0
    return ArrayDataset(x, labels=rng.integers(0, 2, n), name="seqs"), lengths


@pytest.fixture(scope="module")
def token_local(tmp_path_factory):
    from repscope.extract import extract

    data, _ = _token_data()  # this process's thread count, as the workers of a one-node Ray use
    return extract(_MaskedTokens(_TokenNet(), device="cpu"), data, tmp_path_factory.mktemp("tok") / "s",
                   pooling="none", chunk_rows=192, batch_size=50, progress=False)


def _same_store(a: Path, b: Path) -> None:
    """Every array file byte for byte, samples.parquet too; manifests equal but for the creation time and its
    checksum and the resume command."""
    files = [sorted(p.relative_to(r / "arrays") for p in (r / "arrays").rglob("*") if p.is_file()) for r in (a, b)]
    assert files[0] == files[1]
    assert [str(f) for f in files[0] if (a / "arrays" / f).read_bytes() != (b / "arrays" / f).read_bytes()] == []
    assert (a / "samples.parquet").read_bytes() == (b / "samples.parquet").read_bytes()
    ma, mb = (json.loads((p / "manifest.json").read_text()) for p in (a, b))
    for m in (ma, mb):
        m["provenance"].pop("created")
        m.pop("checksum")
        m.pop("resume_command")
    assert ma == mb


def test_token_layers_through_ray_are_byte_identical(cluster, token_local, tmp_path):
    from repscope.distributed.ray_extract import ray_extract
    from repscope.store import RepStore

    data, lengths = _token_data()
    loc = token_local
    assert loc.is_tokens("enc") and not loc.is_tokens("pool")
    assert np.array_equal(np.diff(loc.offsets("enc")), lengths)  # variable lengths, really stored
    assert len(loc.manifest["layers"]["enc"]["chunk_hashes"]) == 2  # the token array spans two chunks
    store = ray_extract(_MaskedTokens(_TokenNet(), device="cpu"), data, tmp_path / "r", pooling="none",
                        chunk_rows=192, batch_size=50, workers=2, progress=False)
    _same_store(loc.root, store.root)
    RepStore.open(store.root).verify()


def test_token_layers_killed_worker_is_retried(cluster, token_local, tmp_path, monkeypatch):
    from repscope.distributed.ray_extract import ray_extract

    data, _ = _token_data()
    marker = tmp_path / "killed"
    monkeypatch.setenv("REPSCOPE_FAULT", f"ray-kill-chunk:4:{marker}")  # SIGKILL once chunk 4 is computed
    store = ray_extract(_MaskedTokens(_TokenNet(), device="cpu"), data, tmp_path / "r", pooling="none",
                        chunk_rows=192, batch_size=50, workers=2, window=3, progress=False)
    assert marker.exists(), "the fault never fired: the test did not kill a worker"
    _same_store(token_local.root, store.root)


def test_a_failing_task_is_one_error_and_the_others_are_collected(cluster, store):
    """A bad factor fails every per-layer task: the driver raises the first one's DataError as itself, cancels and
    collects the rest, so Ray logs no 'unhandled error' for them afterwards (the CLI's one-line promise)."""
    import gc
    import logging
    import time

    from repscope.disentangle.study import plan_disentangle
    from repscope.distributed.executor import RayExecutor
    from repscope.errors import DataError

    seen: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: seen.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("ray").addHandler(handler)
    try:
        with pytest.raises(DataError, match="factor column 'nope'"):
            RayExecutor("auto").run(plan_disentangle(store, ["nope"], metrics=["mig"]))
        gc.collect()
        time.sleep(1.5)
    finally:
        logging.getLogger("ray").removeHandler(handler)
    assert not [m for m in seen if "Unhandled error" in m]
