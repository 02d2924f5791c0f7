"""Training mechanics: deterministic chunk stream, exact resume, checkpoints without pickle, schedules, init."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from repscope.dictionary.sae import SAE
from repscope.dictionary.stream import ArraySource, ShuffledChunkStream, StoreSource
from repscope.dictionary.train import TrainConfig, geometric_median, lr_at
from repscope.errors import ConfigError, StoreError
from repscope.store import write_store

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matmuls: 1 thread is faster


def _data(n=3000, d=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    F = torch.randn(64, d, generator=g)
    coef = torch.rand(n, 64, generator=g) * (torch.rand(n, 64, generator=g) < 0.05)
    return (coef @ F + 0.01 * torch.randn(n, d, generator=g)).float()


def test_stream_visits_every_kept_row_once_per_epoch():
    X = torch.arange(1000, dtype=torch.float32)[:, None].repeat(1, 3)
    st = ShuffledChunkStream(ArraySource(X, chunk_rows=64), seed=3, buffer_rows=200, holdout_every=10)
    assert st.n_kept == 900
    ep0, _ = st.rows(0, 900)
    ep1, _ = st.rows(900, 900)
    ids0, ids1 = ep0[:, 0].long(), ep1[:, 0].long()
    expected = torch.tensor([i for i in range(1000) if i % 10 != 9])
    assert torch.equal(ids0.sort().values, expected)
    assert torch.equal(ids1.sort().values, expected)
    assert not torch.equal(ids0, ids1)  # each epoch reshuffles
    assert not torch.equal(ids0, expected)
    # batches are a pure function of the position: a fresh stream gives the same batch 7
    st2 = ShuffledChunkStream(ArraySource(X, chunk_rows=64), seed=3, buffer_rows=200, holdout_every=10)
    assert torch.equal(st.batch(7, 128)[0], st2.batch(7, 128)[0])


def test_store_stream_matches_array_stream(tmp_path):
    X = _data(n=2500)
    store = write_store(tmp_path / "s", {"a": X.numpy(), "b": (2 * X).numpy()}, chunk_rows=256)
    s1 = ShuffledChunkStream(StoreSource(store, "a", "b"), seed=1, buffer_rows=600)
    s2 = ShuffledChunkStream(ArraySource(X, 2 * X, chunk_rows=256), seed=1, buffer_rows=600)
    for step in (0, 3, 11):
        (xa, ya), (xb, yb) = s1.batch(step, 300), s2.batch(step, 300)
        assert torch.equal(xa, xb) and torch.equal(ya, yb)


@pytest.mark.parametrize("arch", ["topk", "batchtopk"])
def test_resume_is_bit_identical(tmp_path, arch):
    X = _data()
    kw = dict(arch=arch, k=4, n_latents=48, batch_size=128, n_steps=40, seed=5, device="cpu", buffer_rows=1024,
              dead_after=256)
    full = SAE(**kw).fit(X)
    ck = tmp_path / "ck"
    part = SAE(**kw, checkpoint_dir=ck, checkpoint_every=7).fit(X, stop_after=17)
    assert part.n_steps_ == 17
    cfg = json.loads((ck / "config.json").read_text())
    assert cfg["step"] == 17 and not cfg["complete"]
    resumed = SAE(**kw, checkpoint_dir=ck, resume=True).fit(X)
    assert resumed.n_steps_ == 40
    a, b = full.module_.state_dict(), resumed.module_.state_dict()
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    # and a run that was not resumed from 17 differs (the check can fail)
    other = SAE(**{**kw, "seed": 6}).fit(X)
    assert not torch.equal(other.module_.W_dec, full.module_.W_dec)


def test_resume_refuses_other_settings(tmp_path):
    X = _data(n=600)
    ck = tmp_path / "ck"
    SAE(k=2, n_latents=16, batch_size=64, n_steps=10, device="cpu", checkpoint_dir=ck).fit(X, stop_after=4)
    with pytest.raises(ConfigError, match="batch_size"):
        SAE(k=2, n_latents=16, batch_size=32, n_steps=10, device="cpu", checkpoint_dir=ck, resume=True).fit(X)


def test_checkpoint_files_are_safetensors_and_json(tmp_path):
    X = _data(n=600)
    sae = SAE(k=2, n_latents=16, batch_size=64, n_steps=10, device="cpu").fit(X)
    d = sae.save(tmp_path / "sae", note="x")
    names = sorted(p.name for p in d.iterdir())
    assert names == ["config.json", "model.safetensors"]
    head = (d / "model.safetensors").read_bytes()[:8]
    assert int.from_bytes(head, "little") > 0  # safetensors header length, not a pickle opcode
    assert (d / "model.safetensors").read_bytes()[8:9] == b"{"
    loaded = SAE.load(d, device="cpu")
    assert torch.equal(loaded.transform(X), sae.transform(X))
    with pytest.raises(StoreError):
        SAE.load(tmp_path)


def test_lr_schedule_warmup_and_decay():
    cfg = TrainConfig(n_steps=100, lr=1.0, warmup_steps=10, decay_frac=0.2)
    lrs = np.array([lr_at(s, cfg) for s in range(100)])
    assert lrs[0] == pytest.approx(0.1) and lrs[9] == pytest.approx(1.0)
    assert np.all(np.diff(lrs[:10]) > 0)
    assert np.all(lrs[10:80] == 1.0)
    assert np.all(np.diff(lrs[80:]) < 0) and lrs[-1] == pytest.approx(1 / 20)


def test_geometric_median_matches_direct_minimisation():
    from scipy.optimize import minimize

    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(size=(200, 3)), rng.normal(50, 1, size=(20, 3))])  # outliers pull the mean
    gm = geometric_median(torch.from_numpy(x)).numpy()
    res = minimize(lambda m: np.linalg.norm(x - m, axis=1).sum(), x.mean(0), method="Nelder-Mead",
                   options={"xatol": 1e-8, "fatol": 1e-10, "maxiter": 20000})
    assert np.allclose(gm, res.x, atol=1e-3)
    assert np.linalg.norm(gm) < 0.5 * np.linalg.norm(x.mean(0))


def test_fit_on_store_with_holdout_and_streaming_eval(tmp_path):
    X = _data(n=2000)
    samples = pd.DataFrame({"id": np.arange(2000), "label": np.arange(2000) % 2})
    store = write_store(tmp_path / "s", {"h": X.numpy()}, samples, chunk_rows=256)
    sae = SAE(k=4, n_latents=64, batch_size=128, n_epochs=3, holdout_every=10, device="cpu").fit(store, layer="h")
    rows = np.arange(9, 2000, 10)
    ev = sae.evaluate_store(store, "h", rows=rows)
    ref = sae.evaluate(X[rows])
    for key in ("fvu", "mse", "mean_l0"):
        assert ev[key] == pytest.approx(ref[key], rel=1e-5)
    assert sae.source_["layer"] == "h"
