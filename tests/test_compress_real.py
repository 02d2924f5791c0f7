"""repscope.compress on real MiniLM embeddings (../shared/data): the unsupervised Matryoshka adapter on STS-B dev,
binary + rescoring on SST-2 label retrieval."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from conftest import CACHE, require_shared

from repscope.compress.store import adapter_store, quantize_embeddings_store
from repscope.store import write_store

LAYER = "encoder.layer.5"


@pytest.fixture(scope="session")
def stsb_store(tmp_path_factory):
    """Masked-mean MiniLM final layer of STS-B dev (3000 sentences), features cached in tests/.cache."""
    path = require_shared("text", "stsb", "dev.tsv")
    cache = CACHE / "compress_minilm_stsb_dev.npz"
    if cache.is_file():
        with np.load(cache, allow_pickle=False) as z:
            x, cols = z["x"], {k: z[k] for k in ("pair", "side", "score")}
    else:
        from repscope.extract import extract
        from repscope.sources.datasets import load_sts_pairs
        from repscope.sources.zoo.minilm import load_minilm

        s = extract(load_minilm("cpu"), load_sts_pairs(path), tmp_path_factory.mktemp("sts") / "stsb", layers=LAYER,
                    pooling="masked-mean", progress=False)
        x = s.get(LAYER).numpy()
        cols = {k: s.samples[k].to_numpy() for k in ("pair", "side", "score")}
        CACHE.mkdir(exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, x=x, **cols)
        tmp.replace(cache)
    samples = pd.DataFrame({"id": np.arange(len(x)), **cols})
    return write_store(tmp_path_factory.mktemp("sts") / "minilm_stsb", {LAYER: x}, samples=samples)


@pytest.mark.shared
def test_unsupervised_adapter_at_64_keeps_more_spearman_than_raw_and_pca(stsb_store):
    res, _ = adapter_store(stsb_store, LAYER, objective="unsupervised", dims=[64], epochs=30, device="cpu")
    df = res.frame()
    df["method"] = [p["method"] for p in df["params"]]
    df["dim"] = [p["dim"] for p in df["params"]]
    rho = df[df["metric"] == "spearman"].set_index(["method", "dim"])["value"]
    full = rho[("raw", 384)]
    frac = {m: rho[(m, 64)] / full for m in ("raw", "pca", "adapter")}
    print(f"STS-B dev (held-out half of the pairs) Spearman: full {full:.4f}; at 64 dims raw {rho[('raw', 64)]:.4f} "
          f"({frac['raw']:.2%}), pca {rho[('pca', 64)]:.4f} ({frac['pca']:.2%}), "
          f"adapter {rho[('adapter', 64)]:.4f} ({frac['adapter']:.2%})")
    assert 0.8 < full < 0.9
    assert frac["adapter"] > frac["raw"] and frac["adapter"] > frac["pca"]


@pytest.fixture(scope="module")
def sst2_store(minilm_sst2, tmp_path_factory):
    f = minilm_sst2
    x = np.concatenate([f["X_train"], f["X_test"]])
    y = np.concatenate([f["y_train"], f["y_test"]])
    split = ["train"] * len(f["y_train"]) + ["dev"] * len(f["y_test"])
    samples = pd.DataFrame({"id": np.arange(len(y)), "label": y, "split": split})
    return write_store(tmp_path_factory.mktemp("sst2") / "minilm_sst2", {LAYER: x}, samples=samples)


@pytest.mark.shared
def test_binary_with_rescoring_keeps_95_percent_of_float32_label_recall(sst2_store):
    res = quantize_embeddings_store(sst2_store, LAYER, schemes="int8,binary", rescore=4, k=10, probe=False,
                                    device="cpu")
    df = res.frame()
    df["scheme"] = [p["scheme"] for p in df["params"]]
    df["rescore"] = [p["rescore"] for p in df["params"]]
    v = df.set_index(["scheme", "rescore", "metric"])["value"]
    f32, b4 = v[("float32", 0, "label_recall@10")], v[("binary", 4, "label_recall@10")]
    print(f"SST-2 dev label recall@10: float32 {f32:.4f}, int8 {v[('int8', 0, 'label_recall@10')]:.4f}, "
          f"binary {v[('binary', 0, 'label_recall@10')]:.4f}, binary+rescore(4) {b4:.4f} ({b4 / f32:.2%}); "
          f"recall@10 vs float32: binary {v[('binary', 0, 'recall@10_vs_float32')]:.3f}, "
          f"binary+rescore(4) {v[('binary', 4, 'recall@10_vs_float32')]:.3f}")
    assert b4 >= 0.95 * f32
    assert v[("binary", 4, "recall@10_vs_float32")] > v[("binary", 0, "recall@10_vs_float32")]
    assert {p["calibration"] for p in df["params"]} == {"split"}
