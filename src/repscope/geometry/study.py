"""Study step `run: geometry`: geometry profile of every layer of each store (params checked on load)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from repscope.budget import MaxMemory
from repscope.distributed.ray_sweep import RayParam
from repscope.results import Result


class GeometryParams(BaseModel):
    """Params of `run: geometry`; `measures` are registered geometry measure names (default: the default set)."""

    model_config = ConfigDict(extra="forbid")
    measures: list[str] | None = None
    layers: str | list[str] | None = None
    label: str | None = "auto"
    max_rows: int | None = Field(3000, ge=3)
    seed: int = 0
    device: str = "auto"
    params: dict[str, dict[str, Any]] | None = None
    max_memory: MaxMemory = None
    ray: RayParam = None

    @field_validator("measures", mode="before")
    @classmethod
    def _registered(cls, value: str | list[str] | None) -> list[str] | None:
        """Look each name up in the geometry registry now (aliases resolved to canonical names)."""
        if value is None:
            return None
        from repscope.geometry.measures import MEASURES

        return MEASURES.resolve_many(value)

    @model_validator(mode="after")
    def _measure_params(self) -> GeometryParams:
        """Nested measure parameters name a measure that runs and a parameter it takes (checked at load)."""
        from repscope.geometry.measures import MEASURES, check_params, default_measures

        chosen = self.measures or default_measures()
        for name, values in (self.params or {}).items():
            canon = MEASURES.resolve(name)
            if canon not in chosen:
                raise ValueError(f"params given for measure '{name}', which this step does not run")
            check_params(MEASURES.get(canon), values)
        return self


def run(stores: list, measures: list[str] | None = None, layers: Any = None, label: str | None = "auto",
        max_rows: int | None = 3000, seed: int = 0, device: str = "auto",
        params: dict[str, dict[str, Any]] | None = None, max_memory: int | str | None = None,
        ray: str | None = None) -> Result:
    """Geometry profile of every layer of each store; with `ray`, one Ray task per layer."""
    from repscope.geometry.profile import geometry_profile

    profile = geometry_profile
    if ray:
        from functools import partial

        from repscope.distributed.ray_sweep import ray_geometry_profile

        profile = partial(ray_geometry_profile, address=ray)
    result = Result()
    for store in stores:
        result.extend(profile(store, measures=measures, layers=layers, label_col=label, max_rows=max_rows, seed=seed,
                              device=device, params=params, max_memory=max_memory))
    return result
