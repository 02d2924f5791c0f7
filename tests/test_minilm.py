"""MiniLM through repscope's adapters: STS-B dev reference, adapter agreement, text-model modality check."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import require_shared
from scipy.stats import spearmanr

from repscope.errors import DataError
from repscope.extract import extract
from repscope.sources.datasets import ArrayDataset, load_sts_pairs
from repscope.sources.zoo.minilm import load_minilm


@pytest.fixture(scope="module")
def minilm():
    return load_minilm(device="cpu")


@pytest.mark.shared
def test_stsb_dev_spearman_matches_reference(minilm, tmp_path):
    ds = load_sts_pairs(require_shared("text", "stsb", "dev.tsv"))
    store = extract(minilm, ds, tmp_path / "sts", layers="encoder.layer.5", pooling="masked-mean", progress=False)
    x = torch.nn.functional.normalize(store.get("encoder.layer.5").double(), dim=1).numpy()
    s = store.samples
    a, b = x[(s["side"] == 0).to_numpy()], x[(s["side"] == 1).to_numpy()]
    assert (s[s["side"] == 0]["pair"].to_numpy() == s[s["side"] == 1]["pair"].to_numpy()).all()
    rho = spearmanr((a * b).sum(1), s[s["side"] == 0]["score"]).statistic
    assert abs(rho - 0.8672) <= 0.002, rho


def test_hf_and_sentence_transformers_agree(minilm):
    from repscope.extract.pooling import pool
    from repscope.sources.zoo.minilm import load_minilm

    st = load_minilm(device="cpu", sentence_transformers=True)
    texts = ["the cat sat on the mat.", "a much longer sentence about weather and travel plans."]
    raw, mask = minilm.run(texts, ["encoder.layer.5"])
    ours = torch.nn.functional.normalize(pool(raw["encoder.layer.5"], "masked-mean", mask), dim=1)
    emb, _ = st.run(texts, ["sentence_embedding", "encoder.layer.5"])
    torch.testing.assert_close(emb["sentence_embedding"], ours, atol=1e-5, rtol=1e-4)
    ref = st.st.encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(emb["sentence_embedding"], ref.cpu(), atol=1e-5, rtol=1e-4)
    assert minilm.layer_names()[0] == "embeddings" and len(minilm.layer_names()) == 7


def test_text_model_refuses_images(minilm, tmp_path):
    with pytest.raises(DataError, match="takes text but 'imgs' holds arrays/images"):
        extract(minilm, ArrayDataset(np.zeros((4, 8, 8, 3), np.uint8), name="imgs", modality="image"),
                tmp_path / "x", progress=False)
    assert not (tmp_path / "x").exists()
