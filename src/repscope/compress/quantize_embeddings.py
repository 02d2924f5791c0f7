"""Embedding quantization schemes: float16, int8 with per-dimension ranges calibrated on a calibration split, and
binary sign codes packed into bits (the int8/binary codes of sentence-transformers' `quantize_embeddings`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from repscope.compress.evaluate import as_matrix
from repscope.errors import ConfigError, DataError
from repscope.params import split_list
from repscope.registry import Registry

SCHEMES: Registry[int] = Registry("embedding quantization scheme")  # obj: bits per dimension
SCHEMES.register("float32", 32, aliases=("fp32",), paper="baseline")
SCHEMES.register("float16", 16, aliases=("fp16", "half"), paper="IEEE 754 half precision")
SCHEMES.register("int8", 8, paper="scalar quantization, per-dimension [min, max] in 256 buckets")
SCHEMES.register("binary", 1, aliases=("ubinary", "sign"), paper="sign bits packed 8 per byte (Hamming search)")


def check_schemes(schemes: Sequence[str] | str | None) -> list[str]:
    """Canonical scheme names (unknown names raise the registry's one-line error); default int8, binary."""
    names = split_list(schemes, "schemes", "int8,binary")
    names = ["int8", "binary"] if names is None else names
    return list(dict.fromkeys(SCHEMES.resolve(s) for s in names))


def bytes_per_vector(scheme: str, d: int) -> int:
    """Storage of one d-dimensional vector: 4d, 2d, d bytes, or ⌈d/8⌉ for binary."""
    bits = SCHEMES.get(scheme)
    return (d + 7) // 8 if bits == 1 else d * bits // 8


@dataclass
class Int8Ranges:
    """Per-dimension calibration: bucket j of dimension i covers [lo_i + j·step_i, lo_i + (j+1)·step_i), j < 256."""

    lo: torch.Tensor
    step: torch.Tensor

    @classmethod
    def calibrate(cls, calibration: Any) -> Int8Ranges:
        """lo = min, step = (max − min)/255 per dimension over the calibration rows (float32; a zero step is 1)."""
        c = as_matrix(calibration)
        if c.shape[0] < 2:
            raise DataError(f"int8 calibration needs at least 2 rows, got {c.shape[0]}; use a larger calibration split")
        lo, hi = c.min(0).values, c.max(0).values
        step = (hi - lo) / 255
        return cls(lo, torch.where(step == 0, torch.ones_like(step), step))


def quantize_int8(x: Any, ranges: Int8Ranges) -> torch.Tensor:
    """int8 codes clip(⌊(x − lo)/step⌋, 0, 255) − 128 (values outside the calibration range saturate)."""
    t = as_matrix(x)
    if t.shape[1] != ranges.lo.shape[0]:
        raise DataError(f"{t.shape[1]}-dim vectors but int8 ranges calibrated for {ranges.lo.shape[0]} dims")
    return (torch.floor((t - ranges.lo) / ranges.step).clamp(0, 255) - 128).to(torch.int8)


def dequantize_int8(codes: torch.Tensor, ranges: Int8Ranges) -> torch.Tensor:
    """Bucket centres lo + (code + 128 + ½)·step, float32."""
    return ranges.lo + (codes.to(torch.float32) + 128.5) * ranges.step


_BIT_WEIGHTS = torch.tensor([128, 64, 32, 16, 8, 4, 2, 1], dtype=torch.uint8)


def pack_bits(x: Any) -> torch.Tensor:
    """Sign bits (x > 0) packed 8 per byte, most significant bit first (numpy's packbits): uint8 (n, ⌈d/8⌉)."""
    t = as_matrix(x)
    n, d = t.shape
    bits = torch.zeros(n, (d + 7) // 8 * 8, dtype=torch.uint8)
    bits[:, :d] = (t > 0).to(torch.uint8)
    return (bits.view(n, -1, 8) * _BIT_WEIGHTS).sum(2, dtype=torch.uint8)


def unpack_bits(codes: torch.Tensor, d: int) -> torch.Tensor:
    """The (n, d) 0/1 bits of packed codes, uint8."""
    c = torch.as_tensor(codes).to(torch.uint8)
    return ((c[:, :, None] & _BIT_WEIGHTS) > 0).reshape(c.shape[0], -1)[:, :d].to(torch.uint8)


@dataclass
class Quantized:
    """Codes of one scheme plus what decoding needs: `codes` (float16 / int8 / packed uint8), `ranges`, `dim`."""

    scheme: str
    codes: torch.Tensor
    dim: int
    ranges: Int8Ranges | None = None

    def decode(self) -> torch.Tensor:
        """Float32 vectors the codes stand for (int8: bucket centres; binary: ±1 per bit)."""
        if self.scheme in ("float32", "float16"):
            return self.codes.to(torch.float32)
        if self.scheme == "int8":
            return dequantize_int8(self.codes, self.ranges)
        return unpack_bits(self.codes, self.dim).to(torch.float32) * 2 - 1

    @property
    def bytes_per_vector(self) -> int:
        return bytes_per_vector(self.scheme, self.dim)


def quantize(x: Any, scheme: str, *, calibration: Any = None, ranges: Int8Ranges | None = None) -> Quantized:
    """Codes of x (n, d) under `scheme`; int8 uses `ranges`, else ranges calibrated on `calibration` rows."""
    scheme = SCHEMES.resolve(scheme)
    t = as_matrix(x)
    if scheme == "float32":
        return Quantized(scheme, t, t.shape[1])
    if scheme == "float16":
        return Quantized(scheme, t.to(torch.float16), t.shape[1])
    if scheme == "int8":
        if ranges is None:
            if calibration is None:
                raise ConfigError("int8 needs a calibration split (or ranges); pass calibration=rows")
            ranges = Int8Ranges.calibrate(calibration)
        return Quantized(scheme, quantize_int8(t, ranges), t.shape[1], ranges)
    return Quantized(scheme, pack_bits(t), t.shape[1])
