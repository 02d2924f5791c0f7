"""Matryoshka adapter: starts at PCA, training lowers the nested loss, safetensors round trip, bad input."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repscope.compress.adapter import (
    MatryoshkaAdapter,
    _cos,
    load_adapter,
    matryoshka_loss,
    save_adapter,
    train_adapter,
)
from repscope.compress.truncate import PCABasis
from repscope.errors import ConfigError, StoreError


def _data(n=300, d=24, seed=0):
    rng = np.random.default_rng(seed)
    return torch.as_tensor((rng.normal(size=(n, d)) * np.linspace(3, 0.3, d) + 1.0).astype(np.float32))


def test_untrained_adapter_is_pca():
    x = _data()
    ad = MatryoshkaAdapter(24).init_pca(x)
    torch.testing.assert_close(ad.transform(x), PCABasis().fit(x).transform(x), atol=1e-4, rtol=1e-4)
    mlp = MatryoshkaAdapter(24, kind="mlp", hidden=16).init_pca(x)  # the residual MLP starts at zero
    torch.testing.assert_close(mlp.transform(x), ad.transform(x))


def test_unsupervised_training_lowers_the_nested_cosine_loss():
    x = _data()
    dims = [4, 8, 24]
    target = _cos(x)
    start = MatryoshkaAdapter(24).init_pca(x)
    ad = train_adapter(x, dims=dims, epochs=200, batch_size=300, lr=3e-3, device="cpu", progress=False)
    with torch.no_grad():
        before = float(matryoshka_loss(start(x), dims, target_cos=target))
        after = float(matryoshka_loss(ad(x), dims, target_cos=target))
    assert after < 0.8 * before
    assert ad.dims_ == dims and ad.objective_ == "unsupervised"


def test_supervised_training_and_safetensors_round_trip(tmp_path):
    x = _data()
    y = (x[:, 5] > x[:, 5].median()).long().numpy()
    ad = train_adapter(x, y=y, objective="supervised", dims=[2, 8], kind="mlp", hidden=16, epochs=3,
                       device="cpu", progress=False)
    p = save_adapter(ad, tmp_path / "a.safetensors", meta={"layer": "fc1"})
    back = load_adapter(p)
    torch.testing.assert_close(back.transform(x), ad.transform(x))
    assert back.config_["layer"] == "fc1" and back.config_["objective"] == "supervised" and back.kind == "mlp"


def test_bad_input_is_one_line(tmp_path):
    x = _data(n=20)
    with pytest.raises(ConfigError, match="supervised objective needs labels"):
        train_adapter(x, objective="supervised", progress=False)
    with pytest.raises(ConfigError, match="unknown adapter objective 'triplet'"):
        train_adapter(x, objective="triplet", progress=False)
    with pytest.raises(ConfigError, match="unknown adapter kind 'rnn'"):
        MatryoshkaAdapter(4, kind="rnn")
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(StoreError, match="is not a repscope adapter"):
        load_adapter(bad)
    with pytest.raises(StoreError, match="not found"):
        load_adapter(tmp_path / "missing.safetensors")
