"""CIFAR-10 ResNets (He et al. 2016, "Deep Residual Learning", §4.2) for the weights in shared/data/models.

Depth 6n+2: conv3×3(3→16)-BN-ReLU, three stages of n basic blocks (16, 32, 64 channels; stride 2 entering stages 2
and 3), global average pool, linear 64→10. Shortcuts are "option A": parameter-free identity, subsampled by 2 and
zero-padded in channels where the shape changes. Module names match the state-dict keys of the shared weights, and
`named_modules()` gives hookable layers conv1, bn1, relu, layer1 … layer3, layer{s}.{i}, avgpool, linear.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from repscope.device import resolve_device
from repscope.errors import ConfigError, DataError
from repscope.paths import shared_data

DEPTHS = (20, 32, 44, 56)
IMAGE_MEAN = (0.485, 0.456, 0.406)
IMAGE_STD = (0.229, 0.224, 0.225)


class OptionAShortcut(nn.Module):
    """He et al. 2016 option-A shortcut: x[:, :, ::s, ::s] zero-padded with (out−in)/2 channels on each side."""

    def __init__(self, in_planes: int, out_planes: int, stride: int):
        super().__init__()
        self.stride = stride
        self.pad = (out_planes - in_planes) // 2

    def forward(self, x: Tensor) -> Tensor:
        if self.stride > 1:
            x = x[:, :, :: self.stride, :: self.stride]
        if self.pad:
            x = F.pad(x, (0, 0, 0, 0, self.pad, self.pad))  # last dims first: W, H, then C
        return x


class BasicBlock(nn.Module):
    """conv3×3-BN-ReLU-conv3×3-BN, plus shortcut, then ReLU (so the block's output is post-activation)."""

    def __init__(self, in_planes: int, planes: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride=1, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        if stride != 1 or in_planes != planes:
            self.shortcut: nn.Module = OptionAShortcut(in_planes, planes, stride)
        else:
            self.shortcut = nn.Identity()

    def forward(self, x: Tensor) -> Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class CifarResNet(nn.Module):
    """ResNet-(6n+2) for 32×32 CIFAR images; input normalised (B, 3, H, W), output logits (B, 10)."""

    def __init__(self, depth: int, num_classes: int = 10):
        super().__init__()
        if depth < 8 or (depth - 2) % 6:
            raise ConfigError(f"CIFAR ResNet depth must be 6n+2 (e.g. {', '.join(map(str, DEPTHS))}); got {depth}")
        n = (depth - 2) // 6
        self.depth = depth
        self.conv1 = nn.Conv2d(3, 16, 3, stride=1, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(16)
        self.relu = nn.ReLU()
        in_planes = 16
        stages = []
        for planes, stride in ((16, 1), (32, 2), (64, 2)):
            blocks = []
            for i in range(n):
                blocks.append(BasicBlock(in_planes, planes, stride if i == 0 else 1))
                in_planes = planes
            stages.append(nn.Sequential(*blocks))
        self.layer1, self.layer2, self.layer3 = stages
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.flatten = nn.Flatten(1)
        self.linear = nn.Linear(64, num_classes)
        for m in self.modules():  # He (Kaiming) normal init, as in the paper, for freshly built models
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.kaiming_normal_(m.weight)

    def forward(self, x: Tensor) -> Tensor:
        x = self.relu(self.bn1(self.conv1(x)))
        x = self.layer3(self.layer2(self.layer1(x)))
        return self.linear(self.flatten(self.avgpool(x)))


def build_resnet(depth: int) -> CifarResNet:
    """A freshly initialised CIFAR ResNet of depth 6n+2 (He et al. 2016, option-A shortcuts)."""
    return CifarResNet(int(depth))


def _weights_path(depth_or_path: int | str | os.PathLike) -> tuple[Path, int | None]:
    if isinstance(depth_or_path, (int, np.integer)) or (isinstance(depth_or_path, str) and depth_or_path.isdigit()):
        depth = int(depth_or_path)
        if depth not in DEPTHS:
            raise ConfigError(f"no shared CIFAR ResNet of depth {depth}; choose one of {', '.join(map(str, DEPTHS))}")
        name = f"cifar10_resnet{depth}.safetensors"
        p = shared_data("models", name)
        if p is None:
            raise DataError(f"weights models/{name} not found: put the shared data folder at ../shared/data beside "
                            "the repo or set REPSCOPE_SHARED to the folder holding data/")
        return p, depth
    p = Path(depth_or_path)
    if p.suffix != ".safetensors":
        raise ConfigError(f"'{p}' is not a .safetensors file; give a depth ({', '.join(map(str, DEPTHS))}) "
                          "or a path to CIFAR ResNet weights in safetensors format")
    if not p.is_file():
        raise DataError(f"weights file '{p}' not found; check the path (shared weights live in ../shared/data/models, "
                        "or set REPSCOPE_SHARED)")
    return p, None


def _infer_depth(state: dict[str, Tensor]) -> int:
    blocks = {k.split(".")[1] for k in state if k.startswith("layer1.")}
    if not blocks:
        raise DataError("state dict has no layer1.* keys; it is not a CIFAR ResNet checkpoint")
    return 6 * len(blocks) + 2


def load_state_strict(model: nn.Module, state: dict[str, Tensor], source: str = "state dict") -> None:
    """Load `state` into `model`, requiring exactly the model's keys (BatchNorm's num_batches_tracked optional)."""
    expected = {k for k in model.state_dict() if not k.endswith("num_batches_tracked")}
    given = {k for k in state if not k.endswith("num_batches_tracked")}
    missing, unexpected = sorted(expected - given), sorted(given - expected)
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} key(s) e.g. {', '.join(missing[:3])}")
        if unexpected:
            parts.append(f"unexpected {len(unexpected)} key(s) e.g. {', '.join(unexpected[:3])}")
        raise DataError(f"{source} does not match a CIFAR ResNet-{getattr(model, 'depth', '?')}: "
                        f"{'; '.join(parts)}; use the cifar10_resnet*.safetensors files from shared/data/models")
    own = model.state_dict()
    for k in given:
        if tuple(state[k].shape) != tuple(own[k].shape):
            raise DataError(f"{source}: key {k} has shape {tuple(state[k].shape)}, expected {tuple(own[k].shape)}; "
                            "the weights are for a different architecture")
    model.load_state_dict(state, strict=False)


def load_cifar_resnet(depth_or_path: int | str | os.PathLike, device: str | torch.device = "cpu") -> CifarResNet:
    """Load shared CIFAR-10 ResNet weights (depth 20/32/44/56 or a .safetensors path) in eval mode.

    Sets `model.repscope_name` (file stem, e.g. "cifar10_resnet20") and `model.repscope_hash` (sha256, 16 hex).
    """
    from safetensors.torch import load_file

    path, depth = _weights_path(depth_or_path)
    try:
        state = load_file(str(path))
    except Exception as err:  # safetensors raises its own error types for truncated/corrupt files
        raise DataError(f"cannot read safetensors file '{path}': {err}; re-copy the weights") from err
    model = build_resnet(depth if depth is not None else _infer_depth(state))
    load_state_strict(model, state, source=f"'{path.name}'")
    model.eval().to(resolve_device(device))
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    model.repscope_name = path.stem
    model.repscope_hash = h.hexdigest()[:16]
    return model


def cifar_transform(images_uint8) -> Tensor:
    """RGB images (B, H, W, 3) → float32 (B, 3, H, W) in [0, 1], then (x − IMAGE_MEAN) / IMAGE_STD per channel.

    uint8 (and float in [0, 255]) pixels are divided by 255; a float batch already in [0, 1] is used as it is.
    """
    if isinstance(images_uint8, (list, tuple)):
        images_uint8 = np.stack([np.asarray(im) for im in images_uint8])
    x = torch.as_tensor(np.asarray(images_uint8) if not isinstance(images_uint8, Tensor) else images_uint8)
    if x.ndim == 3:
        x = x.unsqueeze(0)
    if x.ndim != 4 or x.shape[-1] != 3:
        raise DataError(f"expected RGB images shaped (B, H, W, 3), got {tuple(x.shape)}; CIFAR ResNets take colour "
                        "images (channels last)")
    unit = torch.is_floating_point(x) and x.numel() > 0 and float(x.max()) <= 1.0  # already [0, 1]: keep it
    x = x.to(torch.float32).permute(0, 3, 1, 2)
    x = x if unit else x / 255.0
    mean = torch.tensor(IMAGE_MEAN, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    std = torch.tensor(IMAGE_STD, dtype=torch.float32, device=x.device).view(1, 3, 1, 1)
    return ((x - mean) / std).contiguous()
