"""Study step `run: disentangle`: disentanglement scores of each store's pooled layers (params checked on load)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from repscope.distributed.executor import Unit
from repscope.errors import check_choice
from repscope.params import SAMPLE_COLUMN
from repscope.results import Result


class DisentangleParams(BaseModel):
    """Params of `run: disentangle` (passed to `disentangle_store`); `factors` are sample columns."""

    model_config = ConfigDict(extra="forbid")
    factors: Annotated[list[str], SAMPLE_COLUMN] = Field(min_length=1)
    metrics: list[str] | None = None
    layers: str | list[str] | None = None
    max_rows: int | None = Field(10000, ge=10)
    seed: int = 0
    importance: str = "gbt"
    sap_mode: str = "r2"
    mi_estimator: str = "histogram"
    infoe_split: str = "test"
    batch_pool: str = "split"
    bins: int = Field(20, ge=2)

    @field_validator("factors", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value

    @field_validator("metrics", mode="before")
    @classmethod
    def _registered(cls, value: Any) -> list[str] | None:
        """Look each metric family up in the registry now (aliases resolved)."""
        from repscope.disentangle.suite import resolve_metrics

        return None if value is None else resolve_metrics(value)

    @field_validator("importance")
    @classmethod
    def _engine(cls, value: str) -> str:
        """A registered DCI engine (`DCI_ENGINES`; one-line error listing them otherwise)."""
        from repscope.disentangle.dci_score import DCI_ENGINES

        DCI_ENGINES.resolve(value)
        return value

    @field_validator("sap_mode", "mi_estimator", "infoe_split", "batch_pool")
    @classmethod
    def _choice(cls, value: str, info: ValidationInfo) -> str:
        """Each option is one of the names its module declares (one-line error listing them otherwise)."""
        from importlib import import_module

        module, attr = {"sap_mode": ("sap_score", "SAP_MODES"), "mi_estimator": ("infomec_score", "MI_ESTIMATORS"),
                        "infoe_split": ("infomec_score", "INFOE_SPLITS"),
                        "batch_pool": ("scores", "BATCH_POOLS")}[info.field_name]
        choices = getattr(import_module(f"repscope.disentangle.{module}"), attr)
        return check_choice(value, choices, info.field_name)


def disentangle_layer(store: Any, layer: str, factors: list[str], kw: dict[str, Any]) -> Result:
    """One unit of `disentangle`: `disentangle_store` restricted to the pooled layer `layer`."""
    from repscope.disentangle.store import disentangle_store

    return disentangle_store(store, factors, layers=[layer], **kw)


def plan_disentangle(store: Any, factors: Sequence[str] | str, layers: Any = None, **kw: Any) -> list[Unit]:
    """The units of `disentangle_store(store, factors, layers=layers, **kw)`: one per pooled layer (token-level ones
    skipped, or refused when named, as locally); concatenated in plan order they are its rows and heatmaps. Each
    unit checks the factors (a bad one fails every unit with the local one-line error); no factors at all is
    refused here, with that error, before any unit runs."""
    from repscope.disentangle.store import factor_names
    from repscope.store import pooled_layers

    chosen = pooled_layers(store, layers, "disentanglement")  # none pooled: its one-line error
    names = factor_names(factors)
    return [Unit(disentangle_layer, (store, layer, names, kw), label=f"{store.name}:{layer}") for layer in chosen]


def plan(stores: list, p: DisentangleParams) -> list[Unit]:
    """`run: disentangle` units: one per (store, pooled layer)."""
    kw = {"metrics": p.metrics, "max_rows": p.max_rows, "seed": p.seed, "importance": p.importance,
          "sap_mode": p.sap_mode, "mi_estimator": p.mi_estimator, "infoe_split": p.infoe_split,
          "batch_pool": p.batch_pool, "bins": p.bins}
    return [unit for store in stores for unit in plan_disentangle(store, p.factors, p.layers, **kw)]
