"""Study steps `run: truncate`, `run: adapter` and `run: quantize_embeddings` (params checked when the study loads),
and the units of the per-layer sweeps: `truncate` and `quantize_embeddings` plan one unit per pooled layer (the same
units the CLI commands run), which any executor (`repscope.distributed.executor`: local or Ray) runs; truncation's
cross-layer summary is computed on the driver from the gathered grid rows. `adapter` is one unit: it runs here."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from repscope.distributed.executor import Unit
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
    """Params of `run: quantize_embeddings` (passed to `quantize_embeddings_store`)."""

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


def _truncate_layer(store: Any, layer: str, kw: dict[str, Any]) -> Result:
    """One unit of a truncation sweep: the grid rows of `truncate_store` on `layer` (analysis `truncate`); the
    cross-layer summary is left to `combine_truncate_store`."""
    from repscope.compress.truncate import ANALYSIS, truncate_store

    res = truncate_store(store, layers=[layer], **kw)
    return Result(rows=[r for r in res.rows if r.analysis == ANALYSIS])


def plan_truncate_store(store: Any, *, layers: Any = None, dims: list[int] | None = None, **kw: Any) -> list[Unit]:
    """The units of `truncate_store(store, layers=layers, dims=dims, **kw)`: one per pooled layer (`dims` checked
    against every width first, so a bad dim fails before any work)."""
    from repscope.compress.truncate import truncation_layers

    args = {"dims": dims, **kw}
    return [Unit(_truncate_layer, (store, layer, args), label=f"{store.name}:{layer}")
            for layer in truncation_layers(store, layers, dims)]


def combine_truncate_store(store: Any, parts: list[Result], target: str | None = "label") -> Result:
    """The grid rows of `store`'s units in plan order, plus the ≥99%/≥95% summary rows and artifact of
    `add_truncation_summary`, rebuilt from those rows (the rows of `truncate_store`, timings aside)."""
    import pandas as pd

    from repscope.compress.truncate import ANALYSIS, add_truncation_summary

    res = Result()
    for part in parts:
        res.extend(part)
    grid = pd.DataFrame([{"basis": r.params["basis"], "dim": r.params["dim"],
                          "bytes_per_vector": r.params["bytes_per_vector"], "metric": r.metric, "value": r.value,
                          "layer": r.layer, "layer_index": r.layer_index, "store": r.store}
                         for r in res.rows if r.analysis == ANALYSIS])
    add_truncation_summary(res, store, grid, res.rows[0].params["target"] if res.rows else target)
    return res


def _truncate_kw(p: TruncateParams) -> dict[str, Any]:
    return {"target": p.target, "layers": p.layers, "bases": p.bases, "dims": p.dims, "ks": (p.k,), "seed": p.seed,
            "max_rows": p.max_rows, "device": p.device}


def plan_truncate(stores: list, p: TruncateParams) -> list[Unit]:
    """`run: truncate` units: one per (store, pooled layer) of the truncation grid."""
    return [unit for store in stores for unit in plan_truncate_store(store, **_truncate_kw(p))]


def combine_truncate(stores: list, p: TruncateParams, parts: list[Result]) -> Result:
    """Per store: its grid rows and the cross-layer summary (on the driver)."""
    from repscope.compress.truncate import truncation_layers

    result, start = Result(), 0
    for store in stores:
        n = len(truncation_layers(store, p.layers, p.dims))  # the store's units, as `plan_truncate` made them
        result.extend(combine_truncate_store(store, parts[start:start + n], p.target))
        start += n
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


def _quantize_embeddings_layer(store: Any, layer: str, kw: dict[str, Any]) -> Result:
    """One unit of an embedding-quantization sweep: `quantize_embeddings_store` on `layer`."""
    from repscope.compress.store import quantize_embeddings_store

    return quantize_embeddings_store(store, [layer], **kw)


def plan_quantize_embeddings_store(store: Any, layers: Any = None, **kw: Any) -> list[Unit]:
    """The units of `quantize_embeddings_store(store, layers, **kw)`: one per pooled layer (without `layers`,
    token-level layers are skipped; named ones are refused); concatenated in plan order they are its rows."""
    from repscope.store import pooled_layers

    return [Unit(_quantize_embeddings_layer, (store, layer, kw), label=f"{store.name}:{layer}")
            for layer in pooled_layers(store, layers, "embedding quantization")]


def plan_quantize_embeddings(stores: list, p: QuantizeEmbeddingsParams) -> list[Unit]:
    """`run: quantize_embeddings` units: one per (store, pooled layer); the default combine concatenates them."""
    kw = {"schemes": p.schemes, "rescore": p.rescore, "k": p.k, "target": p.target, "probe": p.probe,
          "seed": p.seed, "max_rows": p.max_rows, "device": p.device, "ranking": p.ranking}
    return [unit for store in stores for unit in plan_quantize_embeddings_store(store, p.layers, **kw)]
