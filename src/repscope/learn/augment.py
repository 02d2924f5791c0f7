"""Torch-only views for contrastive learning (no torchvision): random resized crop, horizontal flip, brightness/
contrast jitter and Gaussian noise for images (n, C, H, W) in [0, 1]; feature dropout and Gaussian noise for vectors.
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


def color_jitter(x: Tensor, g: torch.Generator, *, brightness: float = 0.4, contrast: float = 0.4) -> Tensor:
    """Scale brightness by U(1−b, 1+b) and contrast (around each image's mean) by U(1−c, 1+c); clamp to [0, 1]."""
    n = len(x)
    b = _rand(n, g, 1 - brightness, 1 + brightness).to(x.device, x.dtype)[:, None, None, None]
    c = _rand(n, g, 1 - contrast, 1 + contrast).to(x.device, x.dtype)[:, None, None, None]
    x = x * b
    mean = x.mean(dim=(1, 2, 3), keepdim=True)
    return ((x - mean) * c + mean).clamp(0, 1)


def gaussian_noise(x: Tensor, g: torch.Generator, *, std: float = 0.05) -> Tensor:
    """Add N(0, std²) noise."""
    return x + std * torch.randn(x.shape, generator=g).to(x.device, x.dtype)


def image_view(x: Tensor, g: torch.Generator, *, noise: float = 0.05) -> Tensor:
    """One SimCLR view of a batch of images: crop → flip → jitter → noise."""
    return gaussian_noise(color_jitter(random_flip(random_resized_crop(x, g), g), g), g, std=noise)


def vector_view(x: Tensor, g: torch.Generator, *, drop: float = 0.2, noise: float = 0.1) -> Tensor:
    """One view of a batch of vectors: feature dropout (rate `drop`, survivors rescaled) plus noise scaled by each
    feature's batch standard deviation."""
    keep = (torch.rand(x.shape, generator=g) >= drop).to(x.device, x.dtype) / (1 - drop)
    std = x.std(0, keepdim=True).clamp_min(1e-8)
    return x * keep + noise * std * torch.randn(x.shape, generator=g).to(x.device, x.dtype)
