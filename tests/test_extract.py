"""Extraction: equality with a manual forward pass, store round-trips, resume after SIGKILL, bad input."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from repscope.errors import DataError, IncompleteStoreError, LayerNotFoundError, NonFiniteError, SchemaVersionError
from repscope.extract import extract
from repscope.sources.datasets import ArrayDataset, TextDataset
from repscope.sources.models import TorchModuleAdapter
from repscope.store import RepStore


def _seq() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(8, 16), nn.ReLU(), nn.Linear(16, 4))


def test_sequential_equals_manual_forward(tmp_path):
    model = _seq()
    x = torch.randn(300, 8)
    store = extract(TorchModuleAdapter(model, device="cpu"), ArrayDataset(x, {"label": np.arange(300) % 3}),
                    tmp_path / "s", batch_size=32, chunk_rows=64, progress=False)
    assert store.layers == ["0", "1", "2"]
    with torch.no_grad():
        h0 = model[0](x)
        h1 = model[1](h0)
        h2 = model[2](h1)
    torch.testing.assert_close(store.get("0"), h0)
    torch.testing.assert_close(store.get("1"), h1)
    torch.testing.assert_close(store.get("2"), h2)
    np.testing.assert_array_equal(store.labels("label"), np.arange(300) % 3)
    # lazy row access and chunk iteration agree with the full read
    torch.testing.assert_close(store.get("2", [5, 299, 0]), h2[[5, 299, 0]])
    chunks = list(store.iter_chunks("2"))
    assert [s for s, _ in chunks] == [0, 64, 128, 192, 256]
    torch.testing.assert_close(torch.cat([c for _, c in chunks]), h2)
    assert store.verify() == {"0": 5, "1": 5, "2": 5}


def test_layer_globs_and_unknown_layer(tmp_path):
    adapter = TorchModuleAdapter(_seq(), device="cpu")
    assert adapter.select("0,2") == ["0", "2"]
    with pytest.raises(LayerNotFoundError, match=r"layer 'encoder.layer.12' not found.*available: 0, 1, 2"):
        extract(adapter, ArrayDataset(torch.randn(10, 8)), tmp_path / "s", layers="encoder.layer.12",
                progress=False)
    assert not (tmp_path / "s").exists()


def test_float16_and_bfloat16_storage(tmp_path):
    x = torch.randn(50, 8)
    for dt, tdt in (("float16", torch.float16), ("bfloat16", torch.bfloat16)):
        s = extract(TorchModuleAdapter(_seq(), device="cpu"), ArrayDataset(x), tmp_path / dt, dtype=dt,
                    progress=False)
        got = s.get("2")
        assert got.dtype == tdt
        with torch.no_grad():
            torch.testing.assert_close(got, _seq()(x).to(tdt))


def test_token_level_storage_with_offsets(tmp_path):
    class Tok(nn.Module):  # emits (B, T, D) with T depending on the batch, and a mask
        def forward(self, x):
            return x

    class TokAdapter(TorchModuleAdapter):
        def run(self, items, layers):
            x = torch.as_tensor(items, dtype=torch.float32)
            mask = (x[..., 0] != 0).long()
            return {"tok": x}, mask

    x = torch.randn(20, 6, 3)
    lengths = np.random.default_rng(0).integers(1, 7, size=20)
    for i, n in enumerate(lengths):
        x[i, n:] = 0
        x[i, :n, 0] = x[i, :n, 0].abs() + 0.1
    adapter = TokAdapter(nn.Sequential(Tok()), device="cpu")
    adapter._modules = {"tok": None}
    s = extract(adapter, ArrayDataset(x), tmp_path / "t", pooling="none", batch_size=4, chunk_rows=8,
                progress=False)
    assert s.is_tokens("tok")
    off = s.offsets("tok")
    np.testing.assert_array_equal(np.diff(off), lengths)
    torch.testing.assert_close(s.get("tok", [3]), x[3, : lengths[3]])
    torch.testing.assert_close(s.get("tok"), torch.cat([x[i, :n] for i, n in enumerate(lengths)]))
    s.verify()


def test_modality_mismatch_and_empty_data(tmp_path):
    adapter = TorchModuleAdapter(_seq(), device="cpu")
    with pytest.raises(DataError, match="holds text"):
        extract(adapter, TextDataset(["a", "b"], name="sents"), tmp_path / "s", progress=False)
    with pytest.raises(DataError, match="empty"):
        TextDataset([], name="nothing")
    assert not (tmp_path / "s").exists()


def test_nonfinite_activations_named_and_allowed(tmp_path):
    x = torch.randn(40, 8)
    x[27, 3] = float("nan")
    adapter = TorchModuleAdapter(_seq(), device="cpu")
    with pytest.raises(NonFiniteError, match=r"layer '0' row 27 .*--allow-nonfinite"):
        extract(adapter, ArrayDataset(x), tmp_path / "s", batch_size=8, chunk_rows=8, progress=False)
    assert not (tmp_path / "s").exists(), "bad input must not leave a half-written store"
    s = extract(adapter, ArrayDataset(x), tmp_path / "s", allow_nonfinite=True, progress=False)
    assert torch.isnan(s.get("0")[27]).any()


def test_resume_refuses_changed_array_data(tmp_path):
    from repscope.errors import StoreError

    x = torch.randn(40, 8)
    adapter = TorchModuleAdapter(_seq(), device="cpu")
    s = extract(adapter, ArrayDataset(x), tmp_path / "s", chunk_rows=8, progress=False)
    man = json.loads((s.root / "manifest.json").read_text())
    man["progress"] = {"rows_done": 16, "complete": False}  # as if killed after two chunks
    (s.root / "manifest.json").write_text(json.dumps(man))
    x2 = x.clone()
    x2[30, 0] += 1.0  # same samples table (ids only), different data
    with pytest.raises(StoreError, match="different settings"):
        extract(adapter, ArrayDataset(x2), tmp_path / "s", chunk_rows=8, progress=False)
    resumed = extract(adapter, ArrayDataset(x), tmp_path / "s", chunk_rows=8, progress=False)
    assert resumed.n_rows == 40


def test_schema_version_mismatch(tmp_path):
    s = extract(TorchModuleAdapter(_seq(), device="cpu"), ArrayDataset(torch.randn(10, 8)), tmp_path / "s",
                progress=False)
    man = json.loads((s.root / "manifest.json").read_text())
    man["schema_version"] = 99
    (s.root / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(SchemaVersionError, match="schema version 99.*re-extract"):
        RepStore.open(s.root)


def test_corrupted_chunk_is_detected_with_layer_and_chunk(tmp_path):
    from repscope.errors import CorruptChunkError

    s = extract(TorchModuleAdapter(_seq(), device="cpu"), ArrayDataset(torch.randn(100, 8)), tmp_path / "s",
                chunk_rows=32, progress=False)
    chunk = s.root / "arrays" / "L_1" / "c" / "2" / "0"
    data = bytearray(chunk.read_bytes())
    data[10] ^= 0xFF
    chunk.write_bytes(bytes(data))
    with pytest.raises(CorruptChunkError, match=r"layer '1' chunk 2\.0 failed its checksum"):
        RepStore.open(s.root).verify()


SLOW_SCRIPT = textwrap.dedent("""
    import sys, time, torch
    from torch import nn
    from repscope.extract import extract
    from repscope.sources.datasets import ArrayDataset
    from repscope.sources.models import TorchModuleAdapter

    class Slow(nn.Module):
        def forward(self, x):
            time.sleep(float(sys.argv[2]))
            return x

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 32), Slow(), nn.ReLU(), nn.Linear(32, 8))
    x = torch.randn(2000, 16, generator=torch.Generator().manual_seed(1))
    extract(TorchModuleAdapter(model, device="cpu"), ArrayDataset(x, {"label": torch.arange(2000) % 7}),
            sys.argv[1], batch_size=25, chunk_rows=100, progress=False)
""")


def test_sigkill_then_resume_is_identical(tmp_path):
    script = tmp_path / "slow_extract.py"
    script.write_text(SLOW_SCRIPT)
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    killed = tmp_path / "killed"
    proc = subprocess.Popen([sys.executable, str(script), str(killed), "0.01"], env=env)
    deadline = time.time() + 120
    done = 0
    while time.time() < deadline:
        try:
            done = json.loads((killed / "manifest.json").read_text())["progress"]["rows_done"]
        except (FileNotFoundError, json.JSONDecodeError, KeyError):
            done = 0
        if done >= 500:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 500 <= done < 2000, f"kill landed at {done} rows; the test needs a mid-run kill"
    with pytest.raises(IncompleteStoreError, match="incomplete .*rerun"):
        RepStore.open(killed)
    subprocess.run([sys.executable, str(script), str(killed), "0"], env=env, check=True)  # resume
    full = tmp_path / "full"
    subprocess.run([sys.executable, str(script), str(full), "0"], env=env, check=True)
    a, b = RepStore.open(killed), RepStore.open(full)
    assert a.n_rows == b.n_rows == 2000
    for layer in b.layers:
        assert torch.equal(a.get(layer), b.get(layer)), layer
    pd.testing.assert_frame_equal(a.samples, b.samples)
    a.verify()
