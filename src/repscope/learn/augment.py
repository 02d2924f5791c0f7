"""Torch-only views for contrastive learning (no torchvision): random resized crop, horizontal flip, SimCLR's colour
jitter (brightness, contrast, saturation, hue), random grayscale and Gaussian noise for images (n, C, H, W) in [0, 1];
feature dropout and Gaussian noise for vectors.
Every random draw comes from the given `torch.Generator`, so a seed fixes the views."""

from __future__ import annotations

import math

import torch
from torch import Tensor
from torch.nn import functional as F


def _rand(n: int, g: torch.Generator, lo: float = 0.0, hi: float = 1.0) -> Tensor:
    return lo + (hi - lo) * torch.rand(n, generator=g)


def random_resized_crop(x: Tensor, g: torch.Generator, *, scale: tuple[float, float] = (0.2, 1.0),
                        ratio: tuple[float, float] = (3 / 4, 4 / 3)) -> Tensor:
    """Crop a random box (area fraction in `scale`, aspect ratio in `ratio`) of each image, resized back to (H, W)."""
    n = len(x)
    area = _rand(n, g, *scale)
    logr = _rand(n, g, math.log(ratio[0]), math.log(ratio[1]))
    r = torch.exp(logr)
    w = torch.sqrt(area * r).clamp(max=1.0)  # box width/height as fractions of the image
    h = torch.sqrt(area / r).clamp(max=1.0)
    cx = (1 - w) * (2 * _rand(n, g) - 1)  # centre in [-1+w, 1-w] (normalised coords)
    cy = (1 - h) * (2 * _rand(n, g) - 1)
    theta = torch.zeros(n, 2, 3)
    theta[:, 0, 0], theta[:, 0, 2], theta[:, 1, 1], theta[:, 1, 2] = w, cx, h, cy
    grid = F.affine_grid(theta.to(x.device, x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False)


def random_flip(x: Tensor, g: torch.Generator, *, p: float = 0.5) -> Tensor:
    """Flip each image left–right with probability `p`."""
    flip = (torch.rand(len(x), generator=g) < p).to(x.device)
    return torch.where(flip[:, None, None, None], x.flip(-1), x)


_GREY = (0.299, 0.587, 0.114)  # ITU-R 601 luma weights (what torchvision's rgb_to_grayscale uses)
_RGB2YIQ = ((0.299, 0.587, 0.114), (0.596, -0.274, -0.322), (0.211, -0.523, 0.312))


def _grey(x: Tensor) -> Tensor:
    """Luma (n, 1, H, W) of RGB images; grey images are their own luma."""
    if x.shape[1] != 3:
        return x.mean(1, keepdim=True)
    w = torch.tensor(_GREY, dtype=x.dtype, device=x.device)[None, :, None, None]
    return (x * w).sum(1, keepdim=True)


def _hue_rotate(x: Tensor, angle: Tensor) -> Tensor:
    """Rotate the chroma plane (I, Q) of the YIQ colour space by `angle` radians per image (a linear approximation of
    an HSV hue shift that keeps luma; RGB images only)."""
    m = torch.tensor(_RGB2YIQ, dtype=x.dtype, device=x.device)
    yiq = torch.einsum("ij,njhw->nihw", m, x)
    c, s = torch.cos(angle).to(x)[:, None, None], torch.sin(angle).to(x)[:, None, None]
    i, q = yiq[:, 1], yiq[:, 2]
    yiq = torch.stack([yiq[:, 0], c * i - s * q, s * i + c * q], 1)
    return torch.einsum("ij,njhw->nihw", torch.linalg.inv(m), yiq)


def color_jitter(x: Tensor, g: torch.Generator, *, brightness: float = 0.4, contrast: float = 0.4,
                 saturation: float = 0.4, hue: float = 0.1, p: float = 0.8) -> Tensor:
    """SimCLR's colour jitter (Chen et al. 2020, App. A: strength s = 0.5 for CIFAR-10 gives 0.4/0.4/0.4/0.1), applied
    to each image with probability `p`: brightness × U(1−b, 1+b); contrast around the image's mean luma × U(1−c, 1+c);
    saturation (blend with the luma image) × U(1−s, 1+s); hue rotated by U(−h, h) of a full turn. Saturation and hue
    act on RGB images only; the result is clamped to [0, 1]."""
    n = len(x)
    b, c, s = (_rand(n, g, 1 - a, 1 + a).to(x.device, x.dtype)[:, None, None, None]
               for a in (brightness, contrast, saturation))
    angle = _rand(n, g, -hue, hue) * 2 * math.pi
    apply = (torch.rand(n, generator=g) < p).to(x.device)[:, None, None, None]
    y = (x * b).clamp(0, 1)
    mean = _grey(y).mean(dim=(1, 2, 3), keepdim=True)
    y = ((y - mean) * c + mean).clamp(0, 1)
    if x.shape[1] == 3:
        grey = _grey(y)
        y = ((y - grey) * s + grey).clamp(0, 1)
        y = _hue_rotate(y, angle).clamp(0, 1) if hue > 0 else y
    return torch.where(apply, y, x)


def random_grayscale(x: Tensor, g: torch.Generator, *, p: float = 0.2) -> Tensor:
    """Replace each RGB image by its luma (in all three channels) with probability `p` (SimCLR: p = 0.2)."""
    drop = (torch.rand(len(x), generator=g) < p).to(x.device)[:, None, None, None]
    return torch.where(drop, _grey(x).expand_as(x), x) if x.shape[1] == 3 else x


def gaussian_noise(x: Tensor, g: torch.Generator, *, std: float = 0.05) -> Tensor:
    """Add N(0, std²) noise."""
    return x + std * torch.randn(x.shape, generator=g).to(x.device, x.dtype)


def image_view(x: Tensor, g: torch.Generator, *, noise: float = 0.05, scale: tuple[float, float] = (0.2, 1.0),
               color: float = 0.5) -> Tensor:
    """One SimCLR view of a batch of images (Chen et al. 2020, App. A/B.9 for CIFAR-10): random resized crop (area in
    `scale`) → flip → colour jitter of strength `color` (0.8s, 0.8s, 0.8s, 0.2s; p = 0.8) → grayscale (p = 0.2) →
    Gaussian noise `noise` (no blur at this resolution). `color=0` keeps colours."""
    x = random_flip(random_resized_crop(x, g, scale=scale), g)
    if color > 0:
        x = random_grayscale(color_jitter(x, g, brightness=0.8 * color, contrast=0.8 * color,
                                          saturation=0.8 * color, hue=0.2 * color), g)
    return gaussian_noise(x, g, std=noise)


def vector_view(x: Tensor, g: torch.Generator, *, drop: float = 0.2, noise: float = 0.1) -> Tensor:
    """One view of a batch of vectors: feature dropout (rate `drop`, survivors rescaled) plus noise scaled by each
    feature's batch standard deviation."""
    keep = (torch.rand(x.shape, generator=g) >= drop).to(x.device, x.dtype) / (1 - drop)
    std = x.std(0, keepdim=True).clamp_min(1e-8)
    return x * keep + noise * std * torch.randn(x.shape, generator=g).to(x.device, x.dtype)
