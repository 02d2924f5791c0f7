"""Store provenance for the report: recorded as an artifact (analysis "stores", name = store name), drawn as cards.

The results DB holds no store metadata of its own, so whoever records results from a store (the demo, the study
runner, CLI commands) calls `record_store_provenance(db, store)` once; the report's "Stores" section shows one card
per store: model and weight hash, dataset and content hash, pooling, dtype, rows, repscope version and the
`repscope extract …` command that rebuilds it.
"""

from __future__ import annotations

import shlex
from typing import Any

from repscope.report.sections import Section

ANALYSIS = "stores"


def extract_command(store: Any) -> str | None:
    """The `repscope extract …` command that rebuilds `store`: built from its model/dataset specs where it has them,
    else the command line recorded when it was written (e.g. `repscope demo …`)."""
    prov = dict(getattr(store, "provenance", {}) or {})
    model, data = prov.get("model_spec"), prov.get("dataset_spec")
    if model and data:
        parts = ["repscope", "extract", str(model), str(data), "--out", str(getattr(store, "root", store.name))]
        layers = prov.get("layers_requested")
        if layers:
            parts += ["--layers", ",".join(map(str, layers))]
        for flag, key in (("--pooling", "pooling"), ("--dtype", "dtype"), ("--seed", "seed")):
            if prov.get(key) is not None:
                parts += [flag, str(prov[key])]
        return " ".join(shlex.quote(p) for p in parts)
    cmd = (getattr(store, "manifest", {}) or {}).get("resume_command")
    return str(cmd).strip("`") if cmd else None


def store_provenance(store: Any) -> dict[str, Any]:
    """A JSON-able summary of a `RepStore`'s provenance (everything a provenance card shows)."""
    prov = dict(getattr(store, "provenance", {}) or {})
    return {
        "store": store.name, "path": str(getattr(store, "root", "")),
        "model": prov.get("model"), "model_spec": prov.get("model_spec"), "model_hash": prov.get("model_hash"),
        "dataset": prov.get("dataset"), "dataset_spec": prov.get("dataset_spec"),
        "dataset_hash": prov.get("dataset_hash"), "pooling": prov.get("pooling"),
        "pooling_per_layer": prov.get("pooling_per_layer"), "dtype": prov.get("dtype"), "seed": prov.get("seed"),
        "n_rows": int(store.n_rows), "n_layers": len(store.layers), "repscope_version": prov.get("repscope_version"),
        "created": prov.get("created"), "extract_command": extract_command(store),
    }


def record_store_provenance(db: Any, store: Any) -> None:
    """Record `store`'s provenance into results DB `db` (artifact analysis 'stores', name = store name)."""
    db.record_artifact(ANALYSIS, store.name, store_provenance(store))


def record_stores(db: Any, stores: Any) -> None:
    """`record_store_provenance` for each store of an iterable (or the values of a dict)."""
    for store in stores.values() if isinstance(stores, dict) else stores:
        record_store_provenance(db, store)


def _short(h: Any) -> str:
    s = "" if h is None else str(h)
    return s if len(s) <= 16 else s[:16] + "…"


def provenance_cards(artifacts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One card (title, lines, full payload) per recorded store, sorted by store name; the newest record wins."""
    latest: dict[str, dict[str, Any]] = {}
    for a in artifacts:
        if a.get("analysis") == ANALYSIS and isinstance(a.get("payload"), dict):
            latest[str(a["name"])] = a["payload"]
    cards = []
    for name in sorted(latest):
        p = latest[name]
        pooling = p.get("pooling")
        per_layer = p.get("pooling_per_layer") or {}
        if per_layer and len(set(per_layer.values())) == 1:
            pooling = f"{pooling} → {next(iter(per_layer.values()))}"
        lines = [f"model: {p.get('model_spec') or p.get('model')} (weights {_short(p.get('model_hash'))})",
                 f"dataset: {p.get('dataset_spec') or p.get('dataset')} (content {_short(p.get('dataset_hash'))})",
                 f"pooling: {pooling} · dtype: {p.get('dtype')} · seed: {p.get('seed')}",
                 f"rows: {p.get('n_rows')} · layers: {p.get('n_layers')}",
                 f"repscope {p.get('repscope_version')} · created {p.get('created')}"]
        cards.append({"title": name, "lines": lines, "command": p.get("extract_command") or "",
                      "store": name, "provenance": True})
    return cards


def provenance_section(frame: Any, artifacts: list[dict[str, Any]]) -> tuple[list[Section], set[str]]:
    """The 'Stores' section: a provenance card per recorded store (a `report_sections`-style function)."""
    cards = provenance_cards(artifacts)
    if not cards:
        return [], set()
    sec = Section(title="Stores: provenance", analysis=ANALYSIS, cards=cards,
                  text="Where every number came from: the model and its weight hash, the dataset and its content "
                       "hash, pooling, storage dtype and row count of each store, and the command that rebuilds it.")
    return [sec], {ANALYSIS}


def with_provenance(result: Any, *stores: Any) -> Any:
    """`result` plus one provenance artifact per store (None skipped), so one `record_result` records both."""
    for store in stores:
        if store is not None:
            result.add_artifact(ANALYSIS, store.name, store_provenance(store))
    return result
