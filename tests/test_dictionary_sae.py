"""SAE variants on planted superposition: m = 256 unit features in d = 64, ~4 active non-negative per sample."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repscope.dictionary import metrics as M
from repscope.dictionary.modules import BatchTopKSAE, MatchingPursuitSAE, TopKSAE, build_module
from repscope.dictionary.sae import SAE, Transcoder
from repscope.dictionary.stream import ArraySource, ShuffledChunkStream
from repscope.dictionary.train import TrainConfig, Trainer, initialize
from repscope.errors import ConfigError, DataError


def planted(n: int = 8192, d: int = 64, m: int = 256, p: float = 4, seed: int = 0, coefs: bool = False):
    g = torch.Generator().manual_seed(seed)
    F = torch.randn(m, d, generator=g)
    F = F / F.norm(dim=1, keepdim=True)
    mask = torch.rand(n, m, generator=g) < p / m
    coef = torch.rand(n, m, generator=g) * mask
    return ((coef @ F).float(), F, coef) if coefs else ((coef @ F).float(), F)


pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tiny matmuls: 1 thread is faster


@pytest.fixture(scope="module")
def data():
    return planted()


def test_topk_recovers_planted_features(data):
    X, F = data
    sae = SAE(arch="topk", k=4, n_latents=512, batch_size=256, n_epochs=8, device="cpu").fit(X)
    cos = M.mmcs(sae.decoder_, F)
    assert (cos > 0.9).mean() >= 0.9
    # the decoder atoms are unit-norm in the model's scaled space
    assert torch.allclose(sae.module_.W_dec.norm(dim=1), torch.ones(512), atol=1e-5)
    ev = sae.evaluate(X)
    assert ev["mean_l0"] <= 4 + 1e-9
    assert ev["fvu"] < 0.3


def test_fvu_falls_as_k_grows(data):
    X, _ = data
    X = X[:4096]
    fvus = [SAE(arch="topk", k=k, n_latents=256, batch_size=256, n_epochs=6, device="cpu").fit(X).evaluate(X)["fvu"]
            for k in (1, 2, 4)]
    assert fvus[0] > fvus[1] > fvus[2]


def test_batchtopk_mean_l0_equals_k(data):
    X, _ = data
    sae = SAE(arch="batchtopk", k=4, n_latents=256, batch_size=256, n_epochs=4, device="cpu").fit(X[:4096])
    mod = sae.module_
    with torch.no_grad():
        pre = mod.preacts(X[:512] * mod.in_scale)
        z = mod.batch_activate(pre)
    # batch mode keeps exactly k·B activations (all positive after training on non-negative mixtures)
    assert M.mean_l0(z) == pytest.approx(4.0, abs=1e-9)
    assert (z > 0).sum() == 4 * 512
    # inference uses the calibrated threshold; its mean L0 is close to k
    assert float(mod.threshold) > 0
    assert sae.evaluate(X[4096:])["mean_l0"] == pytest.approx(4.0, rel=0.15)


def test_auxk_reduces_dead_latents():
    X, _ = planted(m=1024)
    dead = {}
    for aux in (0.0, 1 / 32):
        mod = TopKSAE(64, 512, k=4, aux_coeff=aux)
        mod.reset_parameters(torch.Generator().manual_seed(0))
        stream = ShuffledChunkStream(ArraySource(X), seed=0)
        cfg = TrainConfig(n_steps=128, batch_size=256, lr=1e-3, dead_after=1024)
        initialize(mod, stream, cfg, torch.device("cpu"))
        with torch.no_grad():  # plant dead latents: half the encoder can never win the TopK
            mod.W_enc[:, :256] *= 0.02
            assert M.dead_fraction(mod.encode(X)) == pytest.approx(0.5)
        Trainer(mod, stream, cfg, torch.device("cpu")).fit()
        with torch.no_grad():
            dead[aux] = M.dead_fraction(mod.encode(X))
    assert dead[0.0] > 0.45  # without AuxK the planted dead latents get no gradient
    assert dead[1 / 32] < 0.5 * dead[0.0]


def test_matching_pursuit_residual_never_increases(data):
    X, F = data
    mod = MatchingPursuitSAE(64, 300, k=12)
    mod.reset_parameters(torch.Generator().manual_seed(1))
    norms = mod.residual_norms(X[:500])
    assert norms.shape == (13, 500)
    assert (norms[1:] <= norms[:-1] + 1e-5).all()
    # closed form: with unit atoms each step removes s², so ‖r_t‖² = ‖r_0‖² − Σ s_t²
    with torch.no_grad():
        z = mod.encode(X[:500])
        r = X[:500] * mod.in_scale - mod.decode_scaled(z)
    assert torch.allclose(r.norm(dim=1), norms[-1], atol=1e-4)
    # after training it still holds and the MP SAE recovers the planted features
    sae = SAE(arch="mp", k=4, n_latents=512, batch_size=256, n_epochs=4, device="cpu").fit(X)
    n2 = sae.module_.residual_norms(X[:500])
    assert (n2[1:] <= n2[:-1] + 1e-5).all()
    assert (M.mmcs(sae.decoder_, F) > 0.9).mean() >= 0.9


def test_relu_l1_sparsity_increases_with_coefficient(data):
    X, _ = data
    X = X[:4096]
    l0 = [SAE(arch="relu", l1_coeff=c, n_latents=256, batch_size=256, n_epochs=4, lr=1e-2, device="cpu").fit(X)
          .evaluate(X)["mean_l0"] for c in (0.1, 3.0)]
    assert l0[1] < 0.5 * l0[0]


def test_jumprelu_trains_and_sparsity_penalty_lowers_l0(data):
    X, _ = data
    X = X[:4096]
    l0 = []
    for c in (0.0, 1.0):
        sae = SAE(arch="jumprelu", l0_coeff=c, n_latents=256, batch_size=256, n_epochs=4, lr=3e-3,
                  device="cpu").fit(X)
        l0.append(sae.evaluate(X)["mean_l0"])
    assert l0[1] < l0[0]


def test_transcoder_predicts_planted_target_layer():
    X, F, coef = planted(coefs=True)
    g = torch.Generator().manual_seed(3)
    G = torch.randn(256, 32, generator=g)
    Y = (coef @ G).float()  # layer B is written by the same sparse causes through other directions
    tc = Transcoder(arch="topk", k=4, n_latents=512, batch_size=256, n_epochs=6, lr=5e-3, device="cpu").fit(X, Y)
    pred = tc.predict(X)
    assert pred.shape == Y.shape
    # sparse causes beat the best affine map from layer A (256 causes do not fit through 64 dims linearly)
    Xc = torch.cat([X, torch.ones(len(X), 1)], 1).double()
    linear = Xc @ torch.linalg.lstsq(Xc, Y.double()).solution
    assert M.fvu(Y, pred) < 0.75 * M.fvu(Y, linear)
    assert tc.score(X, Y) == pytest.approx(1 - M.fvu(Y, pred))
    with pytest.raises(ConfigError):
        Transcoder().fit(X)


def test_numpy_in_numpy_out_and_errors(data):
    X, _ = data
    Xn = X[:1024].numpy()
    sae = SAE(arch="topk", k=2, n_latents=64, batch_size=256, n_steps=5, device="cpu").fit(Xn)
    z = sae.transform(Xn)
    assert isinstance(z, np.ndarray) and z.shape == (1024, 64)
    assert isinstance(sae.inverse_transform(z), np.ndarray)
    assert ((z != 0).sum(1) <= 2).all()
    with pytest.raises(DataError):
        sae.transform(np.zeros((3, 5), dtype=np.float32))
    with pytest.raises(ConfigError):
        SAE(arch="nope").fit(Xn)
    with pytest.raises(ConfigError):
        SAE(arch="topk", k=100, n_latents=64).fit(Xn)
    with pytest.raises(ConfigError):
        SAE().transform(Xn)
    with pytest.raises(ConfigError):
        build_module("mp", d_in=4, n_latents=8, d_out=3, k=2)
    assert isinstance(build_module("batchtopk", d_in=4, n_latents=8, k=2), BatchTopKSAE)


@pytest.mark.parametrize("transcoder", [False, True])
def test_sparse_topk_training_path_matches_dense_autograd(transcoder):
    g = torch.Generator().manual_seed(0)
    mod = TopKSAE(12, 40, d_out=7 if transcoder else None, k=3, aux_k=5)
    mod.reset_parameters(g)
    with torch.no_grad():
        mod.b_dec.normal_(generator=g)
        if transcoder:
            mod.b_in.normal_(generator=g)
    x = torch.randn(32, 12, generator=g)
    y = torch.randn(32, 7, generator=g) if transcoder else None
    dead = torch.zeros(40, dtype=torch.bool)
    dead[::3] = True
    grads = {}
    for sparse in (True, False):
        mod.sparse_training = sparse
        mod.zero_grad()
        loss, parts = mod.loss(x, y, dead=dead)
        loss.backward()
        named = {n: p.grad.clone() for n, p in mod.named_parameters()}
        grads[sparse] = (float(loss.detach()), parts["z"].clone(), named)
    assert grads[True][0] == pytest.approx(grads[False][0], rel=1e-5)
    assert torch.allclose(grads[True][1], grads[False][1], atol=1e-6)
    for name, gd in grads[False][2].items():
        assert torch.allclose(grads[True][2][name], gd, atol=1e-5), name


def test_store_sae_dead_fraction_rows_follow_the_eval_convention(tmp_path):
    """`train_sae_on_store` measures FVU, L0 and (by default, `dead_rows="eval"`, SAEBench's convention) the dead and
    dense latent fractions on the same held-out rows; `dead_rows="all"` measures the two fractions on every row.
    Each pinned to numpy on codes from `transform`; the choice is recorded in the params, and an unknown value is
    refused before training."""
    import pandas as pd

    from repscope.dictionary.runs import holdout_rows, train_sae_on_store
    from repscope.store import write_store

    X, _ = planted(n=600, d=16, m=48, p=2, seed=3)
    store = write_store(tmp_path / "s", {"h": X.numpy()}, pd.DataFrame({"id": np.arange(600)}),
                        provenance={"model": "toy"})
    train, held = holdout_rows(600, 5)
    res = {}
    for rows in ("eval", "all"):
        res[rows] = train_sae_on_store(store, "h", arch="topk", k=2, n_latents=96, n_steps=60, batch_size=64,
                                       holdout_every=5, device="cpu", n_cards=0, seed=0, dead_rows=rows)
        assert res[rows].params["dead_rows"] == rows
        assert {r.params["dead_rows"] for r in res[rows].rows} == {rows}
    est = res["eval"].estimator
    z_held = est.transform(X[held]).numpy()
    z_all = est.transform(X).numpy()
    x_held = X[held].double().numpy()
    recon = est.reconstruct(X[held]).double().numpy()
    fvu = ((x_held - recon) ** 2).sum() / ((x_held - x_held.mean(0)) ** 2).sum()
    m = res["eval"].metrics
    assert m["fvu"] == pytest.approx(fvu, rel=1e-9)
    assert m["mean_l0"] == pytest.approx((z_held != 0).sum(1).mean(), rel=1e-12)
    assert m["dead_fraction"] == pytest.approx(((z_held != 0).sum(0) == 0).mean(), abs=1e-12)
    assert m["dense_fraction"] == pytest.approx(((z_held != 0).mean(0) > 0.1).mean(), abs=1e-12)
    a = res["all"].metrics
    assert torch.equal(res["all"].estimator.transform(X), est.transform(X))  # the same seeded SAE twice
    assert a["fvu"] == m["fvu"]  # only the firing-frequency metrics change rows
    assert a["dead_fraction"] == pytest.approx(((z_all != 0).sum(0) == 0).mean(), abs=1e-12)
    assert a["dense_fraction"] == pytest.approx(((z_all != 0).mean(0) > 0.1).mean(), abs=1e-12)
    assert m["dead_fraction"] > a["dead_fraction"]  # 120 held-out rows leave more latents silent than 600 rows
    with pytest.raises(ConfigError, match="unknown dead_rows 'train'; choose one of eval, all"):
        train_sae_on_store(store, "h", k=2, n_latents=96, n_steps=1, device="cpu", dead_rows="train")
