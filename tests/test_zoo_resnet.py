"""CIFAR ResNet zoo: architecture checked by hand computations, loading errors, and accuracy on the shared weights."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import save_file

from repscope.errors import ConfigError, DataError
from repscope.sources.zoo import resnet_cifar
from repscope.sources.zoo.resnet_cifar import (
    IMAGE_MEAN,
    IMAGE_STD,
    build_resnet,
    cifar_transform,
    load_cifar_resnet,
)

# README table of shared/data: top-1 on cifar10_test_a.npz, measured with an independent implementation.
README_TOP1 = {20: 0.8135, 32: 0.8380, 44: 0.8220, 56: 0.8315}


def _randomize_bn(model: torch.nn.Module, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand(m.weight.shape, generator=g) + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=g) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=g) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=g) + 0.5)


def _bn(x: torch.Tensor, bn: torch.nn.BatchNorm2d) -> torch.Tensor:
    v = lambda t: t.view(1, -1, 1, 1)  # noqa: E731
    return (x - v(bn.running_mean)) / torch.sqrt(v(bn.running_var) + bn.eps) * v(bn.weight) + v(bn.bias)


def test_shapes_and_layer_names_random_input():
    torch.manual_seed(0)
    model = build_resnet(20).eval()
    names = dict(model.named_modules())
    for n in ["conv1", "bn1", "layer1", "layer1.0", "layer1.2", "layer2.0", "layer3.2", "avgpool", "linear"]:
        assert n in names, n
    assert "layer1.3" not in names and "layer4" not in names  # depth 20 → n = 3 blocks per stage, 3 stages
    assert isinstance(names["avgpool"], torch.nn.AdaptiveAvgPool2d)
    seen = {}
    hooks = [names[n].register_forward_hook(lambda m, i, o, n=n: seen.__setitem__(n, o))
             for n in ["layer1", "layer1.0", "layer2", "layer2.0", "layer3", "avgpool", "linear"]]
    x = torch.randn(3, 3, 32, 32)
    with torch.inference_mode():
        out = model(x)
    for h in hooks:
        h.remove()
    assert out.shape == (3, 10)
    assert seen["layer1"].shape == (3, 16, 32, 32)
    assert seen["layer2.0"].shape == (3, 32, 16, 16)
    assert seen["layer3"].shape == (3, 64, 8, 8)
    assert seen["avgpool"].shape == (3, 64, 1, 1)
    torch.testing.assert_close(seen["avgpool"].flatten(1), seen["layer3"].mean(dim=(2, 3)))
    # block outputs are post-ReLU: non-negative, with exact zeros present
    for n in ["layer1.0", "layer2.0", "layer3"]:
        assert seen[n].min() >= 0 and (seen[n] == 0).any()
    assert (out < 0).any()  # logits are not rectified
    # other depths: 6n+2 blocks
    m56 = build_resnet(56)
    assert sum(isinstance(m, resnet_cifar.BasicBlock) for m in m56.modules()) == 27
    assert build_resnet(32).eval()(torch.randn(2, 3, 32, 32)).shape == (2, 10)


def test_option_a_block_matches_hand_computation():
    """First block of stage 2 (stride 2, 16→32): relu(bn2(conv2(relu(bn1(conv1 x)))) + pad(x[:, :, ::2, ::2]))."""
    torch.manual_seed(1)
    model = build_resnet(20).eval()
    _randomize_bn(model)
    blk = model.layer2[0]
    x = torch.randn(2, 16, 32, 32, dtype=torch.float64)
    blk = blk.double()
    with torch.no_grad():
        h = F.relu(_bn(F.conv2d(x, blk.conv1.weight, stride=2, padding=1), blk.bn1))
        h = _bn(F.conv2d(h, blk.conv2.weight, stride=1, padding=1), blk.bn2)
        sub = x[:, :, ::2, ::2]
        zeros = torch.zeros(2, 8, 16, 16, dtype=torch.float64)
        shortcut = torch.cat([zeros, sub, zeros], dim=1)  # (32−16)/2 = 8 zero channels on each side
        expected = F.relu(h + shortcut)
        got = blk(x)
    assert got.shape == (2, 32, 16, 16)
    torch.testing.assert_close(got, expected)
    # identity block (same shape): the shortcut is x itself
    blk1 = model.layer1[1].double()
    x1 = torch.randn(2, 16, 8, 8, dtype=torch.float64)
    with torch.no_grad():
        h = F.relu(_bn(F.conv2d(x1, blk1.conv1.weight, padding=1), blk1.bn1))
        expected1 = F.relu(_bn(F.conv2d(h, blk1.conv2.weight, padding=1), blk1.bn2) + x1)
        torch.testing.assert_close(blk1(x1), expected1)


def test_cifar_transform_matches_formula():
    rng = np.random.default_rng(0)
    imgs = rng.integers(0, 256, size=(4, 32, 32, 3), dtype=np.uint8)
    out = cifar_transform(imgs)
    assert out.dtype == torch.float32 and out.shape == (4, 3, 32, 32)
    ref = (imgs.astype(np.float64) / 255.0 - np.array(IMAGE_MEAN)) / np.array(IMAGE_STD)  # (B, H, W, 3)
    np.testing.assert_allclose(out.numpy(), ref.transpose(0, 3, 1, 2), rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(cifar_transform(torch.from_numpy(imgs)), out)
    torch.testing.assert_close(cifar_transform(list(imgs)), out)
    with pytest.raises(DataError, match="RGB"):
        cifar_transform(np.zeros((2, 28, 28, 1), dtype=np.uint8))


def test_load_roundtrip_sets_name_and_hash(tmp_path):
    torch.manual_seed(2)
    src = build_resnet(20).eval()
    _randomize_bn(src)
    state = {k: v.contiguous() for k, v in src.state_dict().items() if not k.endswith("num_batches_tracked")}
    path = tmp_path / "my_resnet20.safetensors"
    save_file(state, str(path))
    model = load_cifar_resnet(path)
    assert not model.training
    x = torch.randn(2, 3, 32, 32)
    with torch.inference_mode():
        torch.testing.assert_close(model(x), src(x))
    import hashlib

    assert model.repscope_name == "my_resnet20"
    assert model.repscope_hash == hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def test_missing_key_and_missing_file_errors(tmp_path, monkeypatch):
    state = {k: v.contiguous() for k, v in build_resnet(20).state_dict().items()
             if not k.endswith("num_batches_tracked")}
    del state["layer2.1.bn1.running_var"]
    bad = tmp_path / "bad.safetensors"
    save_file(state, str(bad))
    with pytest.raises(DataError, match=r"missing 1 key.*layer2\.1\.bn1\.running_var") as ei:
        load_cifar_resnet(bad)
    assert "\n" not in str(ei.value)
    # wrong shape (a 32-channel stem) is rejected too
    state2 = {k: v.contiguous() for k, v in build_resnet(20).state_dict().items()
              if not k.endswith("num_batches_tracked")}
    state2["linear.weight"] = torch.zeros(10, 32)
    wrong = tmp_path / "wrong.safetensors"
    save_file(state2, str(wrong))
    with pytest.raises(DataError, match="linear.weight has shape"):
        load_cifar_resnet(wrong)
    with pytest.raises(DataError, match="not found"):
        load_cifar_resnet(tmp_path / "nope.safetensors")
    with pytest.raises(ConfigError, match="6n\\+2"):
        build_resnet(21)
    with pytest.raises(ConfigError, match="20, 32, 44, 56"):
        load_cifar_resnet(18)
    monkeypatch.setattr(resnet_cifar, "shared_data", lambda *parts: None)
    with pytest.raises(DataError, match="REPSCOPE_SHARED") as ei:
        load_cifar_resnet(20)
    assert "../shared/data" in str(ei.value) and "\n" not in str(ei.value)


@pytest.fixture(scope="module")
def cifar_test_a():
    from conftest import require_shared

    p = require_shared("images", "cifar10_test_a.npz")
    with np.load(p, allow_pickle=False) as z:
        images, labels = z["images"], z["labels"]
    assert images.shape == (2000, 32, 32, 3) and images.dtype == np.uint8
    return cifar_transform(images), torch.as_tensor(labels.astype(np.int64))


@pytest.mark.shared
@pytest.mark.parametrize("depth", sorted(README_TOP1))
def test_accuracy_matches_readme(depth, cifar_test_a):
    from conftest import require_shared

    require_shared("models", f"cifar10_resnet{depth}.safetensors")
    x, y = cifar_test_a
    model = load_cifar_resnet(depth)
    assert model.repscope_name == f"cifar10_resnet{depth}" and len(model.repscope_hash) == 16
    with torch.inference_mode():
        pred = torch.cat([model(x[i : i + 500]).argmax(1) for i in range(0, len(x), 500)])
    acc = (pred == y).double().mean().item()
    assert abs(acc - README_TOP1[depth]) <= 0.005, f"ResNet-{depth}: top-1 {acc:.4f} vs README {README_TOP1[depth]}"
