"""MatryoshkaHead: a learner that delegates to repscope.compress.adapter. Its prefixes keep held-out cosines better than
same-size truncation of the raw features and no worse than sklearn's PCA truncation (the adapter's starting point),
it is exactly the compress adapter's training, it round-trips through safetensors, the CLI and the study step."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from repscope.errors import ConfigError, DataError
from repscope.learn import MatryoshkaHead, learner_class, load_learner

D = 16


def _rows(n: int, seed: int) -> np.ndarray:
    """Vectors whose variance grows with the coordinate index (so raw prefixes hold the least of it), plus an offset."""
    rng = np.random.default_rng(seed)
    return (rng.normal(size=(n, D)) * np.linspace(0.3, 3.0, D) + 0.5).astype(np.float32)


def _cos(z: np.ndarray) -> np.ndarray:
    z = z / np.linalg.norm(z, axis=1, keepdims=True).clip(1e-12)
    return z @ z.T


def _cos_error(z: np.ndarray, x: np.ndarray) -> float:
    """Mean squared difference between the pairwise cosines of z and of the full raw features x."""
    return float(((_cos(z) - _cos(x)) ** 2).mean())


@pytest.fixture(scope="module")
def fitted() -> MatryoshkaHead:
    return MatryoshkaHead(dims=[2, 4, 8], epochs=150, batch_size=400, lr=3e-3, device="cpu", progress=False,
                          threads=1).fit(_rows(400, 0))


def test_prefixes_beat_raw_truncation_and_match_pca_on_held_out_rows(fitted):
    from sklearn.decomposition import PCA

    x = _rows(300, 1)  # rows the head never saw
    z = fitted.transform(x)
    pca = PCA().fit(_rows(400, 0))
    errors = []
    for m in (2, 4, 8):
        head, raw = _cos_error(z[:, :m], x), _cos_error(x[:, :m], x)
        ref = _cos_error(pca.transform(x)[:, :m], x)
        assert head < 0.7 * raw, (m, head, raw)  # even 2 of 16 dims: cosines are coarse at m = 2 either way
        assert head < ref + 1e-3, (m, head, ref)  # training starts at PCA and lowers the nested loss
        errors.append((head, raw))
    assert errors[-1][0] < 0.2 * errors[-1][1]  # at m = 8 the head keeps the cosines, the raw prefix does not
    assert fitted.history_[1] < 0.9 * fitted.history_[0]  # nested loss: PCA start → trained, on the fit rows


def test_it_is_the_compress_adapter(fitted, monkeypatch):
    from repscope.compress import adapter as compress_adapter

    x = _rows(400, 0)
    direct = compress_adapter.train_adapter(x, dims=[2, 4, 8], epochs=150, batch_size=400, lr=3e-3, device="cpu",
                                            progress=False)
    assert isinstance(fitted.adapter, compress_adapter.MatryoshkaAdapter)
    torch.testing.assert_close(torch.as_tensor(fitted.transform(x)), direct.transform(x), rtol=0, atol=0)
    calls = []
    real = compress_adapter.train_adapter
    monkeypatch.setattr(compress_adapter, "train_adapter", lambda *a, **k: calls.append(k) or real(*a, **k))
    MatryoshkaHead(epochs=1, kind="mlp", hidden=8, device="cpu", progress=False).fit(x)
    assert len(calls) == 1 and calls[0]["kind"] == "mlp" and calls[0]["epochs"] == 1


def test_latents_prefix_supervised_and_checkpoint(tmp_path):
    x = _rows(400, 2)
    y = (x[:, -1] + x[:, -2] > 1.0).astype(int)  # labels live in the last (high-variance) coordinates
    head = MatryoshkaHead(latents=2, dims=[2, D], objective="supervised", epochs=40, batch_size=200, lr=3e-3,
                          device="cpu", progress=False).fit(x, y=y)
    z = head.transform(x)
    assert z.shape == (400, 2) and z.dtype == np.float32
    from sklearn.linear_model import LogisticRegression

    acc = {k: LogisticRegression().fit(v[:300], y[:300]).score(v[300:], y[300:]) for k, v in
           (("head", z), ("raw", x[:, :2]))}
    assert acc["head"] > acc["raw"] + 0.15, acc
    path = head.save(tmp_path / "mrl.safetensors")
    again = load_learner(path, device="cpu")
    assert type(again) is MatryoshkaHead and again.latents == 2 and again.objective == "supervised"
    np.testing.assert_array_equal(again.transform(x), z)


def test_cli_and_study_step_on_a_store_layer(tmp_path):
    from repscope.learn.study import run
    from repscope.store import RepStore, write_store

    try:
        from tests.reliability.conftest import run_main
    except ModuleNotFoundError:  # a bare `pytest` puts tests/ itself on sys.path
        from reliability.conftest import run_main

    x = _rows(300, 3)
    store = tmp_path / "feats"
    write_store(store, {"fc": x}, samples=pd.DataFrame({"id": np.arange(300), "label": (x[:, -1] > 0.5).astype(int)}))
    ck = tmp_path / "zoo" / "mrl.safetensors"
    r = run_main("learn", "train", "matryoshka", store, "-l", "fc", "-o", ck, "--epochs", "5", "--latents", "4",
                 "--batch-size", "100")
    assert r.returncode == 0, r.stderr
    model = load_learner(ck, device="cpu")
    assert model.KIND == "matryoshka" and model.transform(x).shape == (300, 4)
    res = run([RepStore.open(store)], learner="matryoshka", layer="fc", latents=4, epochs=5, batch_size=100,
              target="label", device="cpu")
    df = res.frame().set_index(["analysis", "metric"])["value"]
    assert df[("learn", "final_loss")] < df[("learn", "first_loss")]  # nested loss: PCA start → trained head
    assert df[("probe", "accuracy")] > 0.8  # 4 adapted dims carry the label that sits in the last raw coordinate


def test_bad_input_is_one_line():
    assert learner_class("mrl") is MatryoshkaHead
    with pytest.raises(DataError, match="takes feature vectors"):
        MatryoshkaHead(epochs=1, progress=False).fit(np.zeros((10, 8, 8), dtype=np.uint8))
    with pytest.raises(ConfigError, match="1 ≤ latents ≤ 16"):
        MatryoshkaHead(latents=40, epochs=1, progress=False).fit(_rows(20, 0))
    with pytest.raises(ConfigError, match="needs labels"):
        MatryoshkaHead(objective="supervised", epochs=1, progress=False).fit(_rows(20, 0))
    with pytest.raises(ConfigError, match="unknown adapter kind 'rnn'"):
        MatryoshkaHead(kind="rnn")
    with pytest.raises(ConfigError, match="not fitted"):
        MatryoshkaHead().transform(_rows(5, 0))
