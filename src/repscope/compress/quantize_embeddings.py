"""Embedding quantization schemes: float16, int8 with per-dimension ranges calibrated on a calibration split, and
binary sign codes packed into bits (the int8/binary codes of sentence-transformers' `quantize_embeddings`).

Each scheme is one `SCHEMES` entry, an `EmbeddingScheme` (bits per dimension, encode, decode, optional calibration
and first-stage search); its metadata declares `rescore` (the evaluation adds a variant whose candidates are
rescored with float32 queries) and `paper`. `quantize`, `Quantized.decode`, `bytes_per_vector` and the evaluation in
`repscope.compress.quantized_eval` dispatch through the registered object only, so a scheme registered later
works from the Python API, `repscope quantize-embeddings --schemes` and the study step `quantize_embeddings`::

    SCHEMES.register("int4", EmbeddingScheme(bits=4, encode=..., decode=..., calibrate=...), rescore=True)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch

from repscope.compress.evaluate import as_matrix
from repscope.errors import ConfigError, DataError
from repscope.params import split_list
from repscope.registry import Registry


@dataclass(frozen=True)
class EmbeddingScheme:
    """One embedding quantization scheme.

    `bits`: storage bits per dimension (a vector takes ⌈d·bits/8⌉ bytes); `encode(x, state)`: codes of float32 rows
    x (n, d); `decode(codes, d, state)`: the float32 (n, d) vectors the codes stand for; `calibrate(rows)`: the
    state a calibrated scheme fits on a calibration split (None: the scheme needs none, state is None);
    `search(q, kk, device=, ranking=)`: leave-one-out top-kk indices (n, kk) of coded rows among each other, or None
    for the default first stage (cosine of the decoded vectors, `repscope.compress.quantized_eval.first_stage`)."""

    bits: int
    encode: Callable[[torch.Tensor, Any], torch.Tensor]
    decode: Callable[[torch.Tensor, int, Any], torch.Tensor]
    calibrate: Callable[[Any], Any] | None = None
    search: Callable[..., torch.Tensor | None] | None = None


SCHEMES: Registry[EmbeddingScheme] = Registry("embedding quantization scheme")  # filled below the codecs


def check_schemes(schemes: Sequence[str] | str | None) -> list[str]:
    """Canonical scheme names (unknown names raise the registry's one-line error); default int8, binary."""
    names = split_list(schemes, "schemes", "int8,binary")
    names = ["int8", "binary"] if names is None else names
    return list(dict.fromkeys(SCHEMES.resolve(s) for s in names))


def bytes_per_vector(scheme: str, d: int) -> int:
    """Storage of one d-dimensional vector, ⌈d·bits/8⌉ bytes: 4d, 2d, d bytes, or ⌈d/8⌉ for binary."""
    return (d * SCHEMES.get(scheme).bits + 7) // 8


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
        return SCHEMES.get(self.scheme).decode(self.codes, self.dim, self.ranges)

    @property
    def bytes_per_vector(self) -> int:
        return bytes_per_vector(self.scheme, self.dim)


def quantize(x: Any, scheme: str, *, calibration: Any = None, ranges: Int8Ranges | None = None) -> Quantized:
    """Codes of x (n, d) under `scheme`; a calibrated scheme (int8) uses `ranges` (its fitted state), else the state
    calibrated on `calibration` rows; other schemes ignore both."""
    name = SCHEMES.resolve(scheme)
    spec = SCHEMES.get(name)
    t = as_matrix(x)
    state = None
    if spec.calibrate is not None:
        state = ranges
        if state is None:
            if calibration is None:
                raise ConfigError(f"{name} needs a calibration split (or ranges); pass calibration=rows")
            state = spec.calibrate(calibration)
    return Quantized(name, spec.encode(t, state), t.shape[1], state)


def _first_stage_hamming(q: Quantized, kk: int, *, device: str = "auto", ranking: str = "cosine") -> torch.Tensor:
    """Binary first stage: exact Hamming top-(kk + 1) of the packed codes, the row itself dropped."""
    from repscope.compress.search import drop_self, hamming_topk

    _, idx = hamming_topk(q.codes, q.codes, kk + 1, device=device)
    return drop_self(idx, kk)


def _first_stage_int8(q: Quantized, kk: int, *, device: str = "auto", ranking: str = "cosine") -> torch.Tensor | None:
    """int8 first stage under `ranking="sentence-transformers"`: the inner product of the codes; else None (cosine
    of the decoded vectors, the default)."""
    if ranking != "sentence-transformers":
        return None
    from repscope.compress.search import int8_ip_topk

    return int8_ip_topk(q.codes, q.codes, kk, exclude_self=True)[1]


def _keep(t: torch.Tensor, state: Any) -> torch.Tensor:
    return t


def _to_float16(t: torch.Tensor, state: Any) -> torch.Tensor:
    return t.to(torch.float16)


def _as_float32(codes: torch.Tensor, d: int, state: Any) -> torch.Tensor:
    return codes.to(torch.float32)


def _decode_int8(codes: torch.Tensor, d: int, ranges: Int8Ranges) -> torch.Tensor:
    return dequantize_int8(codes, ranges)


def _encode_binary(t: torch.Tensor, state: Any) -> torch.Tensor:
    return pack_bits(t)


def _decode_binary(codes: torch.Tensor, d: int, state: Any) -> torch.Tensor:
    return unpack_bits(codes, d).to(torch.float32) * 2 - 1


SCHEMES.register("float32", EmbeddingScheme(32, _keep, _as_float32), aliases=("fp32",), paper="baseline",
                 rescore=False)
SCHEMES.register("float16", EmbeddingScheme(16, _to_float16, _as_float32), aliases=("fp16", "half"),
                 paper="IEEE 754 half precision", rescore=False)
SCHEMES.register("int8", EmbeddingScheme(8, quantize_int8, _decode_int8, calibrate=Int8Ranges.calibrate,
                                         search=_first_stage_int8),
                 paper="scalar quantization, per-dimension [min, max] in 256 buckets", rescore=True)
SCHEMES.register("binary", EmbeddingScheme(1, _encode_binary, _decode_binary, search=_first_stage_hamming),
                 aliases=("ubinary", "sign"), paper="sign bits packed 8 per byte (Hamming search)", rescore=True)
