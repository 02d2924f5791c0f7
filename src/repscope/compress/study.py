"""Study steps `run: truncate`, `run: adapter` and `run: quantize_embeddings` (params checked when the study loads)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from repscope.distributed.ray_sweep import RayParam
from repscope.errors import check_choice
from repscope.params import SAMPLE_COLUMN, PositiveFloat
from repscope.results import Result


class TruncateParams(BaseModel):
    """Params of `run: truncate` (passed to `truncate_store`)."""

    model_config = ConfigDict(extra="forbid")
    target: Annotated[str | None, SAMPLE_COLUMN] = "label"
    layers: str | list[str] | None = None
    bases: list[str] = Field(default_factory=lambda: ["raw", "pca"])
    dims: list[int] | None = None
    k: int = Field(10, ge=1)
    seed: int = 0
    max_rows: int | None = Field(20000, ge=4)
    device: str = "auto"
    ray: RayParam = None

    @field_validator("bases", mode="before")
    @classmethod
    def _bases(cls, value: Any) -> list[str]:
        from repscope.compress.truncate import check_bases

        return check_bases(value)

    @field_validator("dims", mode="before")
    @classmethod
    def _dims(cls, value: Any) -> Any:
        from repscope.compress.truncate import check_dims

        return check_dims(value)


class AdapterParams(BaseModel):
    """Params of `run: adapter` (passed to `adapter_store`); `layer` is one pooled layer."""

    model_config = ConfigDict(extra="forbid")
    layer: str
    objective: str = "unsupervised"
    target: Annotated[str | None, SAMPLE_COLUMN] = "label"
    kind: str = "linear"
    dims: list[int] | None = None
    epochs: int = Field(30, ge=1)
    batch_size: int = Field(512, ge=4)
    lr: PositiveFloat = 1e-3
    seed: int = 0
    max_rows: int | None = Field(20000, ge=4)
    device: str = "auto"

    @field_validator("objective")
    @classmethod
    def _objective(cls, value: str) -> str:
        from repscope.compress.adapter import OBJECTIVES

        return check_choice(value, OBJECTIVES, "adapter objective")

    @field_validator("kind")
    @classmethod
    def _kind(cls, value: str) -> str:
        from repscope.compress.adapter import KINDS

        return check_choice(value, KINDS, "adapter kind")

    @field_validator("dims", mode="before")
    @classmethod
    def _dims(cls, value: Any) -> Any:
        from repscope.compress.truncate import check_dims

        return check_dims(value)


class QuantizeEmbeddingsParams(BaseModel):
    """Params of `run: quantize_embeddings` (passed to `quantize_store`)."""

    model_config = ConfigDict(extra="forbid")
    layers: str | list[str] | None = None
    schemes: list[str] = Field(default_factory=lambda: ["int8", "binary"])
    rescore: int = Field(4, ge=0)
    k: int = Field(10, ge=1)
    target: Annotated[str | None, SAMPLE_COLUMN] = "label"
    probe: bool = True
    seed: int = 0
    max_rows: int | None = Field(20000, ge=4)
    device: str = "auto"
    ranking: str = "cosine"
    ray: RayParam = None

    @field_validator("schemes", mode="before")
    @classmethod
    def _schemes(cls, value: Any) -> list[str]:
        from repscope.compress.quantize_embeddings import check_schemes

        return check_schemes(value)

    @field_validator("ranking")
    @classmethod
    def _ranking(cls, value: str) -> str:
        from repscope.compress.quantized_eval import RANKINGS
        from repscope.errors import check_choice

        return check_choice(value, RANKINGS, "ranking")


def run_truncate(stores: list, target: str | None = "label", layers: Any = None, bases: list[str] | None = None,
                 dims: list[int] | None = None, k: int = 10, seed: int = 0, max_rows: int | None = 20000,
                 device: str = "auto", ray: str | None = None) -> Result:
    """Truncation grid (raw / PCA prefixes) of each store's pooled layers; with `ray`, one Ray task per layer (the
    cross-layer summary on the driver)."""
    from repscope.compress.truncate import truncate_store

    result = Result()
    for store in stores:
        kw = {"target": target, "bases": bases, "ks": (k,), "seed": seed, "max_rows": max_rows, "device": device}
        if ray:
            from repscope.distributed.ray_sweep import ray_truncate_store

            result.extend(ray_truncate_store(store, layers=layers, dims=dims, address=ray, **kw))
        else:
            result.extend(truncate_store(store, layers=layers, dims=dims, **kw))
    return result


def run_adapter(stores: list, layer: str, objective: str = "unsupervised", target: str | None = "label",
                kind: str = "linear", dims: list[int] | None = None, epochs: int = 30, batch_size: int = 512,
                lr: float = 1e-3, seed: int = 0, max_rows: int | None = 20000, device: str = "auto") -> Result:
    """Matryoshka adapter per store: truncation curves of raw, PCA and adapted embeddings."""
    from repscope.compress.store import adapter_store

    result = Result()
    for store in stores:
        res, _ = adapter_store(store, layer, objective=objective, target=target, kind=kind, dims=dims, epochs=epochs,
                               batch_size=batch_size, lr=lr, seed=seed, max_rows=max_rows, device=device)
        result.extend(res)
    return result


def run_quantize(stores: list, layers: Any = None, schemes: list[str] | None = None, rescore: int = 4, k: int = 10,
                 target: str | None = "label", probe: bool = True, seed: int = 0, max_rows: int | None = 20000,
                 device: str = "auto", ranking: str = "cosine", ray: str | None = None) -> Result:
    """Quantization scores (float16 / int8 / binary, with rescoring) of each store's layers; with `ray`, one Ray task
    per layer."""
    from repscope.compress.store import quantize_store

    result = Result()
    for store in stores:
        kw = {"schemes": schemes, "rescore": rescore, "k": k, "target": target, "probe": probe, "seed": seed,
              "max_rows": max_rows, "device": device, "ranking": ranking}
        if ray:
            from repscope.distributed.ray_sweep import ray_quantize_embeddings

            result.extend(ray_quantize_embeddings(store, layers, address=ray, **kw))
        else:
            result.extend(quantize_store(store, layers, **kw))
    return result
