"""Real data: SAEs and quantizers on final-layer MiniLM embeddings of SST-2 (skips without ../shared)."""

from __future__ import annotations

import pytest

from repscope.dictionary import metrics as M
from repscope.dictionary.quantize import make_quantizer
from repscope.dictionary.sae import SAE

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matmuls: 1 thread is faster


@pytest.mark.shared
def test_topk_sae_on_minilm_sst2(minilm_sst2):
    Xtr, Xte = minilm_sst2["X_train"], minilm_sst2["X_test"]
    fvus, drops = {}, {}
    for k in (8, 32):
        sae = SAE(arch="topk", k=k, expansion=4, batch_size=256, n_steps=150, lr=2e-3, device="cpu").fit(Xtr)
        ev = sae.evaluate(Xte)
        assert ev["mean_l0"] <= k
        fvus[k] = ev["fvu"]
        drops[k] = M.probe_after_reconstruction(Xtr, minilm_sst2["y_train"], Xte, minilm_sst2["y_test"],
                                                sae.reconstruct(Xte))
    assert fvus[32] < fvus[8] < 1.0
    # at equal L0, a sparse code beats the best rank-32 linear code (PCA) on held-out sentences
    from sklearn.decomposition import PCA

    pca = PCA(32).fit(Xtr)
    assert fvus[32] < M.fvu(Xte, pca.inverse_transform(pca.transform(Xte)))
    # a sentiment probe trained on originals loses less on reconstructions as k grows
    assert drops[32]["probe_acc"] > 0.75
    assert drops[32]["probe_acc_drop"] < drops[8]["probe_acc_drop"]
    assert drops[32]["probe_acc_drop"] < 0.1


@pytest.mark.shared
def test_product_quantizer_on_minilm_sst2(minilm_sst2):
    Xtr, Xte = minilm_sst2["X_train"], minilm_sst2["X_test"]
    f = {b: M.fvu(Xte, make_quantizer("pq", bits=b, dim=384).fit(Xtr).transform(Xte)) for b in (16, 64)}
    assert f[64] < f[16] < 1.0
    sign = make_quantizer("binary").fit(Xtr)
    assert sign.bits_per_vector() == 384 and M.fvu(Xte, sign.transform(Xte)) < 1.0
