"""Study step `run: compare`: layer × layer similarity within one store or across two (params checked on load)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from repscope.budget import MaxMemory
from repscope.errors import ConfigError


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
    pair_by: str | None = None  # opt-ins for two stores of different samples (see repscope.store.pairing)
    unpaired: bool = False
    streaming: bool = False  # exact linear CKA over store chunks, every row (linear_cka and debiased_cka only)

    @field_validator("measures", mode="before")
    @classmethod
    def _registered(cls, value: str | list[str]) -> list[str]:
        """Look each name up in the measure registry now (so a measure registered at run time is accepted)."""
        from repscope.similarity.registry import measures

        return [m.name for m in measures(value)]


def plan(stores: list, p: CompareParams) -> Any:
    """The `ComparePlan` of one step: one store's layers against each other, or A's layers against B's (their rows
    must pair, or `pair_by`/`unpaired` opt in, see `repscope.store.pairing.pair_stores`)."""
    from repscope.similarity.plan import plan_compare
    from repscope.store.pairing import pair_stores

    if len(stores) not in (1, 2):
        raise ConfigError(f"compare takes one or two stores, got {len(stores)}")
    stores = pair_stores(stores, pair_by=p.pair_by, unpaired=p.unpaired)
    b = stores[1] if len(stores) == 2 else None
    return plan_compare(stores[0], b, p.measures, p.layers, p.layers_b, max_rows=p.max_rows, seed=p.seed,
                        device=p.device, max_memory=p.max_memory, streaming=p.streaming)
