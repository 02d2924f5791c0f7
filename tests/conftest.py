"""Shared fixtures: digits features, MiniLM SST-2 features (cached, computed with repscope's own extraction)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

CACHE = Path(__file__).parent / ".cache"
SST2_TRAIN_N = 2000


def require_shared(*parts: str) -> Path:
    """Path under ../shared/data, or skip the test with the reason when shared/ is absent."""
    from repscope.paths import shared_data

    p = shared_data(*parts)
    if p is None:
        pytest.skip(f"needs ../shared/data/{'/'.join(parts)} (set REPSCOPE_SHARED)")
    return p


@pytest.fixture(scope="session")
def digits_xy() -> tuple[np.ndarray, np.ndarray]:
    """scikit-learn digits: X float32 (1797, 64) in [0, 16], y int64."""
    from sklearn.datasets import load_digits

    d = load_digits()
    return d.data.astype(np.float32), d.target.astype(np.int64)


def _minilm_features(texts: list[str]) -> np.ndarray:
    from repscope.extract.pooling import pool
    from repscope.sources.zoo.minilm import load_minilm

    model = load_minilm(device="cpu")
    out = []
    for i in range(0, len(texts), 64):
        raw, mask = model.run(texts[i : i + 64], ["encoder.layer.5"])
        out.append(pool(raw["encoder.layer.5"], "masked-mean", mask).float().numpy())
    return np.concatenate(out)


@pytest.fixture(scope="session")
def minilm_sst2() -> dict[str, np.ndarray]:
    """Final-layer masked-mean MiniLM embeddings: first 2000 SST-2 train sentences and all 872 dev sentences."""
    from repscope.sources.datasets import load_tsv_text

    train_p, dev_p = require_shared("text", "sst2", "train.tsv"), require_shared("text", "sst2", "dev.tsv")
    cache = CACHE / f"minilm_sst2_{SST2_TRAIN_N}.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    tr = load_tsv_text(train_p, limit=SST2_TRAIN_N)
    dv = load_tsv_text(dev_p)
    feats = {
        "X_train": _minilm_features(tr.samples["text"].tolist()), "y_train": tr.samples["label"].to_numpy(np.int64),
        "X_test": _minilm_features(dv.samples["text"].tolist()), "y_test": dv.samples["label"].to_numpy(np.int64),
    }
    CACHE.mkdir(exist_ok=True)
    tmp = cache.with_suffix(".tmp.npz")
    np.savez(tmp, **feats)
    tmp.replace(cache)
    return feats


@pytest.fixture(scope="module")
def one_torch_thread():
    """Run a module's tests with one torch thread (tiny matmuls are faster without OpenMP hand-offs)."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
