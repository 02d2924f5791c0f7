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
    m.epochs = 30  # the reference code's [−0.5, 0.5] codebooks and bias-free decay learn slower than 16 epochs allow
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
    # the codebooks moved away from their initial grid (the quantisation loss trains them)
    assert not np.allclose(values, np.linspace(-0.5, 0.5, 5)[None, :].repeat(4, 0))


def test_qlae_optimizer_follows_the_reference_code():
    """Weight decay 0.1 on weights only (biases and codebooks undecayed), codebooks start on linspace(−0.5, 0.5), and
    the decayed weights' gradients are clipped element-wise at 1 while the others are left alone."""
    q = QLAE(latents=3, hidden=8, progress=False)
    q.input_kind_, q.input_shape_ = "vector", (5,)
    q.build()
    np.testing.assert_allclose(q.codebooks.values.detach().numpy(), np.tile(np.linspace(-0.5, 0.5, 10), (3, 1)),
                               atol=1e-7)
    names = {id(p): n for n, p in q.named_parameters()}
    decayed, plain = q.optimizer().param_groups
    assert decayed["weight_decay"] == 0.1 and plain["weight_decay"] == 0.0
    assert all(names[id(p)].endswith("weight") for p in decayed["params"])
    assert {names[id(p)] for p in plain["params"]} == {n for n in names.values()
                                                        if n.endswith("bias") or n == "codebooks.values"}
    for p in q.parameters():
        p.grad = torch.full_like(p, 5.0)
    q.before_step()
    for p in q.parameters():
        expect = 1.0 if id(p) in {id(d) for d in decayed["params"]} else 5.0
        assert torch.all(p.grad == expect), names[id(p)]


def test_straight_through_gradient():
    q = QLAE(latents=2, progress=False)
    q.input_kind_, q.input_shape_ = "vector", (3,)
    q.build()
    z = torch.tensor([[0.13, -0.71]], requires_grad=True)
    out = q.codebooks(z)
    out.sum().backward()
    assert torch.equal(z.grad, torch.ones_like(z))  # identity gradient, also outside the codebook range
    assert q.codebooks.values.grad is None  # the decoder path does not move the codebook (only λ_q does)
    grid = np.linspace(-0.5, 0.5, 10)
    expect = [grid[np.abs(grid - v).argmin()] for v in (0.13, -0.71)]  # 1/6 and the outermost value −0.5
    np.testing.assert_allclose(out.detach().numpy()[0], expect, atol=1e-7)


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


def test_colour_augmentations_keep_luma_and_grey():
    """Grayscale is the ITU-R 601 luma in every channel; a hue-only jitter keeps each pixel's luma and chroma length
    (a rotation of the YIQ chroma plane) but changes the colours; p = 0 is the identity; grey images stay grey."""
    from repscope.learn import random_grayscale

    g = torch.Generator().manual_seed(0)
    x = 0.5 + 0.1 * (torch.rand(6, 3, 5, 5, generator=g) - 0.5)  # near grey: no clamping below
    grey = random_grayscale(x, torch.Generator().manual_seed(1), p=1.0)
    luma = 0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]
    assert torch.allclose(grey, luma[:, None].expand_as(x), atol=1e-6)
    hue = color_jitter(x, torch.Generator().manual_seed(2), brightness=0, contrast=0, saturation=0, hue=0.5, p=1.0)
    luma_h = 0.299 * hue[:, 0] + 0.587 * hue[:, 1] + 0.114 * hue[:, 2]
    assert torch.allclose(luma_h, luma, atol=1e-5) and not torch.allclose(hue, x, atol=1e-3)
    i = lambda t: 0.596 * t[:, 0] - 0.274 * t[:, 1] - 0.322 * t[:, 2]  # noqa: E731
    q = lambda t: 0.211 * t[:, 0] - 0.523 * t[:, 1] + 0.312 * t[:, 2]  # noqa: E731
    assert torch.allclose(i(hue) ** 2 + q(hue) ** 2, i(x) ** 2 + q(x) ** 2, atol=1e-5)
    assert torch.equal(color_jitter(x, torch.Generator().manual_seed(3), p=0.0), x)
    flat = x[:, :1].expand_as(x).contiguous()  # R = G = B
    out = color_jitter(flat, torch.Generator().manual_seed(4), brightness=0, contrast=0, p=1.0)
    assert torch.allclose(out[:, 0], out[:, 1], atol=1e-5) and torch.allclose(out[:, 1], out[:, 2], atol=1e-5)


def test_masked_autoencoder_follows_simmim(images):
    """SimMIM masking: exactly round(r·N) patches per image (r = 0.6 by default), a learnable mask token in the input,
    and a loss whose gradient reaches only the masked entries of the reconstruction."""
    x = torch.as_tensor(images[:8]).float().unsqueeze(1) / 255  # (8, 1, 16, 16): a 4×4 grid of 4×4 patches
    m = random_mask(x, 0.6, torch.Generator().manual_seed(0), patch=4)
    per_image = m[:, 0, ::4, ::4].reshape(8, -1).sum(1)
    assert torch.equal(per_image, torch.full((8,), float(round(0.6 * 16))))
    assert not torch.equal(m[0], m[1])  # different patches per image
    v = random_mask(torch.zeros(5, 20), 0.25, torch.Generator().manual_seed(0))
    assert torch.equal(v.sum(1), torch.full((5,), 5.0))
    ae = Autoencoder(mode="masked", latents=3, hidden=16, epochs=0, progress=False, device="cpu").fit(images[:32])
    assert ae.mask_ratio == 0.6 and ae.mask_token.shape == (1,)
    seen = {}
    ae.decoder.register_forward_hook(lambda mod, inp, out: seen.update(out=out) or out.retain_grad())
    ae.loss(x, torch.Generator().manual_seed(0)).backward()
    grad = seen["out"].grad
    assert torch.all(grad[m == 0] == 0) and (grad[m == 1] != 0).float().mean() > 0.9
    assert ae.mask_token.grad is not None and float(ae.mask_token.grad.abs().sum()) > 0  # the token is trained


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
