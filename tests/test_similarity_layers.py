"""Layer × layer matrices, stores, streaming CKA, and layer identification (Kornblith et al. 2019)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from repscope.errors import DataError
from repscope.similarity import cka
from repscope.similarity.matrix import compare_stores, compare_stores_streaming, result_matrices, similarity_matrices
from repscope.similarity.registry import get_measure
from repscope.similarity.streaming import streaming_cka_matrix
from repscope.store import write_store


def _layers(n=120, seed=0):
    rng = np.random.default_rng(seed)
    h = rng.normal(size=(n, 10))
    out = {}
    for i in range(4):
        h = np.tanh(h @ rng.normal(size=(h.shape[1], 12 + 3 * i)) / 3) + 0.1 * rng.normal(size=(n, 12 + 3 * i))
        out[f"l{i}"] = h.astype(np.float32)
    return out


def test_matrix_equals_pairwise_calls_and_reuses_statistics(monkeypatch):
    layers = _layers()
    calls = {"n": 0}
    m = get_measure("linear_cka")
    orig = m.prepare_fn

    def counting(x, **kw):
        calls["n"] += 1
        return orig(x, **kw)

    counted = m.__class__(**{**m.__dict__, "prepare_fn": counting})
    mats = similarity_matrices(layers, None, [counted, get_measure("pwcca")], device="cpu")
    assert calls["n"] == len(layers)  # each layer prepared once, not once per pair
    for name in ("linear_cka", "pwcca"):
        meas = get_measure(name)
        for a in layers:
            for b in layers:
                assert mats[name].loc[a, b] == pytest.approx(meas(layers[a], layers[b], device="cpu"), abs=1e-9)
    assert not np.allclose(mats["pwcca"].values, mats["pwcca"].values.T)  # asymmetric measure: full matrix


def test_compare_stores_and_streaming_cka(tmp_path):
    la, lb = _layers(seed=0), _layers(seed=1)
    ids = pd.DataFrame({"id": np.arange(120)})
    sa = write_store(tmp_path / "a", la, ids, chunk_rows=32)
    sb = write_store(tmp_path / "b", lb, ids, chunk_rows=32)
    result = compare_stores(sa, sb, "cka,procrustes", max_rows=None, device="cpu")
    rows = result.rows
    mats = result_matrices(result)
    assert len(rows) == 2 * 16
    assert {r.store for r in rows} == {"a vs b"}
    # each row carries both layers' positions in their stores (model order), not params i/j
    assert all(r.layer_index == sa.layers.index(r.layer) and r.layer_b_index == sb.layers.index(r.layer_b)
               for r in rows)
    assert all("i" not in r.params and "j" not in r.params for r in rows)
    ref = cka.linear_cka(la["l1"], lb["l2"], "cpu")
    assert mats["linear_cka"].loc["l1", "l2"] == pytest.approx(ref, abs=1e-6)
    # streaming exact CKA over 32-row chunks equals the in-memory value (both biased and debiased)
    s = streaming_cka_matrix(sa, sb, chunk_rows=32, device="cpu")
    assert s.loc["l1", "l2"] == pytest.approx(ref, abs=1e-6)
    sd = streaming_cka_matrix(sa, None, chunk_rows=25, debiased=True, device="cpu")
    assert sd.loc["l0", "l3"] == pytest.approx(cka.debiased_cka(la["l0"], la["l3"], "cpu"), abs=1e-6)
    # a subset of rows, and mismatched stores
    mats_sub = result_matrices(compare_stores(sa, None, "cka", max_rows=50, device="cpu"))
    assert mats_sub["linear_cka"].shape == (4, 4)
    assert list(mats_sub["linear_cka"].index) == sa.layers  # rebuilt in model order
    # the streaming path returns the same shape of Result, with the exact all-row values
    st = result_matrices(compare_stores_streaming(sa, sb, "cka", device="cpu"))["linear_cka"]
    assert st.loc["l1", "l2"] == pytest.approx(ref, abs=1e-6)
    sc = write_store(tmp_path / "c", {k: v[:100] for k, v in la.items()}, ids[:100])
    with pytest.raises(DataError):
        compare_stores(sa, sc, "cka", device="cpu")


def _train_mlp(seed: int, x: torch.Tensor, y: torch.Tensor, depth=5, width=192, steps=200) -> nn.Sequential:
    torch.manual_seed(seed)
    mods: list[nn.Module] = []
    d = x.shape[1]
    for _ in range(depth):
        mods += [nn.Linear(d, width), nn.ReLU()]
        d = width
    net = nn.Sequential(*mods, nn.Linear(d, 10))
    opt = torch.optim.Adam(net.parameters(), 1e-3)
    for _ in range(steps):
        opt.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        opt.step()
    return net


def _hidden(net: nn.Sequential, x: torch.Tensor) -> dict[str, torch.Tensor]:
    out, h = {}, x
    with torch.no_grad():
        for m in net:
            h = m(h)
            if isinstance(m, nn.ReLU):
                out[f"relu{len(out)}"] = h.clone()
    return out


def test_layer_identification_cka_beats_mean_cca(digits_xy):
    """Kornblith et al. 2019 §6.1: match each layer of net A to the most similar layer of net B (other seed)."""
    xs, ys = digits_xy
    x = torch.tensor(xs / 16.0, dtype=torch.float32)
    y = torch.tensor(ys)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is faster and deterministic
    try:
        nets = [_train_mlp(s, x[:1400], y[:1400]) for s in (0, 1)]
    finally:
        torch.set_num_threads(threads)
    acts = [_hidden(n, x[1400:]) for n in nets]
    mats = similarity_matrices(acts[0], acts[1], ["linear_cka", "mean_cca"], device="cpu")

    def rate(v):
        idx = np.arange(len(v))
        return (np.mean(v.argmax(1) == idx) + np.mean(v.argmax(0) == idx)) / 2

    r_cka, r_cca = rate(mats["linear_cka"].values), rate(mats["mean_cca"].values)
    assert r_cka > r_cca
    assert r_cka >= 0.4  # chance is 0.2
