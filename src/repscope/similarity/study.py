"""Study step `run: compare`: layer × layer similarity within one store or across two (params checked on load)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from repscope.budget import MaxMemory
from repscope.distributed.ray_sweep import RayParam
from repscope.errors import ConfigError
from repscope.results import Result


class CompareParams(BaseModel):
    """Params of `run: compare`; `measures` are names (or aliases) of registered similarity measures."""

    model_config = ConfigDict(extra="forbid")
    measures: list[str] = Field(default_factory=lambda: ["linear_cka"])
    layers: str | list[str] | None = None
    layers_b: str | list[str] | None = None
    max_rows: int | None = Field(5000, ge=3)
    seed: int = 0
    device: str = "auto"
    max_memory: MaxMemory = None
    ray: RayParam = None
    pair_by: str | None = None  # opt-ins for two stores of different samples (see repscope.store.pairing)
    unpaired: bool = False

    @field_validator("measures", mode="before")
    @classmethod
    def _registered(cls, value: str | list[str]) -> list[str]:
        """Look each name up in the measure registry now (so a measure registered at run time is accepted)."""
        from repscope.similarity.registry import measures

        return [m.name for m in measures(value)]


def run(stores: list, measures: list[str], layers: Any = None, layers_b: Any = None, max_rows: int | None = 5000,
        seed: int = 0, device: str = "auto", max_memory: int | str | None = None, ray: str | None = None,
        pair_by: str | None = None, unpaired: bool = False) -> Result:
    """One store: its layers against each other. Two stores: A's layers against B's (their rows must pair, or
    `pair_by`/`unpaired` opt in, see `repscope.store.pairing.pair_stores`). With `ray`, one Ray task per
    (measure, layer pair)."""
    from repscope.similarity.matrix import compare_stores
    from repscope.store.pairing import pair_stores

    if len(stores) not in (1, 2):
        raise ConfigError(f"compare takes one or two stores, got {len(stores)}")
    stores = pair_stores(stores, pair_by=pair_by, unpaired=unpaired)
    b = stores[1] if len(stores) == 2 else None
    if ray:
        from repscope.distributed.ray_sweep import ray_compare_stores

        return ray_compare_stores(stores[0], b, measures, layers, layers_b, max_rows=max_rows, seed=seed,
                                  device=device, address=ray, max_memory=max_memory)
    return compare_stores(stores[0], b, measures, layers, layers_b, max_rows=max_rows, seed=seed, device=device,
                          max_memory=max_memory)
