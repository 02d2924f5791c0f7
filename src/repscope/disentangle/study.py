"""Study step `run: disentangle`: disentanglement scores of each store's pooled layers (params checked on load)."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from repscope.distributed.ray_sweep import RayParam
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
    ray: RayParam = None

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

    @field_validator("importance", "sap_mode", "mi_estimator", "infoe_split", "batch_pool")
    @classmethod
    def _choice(cls, value: str, info: ValidationInfo) -> str:
        """Each option is one of the names its module declares (one-line error listing them otherwise)."""
        from importlib import import_module  # the package re-exports functions named like these modules

        module, attr = {"importance": ("dci", "IMPORTANCES"), "sap_mode": ("sap", "SAP_MODES"),
                        "mi_estimator": ("infomec", "MI_ESTIMATORS"), "infoe_split": ("infomec", "INFOE_SPLITS"),
                        "batch_pool": ("scores", "BATCH_POOLS")}[info.field_name]
        choices = getattr(import_module(f"repscope.disentangle.{module}"), attr)
        return check_choice(value, choices, info.field_name)

def run(stores: list, factors: list[str], metrics: list[str] | None = None, layers: Any = None,
        max_rows: int | None = 10000, seed: int = 0, importance: str = "gbt", sap_mode: str = "r2",
        mi_estimator: str = "histogram", infoe_split: str = "test", batch_pool: str = "split", bins: int = 20,
        ray: str | None = None) -> Result:
    """Disentanglement scores of each store's pooled layers against `factors`; with `ray`, one Ray task per layer."""
    from repscope.disentangle.store import disentangle_store

    result = Result()
    for store in stores:
        kw = {"metrics": metrics, "max_rows": max_rows, "seed": seed, "importance": importance, "sap_mode": sap_mode,
              "mi_estimator": mi_estimator, "infoe_split": infoe_split, "batch_pool": batch_pool, "bins": bins}
        if ray:
            from repscope.distributed.ray_sweep import ray_disentangle_store

            result.extend(ray_disentangle_store(store, factors, layers=layers, address=ray, **kw))
        else:
            result.extend(disentangle_store(store, factors, layers=layers, **kw))
    return result
