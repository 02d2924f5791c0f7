"""Study step `run: compat`: backward compatibility of the second store with the first (params checked on load)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from repscope.results import Result


class CompatParams(BaseModel):
    """Params of `run: compat` (passed to `compat_stores`); the step's stores are [old, new]."""

    model_config = ConfigDict(extra="forbid")
    target: str = "label"
    layer_old: str | None = None
    layer_new: str | None = None
    transforms: list[str] | None = None
    fit_fraction: float = Field(0.5, gt=0, lt=1)
    seed: int = 0
    max_rows: int | None = Field(10000, ge=10)
    metric: Literal["cosine", "euclidean"] = "cosine"
    alpha: float = Field(1e-2, ge=0)
    bct_lambda: float = Field(1.0, ge=0)
    bct_epochs: int = Field(300, ge=1)
    bct_lr: float = Field(1e-2, gt=0)
    device: str = "auto"
    pair_by: str | None = None  # opt-ins for two stores of different samples (see repscope.store.pairing)
    unpaired: bool = False

    @field_validator("transforms", mode="before")
    @classmethod
    def _registered(cls, value: Any) -> list[str] | None:
        """Look each transform up in the registry now (aliases resolved, comma-separated text accepted)."""
        from repscope.compat.transforms import resolve_transforms

        return None if value is None else resolve_transforms(value)


def run(stores: list, target: str = "label", layer_old: str | None = None, layer_new: str | None = None,
        transforms: list[str] | None = None, fit_fraction: float = 0.5, seed: int = 0, max_rows: int | None = 10000,
        metric: str = "cosine", alpha: float = 1e-2, bct_lambda: float = 1.0, bct_epochs: int = 300,
        bct_lr: float = 1e-2, device: str = "auto", pair_by: str | None = None, unpaired: bool = False) -> Result:
    """Compatibility of stores[1] (new) with stores[0] (old); their rows must pair, or `pair_by`/`unpaired` opt in
    (see `repscope.store.pairing.pair_stores`)."""
    from repscope.compat.store import compat_stores
    from repscope.errors import ConfigError
    from repscope.store.pairing import pair_stores

    if len(stores) != 2:
        raise ConfigError(f"run: compat takes exactly two stores [old, new], got {len(stores)}")
    stores = pair_stores(stores, pair_by=pair_by, unpaired=unpaired)
    return compat_stores(stores[0], stores[1], target=target, layer_old=layer_old, layer_new=layer_new,
                         transforms=transforms, fit_fraction=fit_fraction, seed=seed, max_rows=max_rows, metric=metric,
                         alpha=alpha, bct_lambda=bct_lambda, bct_epochs=bct_epochs, bct_lr=bct_lr,
                         device=device)
