"""Study step `run: geometry`: geometry profile of every layer of each store (params checked on load)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from repscope.budget import MaxMemory
from repscope.distributed.executor import Unit, driver_budget
from repscope.params import TARGET_KEYS
from repscope.results import Result


class GeometryParams(BaseModel):
    """Params of `run: geometry`; `measures` are registered geometry measure names (default: the default set);
    `target` is the sample column of the label-based measures ('auto': `label` if present; null: skip them; the
    old key `label` is accepted)."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)
    measures: list[str] | None = None
    layers: str | list[str] | None = None
    target: str | None = Field("auto", validation_alias=TARGET_KEYS)
    max_rows: int | None = Field(3000, ge=3)
    seed: int = 0
    device: str = "auto"
    params: dict[str, dict[str, Any]] | None = None
    max_memory: MaxMemory = None

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


def profile_layer(store: Any, layer: str, kw: dict[str, Any]) -> tuple[Result, list[str]]:
    """One unit of a geometry profile: `geometry_profile` restricted to `layer`, with its progress notes."""
    from repscope.geometry.profile import geometry_profile

    notes: list[str] = []
    res = geometry_profile(store, layers=[layer], progress=notes.append, **kw)
    return res, notes


def plan_profile(store: Any, measures: list[str] | None = None, layers: Any = None, **kw: Any) -> list[Unit]:
    """The units of `geometry_profile(store, measures, layers, **kw)`: one per layer (token-level ones note their
    skip), each with the driver's memory budget."""
    kw = {**kw, "measures": measures, "max_memory": driver_budget(kw.get("max_memory"))}
    return [Unit(profile_layer, (store, layer, kw), label=f"{store.name}:{layer}")
            for layer in store.resolve_layers(layers)]


def combine_profile(store: Any, parts: Sequence[tuple[Result, list[str]]],
                    progress: Callable[[str], None] | None = None) -> Result:
    """The units' outputs as one `geometry_profile` Result: rows in layer order, the per-layer spectra merged into
    the one 'spectrum:<store>' artifact (layers, their order, rows_used) a whole-store run writes; each unit's
    progress notes are passed to `progress` in plan order."""
    from repscope.geometry.profile import ANALYSIS, SPECTRUM_ARTIFACT

    name = f"{SPECTRUM_ARTIFACT}:{store.name}"
    out = Result()
    spectrum: dict[str, Any] | None = None
    rows_used: dict[str, int] = {}
    for res, notes in parts:
        for note in notes:
            if progress:
                progress(note)
        out.rows.extend(res.rows)
        for art in res.artifacts:
            if art.name != name:
                out.artifacts.append(art)
                continue
            if spectrum is None:
                spectrum = dict(art.payload, layers={})
            spectrum["layers"].update(art.payload["layers"])
            rows_used.update(art.payload.get("rows_used", {}))
    if spectrum is not None:
        spectrum["order"] = [la for la in store.layers if la in spectrum["layers"]]
        if rows_used:
            spectrum["rows_used"] = rows_used
        out.add_artifact(ANALYSIS, name, spectrum)
    return out


def _profile_kw(p: GeometryParams) -> dict[str, Any]:
    return {"target": p.target, "max_rows": p.max_rows, "seed": p.seed, "device": p.device, "params": p.params,
            "max_memory": p.max_memory}


def plan(stores: list, p: GeometryParams) -> list[Unit]:
    """`run: geometry` units: one per (store, layer)."""
    return [unit for store in stores for unit in plan_profile(store, p.measures, p.layers, **_profile_kw(p))]


def combine(stores: list, p: GeometryParams, parts: list) -> Result:
    """Per store, its units' rows and one merged spectrum artifact (`combine_profile`)."""
    result = Result()
    start = 0
    for store in stores:
        n = len(store.resolve_layers(p.layers))  # the store's units, as `plan` made them
        result.extend(combine_profile(store, parts[start:start + n]))
        start += n
    return result
