"""repscope.learn on tiny data: losses fall, checkpoint → resume equals an uninterrupted run, shapes, QLAE latents
are codebook values, augmentations keep shapes and are seeded, bad configs are one-line errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from repscope.errors import ConfigError, DataError, StoreError
from repscope.learn import (
    QLAE,
    Autoencoder,
    BetaVAE,
    SimCLR,
    color_jitter,
    image_view,
    learner_class,
    load_learner,
    nt_xent,
    random_mask,
    random_resized_crop,
    vector_view,
)


@pytest.fixture(scope="module")
def vectors() -> np.ndarray:
    """Low-rank vectors (300, 12): 3 latent factors through a fixed linear map, plus small noise."""
    rng = np.random.default_rng(0)
    return (rng.standard_normal((300, 3)) @ rng.standard_normal((3, 12)) + 0.05 * rng.standard_normal((300, 12))
            ).astype(np.float32)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """160 uint8 shapes images (the procedural shapes, downsampled to 16×16)."""
    from repscope.sources.shapes import shapes_dataset

    x = shapes_dataset(160, seed=0).x.numpy()
    return x[:, ::4, ::4].copy()


KINDS = [(Autoencoder, {}), (Autoencoder, {"mode": "denoising"}), (Autoencoder, {"mode": "masked"}),
         (BetaVAE, {"beta": 1.0}), (SimCLR, {"latents": 8})]


@pytest.mark.parametrize(("cls", "kw"), KINDS, ids=lambda v: getattr(v, "KIND", str(v)))
def test_loss_falls_on_vectors(cls, kw, vectors):
    m = cls(batch_size=64, hidden=32, progress=False, device="cpu", **{"latents": 4, "lr": 3e-3, "epochs": 8, **kw})
    m.fit(vectors)
    assert len(m.history_) == m.epochs and m.epoch_ == m.epochs
    assert m.history_[-1] < 0.8 * m.history_[0]
    z = m.transform(vectors)
    assert z.shape == (300, m.latents) and z.dtype == np.float32 and np.isfinite(z).all()


def test_qlae_reconstruction_falls(vectors):
    """QLAE's total loss is not monotone on tiny data: with λ_c = 0.01 the straight-through gradient pushes some z past
    the outermost code and the commitment term grows, so the check is on the reconstruction of the quantised code."""
    x = torch.as_tensor(vectors)

    def rec(m: QLAE) -> float:
        with torch.no_grad():
            return float(((m.decoder(m.encode(x)) - x) ** 2).mean())

    m = QLAE(latents=4, hidden=32, lr=1e-3, epochs=0, progress=False, device="cpu").fit(vectors)
    before = rec(m)
    m.epochs = 16
    m.fit(vectors)
    assert rec(m) < 0.85 * before  # a collapsed code (one cell for all samples) stays at ≈ 1.0 × before


@pytest.mark.parametrize(("cls", "kw"), [(Autoencoder, {"mode": "masked"}), (BetaVAE, {}),
                                         (SimCLR, {"latents": 8})], ids=lambda v: getattr(v, "KIND", str(v)))
def test_images_train_and_transform(cls, kw, images):
    m = cls(epochs=3, batch_size=32, hidden=32, progress=False, device="cpu", **{"latents": 5, **kw}).fit(images)
    assert m.input_kind_ == "image" and m.input_shape_ == (1, 16, 16)
    assert m.history_[-1] < m.history_[0]
    assert m.transform(images[:7]).shape == (7, m.latents)
    rgb = np.repeat(images[:48, ..., None], 3, axis=-1)  # channels-last colour images build a 3-channel net
    m3 = cls(epochs=1, batch_size=16, hidden=16, progress=False, device="cpu", **{"latents": 5, **kw}).fit(rgb)
    assert m3.input_shape_ == (3, 16, 16)
    with pytest.raises(DataError, match="built for image inputs"):
        m.transform(rgb)


@pytest.mark.parametrize(("cls", "kw"), [(BetaVAE, {}), (QLAE, {}), (SimCLR, {"latents": 6}),
                                         (Autoencoder, {"mode": "masked"})], ids=lambda v: getattr(v, "KIND", str(v)))
def test_resume_equals_uninterrupted(cls, kw, vectors, tmp_path):
    cfg = {"latents": 4, "hidden": 24, "batch_size": 50, "seed": 3, "progress": False, "device": "cpu", **kw}
    full = cls(epochs=4, **cfg).fit(vectors)
    ck = tmp_path / "half.safetensors"
    cls(epochs=2, **cfg).fit(vectors, checkpoint=ck)
    resumed = load_learner(ck, device="cpu", progress=False)
    assert resumed.epoch_ == 2 and type(resumed) is cls
    resumed.epochs = 4
    resumed.fit(vectors)
    for (k, a), (_, b) in zip(full.state_dict().items(), resumed.state_dict().items(), strict=True):
        assert torch.equal(a, b), k
    assert resumed.history_ == pytest.approx(full.history_, rel=1e-6)
    # without the optimizer state the continuation differs (the check above could fail)
    plain = load_learner(ck, device="cpu", progress=False)
    plain._optim_state = None
    plain.epochs = 4
    plain.fit(vectors)
    assert not torch.equal(next(iter(plain.state_dict().values())), next(iter(full.state_dict().values())))


def test_checkpoint_round_trip_gives_same_outputs(vectors, tmp_path):
    m = BetaVAE(latents=3, hidden=16, epochs=2, progress=False, device="cpu").fit(vectors)
    path = m.save(tmp_path / "vae.safetensors")
    again = load_learner(path, device="cpu")
    assert again.beta == m.beta and again.input_shape_ == (12,)
    np.testing.assert_array_equal(again.transform(vectors), m.transform(vectors))
    raw = path.read_bytes()
    assert b"pickle" not in raw[:200] and raw[8:9] == b"{"  # a safetensors header, not a pickle


def test_qlae_latents_are_codebook_values(vectors):
    m = QLAE(latents=4, hidden=24, epochs=3, n_values=5, progress=False, device="cpu").fit(vectors)
    z = m.transform(vectors)
    values = m.codebooks.values.detach().numpy()
    for j in range(z.shape[1]):
        dist = np.abs(z[:, j, None] - values[j][None, :]).min(1)
        assert dist.max() < 1e-6
    assert len(np.unique(z[:, 0])) <= 5
    # the codebooks moved away from their initial grid (quantisation loss trains them), weight decay is on
    assert not np.allclose(values, np.linspace(-1, 1, 5)[None, :].repeat(4, 0))
    groups = m.optimizer().param_groups
    assert [g["weight_decay"] for g in groups] == [0.1, 0.0]


def test_straight_through_gradient():
    q = QLAE(latents=2, progress=False)
    q.input_kind_, q.input_shape_ = "vector", (3,)
    q.build()
    z = torch.tensor([[0.13, -0.71]], requires_grad=True)
    out = q.codebooks(z)
    out.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))
    assert torch.allclose(out, torch.tensor([[1 / 9, -7 / 9]]))  # nearest of linspace(-1, 1, 10)


def test_augmentations_keep_shapes_and_are_seeded(images):
    x = torch.as_tensor(images[:6]).float().unsqueeze(1) / 255
    a = image_view(x, torch.Generator().manual_seed(1))
    b = image_view(x, torch.Generator().manual_seed(1))
    c = image_view(x, torch.Generator().manual_seed(2))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    full = random_resized_crop(x, torch.Generator().manual_seed(0), scale=(1.0, 1.0), ratio=(1.0, 1.0))
    assert torch.allclose(full, x, atol=1e-5)  # a crop of the whole image is the image
    j = color_jitter(x, torch.Generator().manual_seed(0))
    assert j.min() >= 0 and j.max() <= 1
    v = torch.randn(10, 5)
    assert vector_view(v, torch.Generator().manual_seed(0)).shape == (10, 5)
    m = random_mask(x, 0.5, torch.Generator().manual_seed(0), patch=4)
    assert m.shape == x.shape and 0.1 < float(m.mean()) < 0.9
    assert torch.equal(m[..., :4, :4], m[..., :1, :1].expand(-1, -1, 4, 4))  # masks are 4×4 patches


def test_nt_xent_matches_closed_form():
    z1 = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    loss = nt_xent(z1, z1.clone(), temperature=1.0)
    # each anchor: positive sim 1, negatives: 0 (other) and 0 (other's copy) → −log(e / (e + 2))
    assert float(loss) == pytest.approx(-np.log(np.e / (np.e + 2)), rel=1e-6)


def test_bad_config_is_one_line():
    with pytest.raises(ConfigError, match="unknown learner 'gan'; choose one of") as e:
        learner_class("gan")
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="unknown autoencoder mode 'sparse'"):
        Autoencoder(mode="sparse")
    with pytest.raises(ConfigError, match="epochs ≥ 0"):
        BetaVAE(epochs=-1)
    with pytest.raises(ConfigError, match="not fitted"):
        QLAE().transform(np.zeros((3, 4)))
    with pytest.raises(DataError, match="n ≥ 2"):
        BetaVAE().fit(np.zeros(5))


def test_load_learner_refuses_other_files(tmp_path):
    from safetensors.torch import save_file

    save_file({"w": torch.zeros(2)}, str(tmp_path / "x.safetensors"))
    with pytest.raises(StoreError, match="not a repscope learner checkpoint"):
        load_learner(tmp_path / "x.safetensors")
