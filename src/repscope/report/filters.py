"""What the report's offline filters need: the stores, targets and layer positions of a DB, and per-item tags.

Traces get `meta = {"stores": [...], "targets": [...]}` (set by a plugin, or inferred here from the trace name and
the figure title with whole-name matching, so 'digits_mlp_s1' never matches 'digits_mlp_s10'); table rows, cards and
findings get the same tags as data attributes. The page's script hides what the selected store/target excludes and
drops layers outside the selected layer-index range.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd


def missing(v: Any) -> bool:
    """None, NaN or pandas NA (a scalar that stands for no value)."""
    if v is None:
        return True
    if isinstance(v, (str, list, dict, tuple)):
        return False
    try:
        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


def split_store(store: Any) -> list[str]:
    """The stores a row's `store` names: 'A vs B' → [A, B]; a plain name → [name]."""
    if missing(store):
        return []
    s = str(store)
    return [p for p in s.split(" vs ") if p] if " vs " in s else [s]


@dataclass
class FilterOptions:
    """Stores, targets and each store's layer → index map (`"*"`: smallest index over all stores)."""

    stores: list[str] = field(default_factory=list)
    targets: list[str] = field(default_factory=list)
    layer_pos: dict[str, dict[str, int]] = field(default_factory=dict)
    _patterns: dict[str, re.Pattern[str]] = field(default_factory=dict, repr=False)

    def pattern(self, name: str) -> re.Pattern[str]:
        """Whole-name regex for `name` (not preceded or followed by a word character, '.' or '-')."""
        if name not in self._patterns:
            self._patterns[name] = re.compile(r"(?<![\w.-])" + re.escape(name) + r"(?![\w.-])")
        return self._patterns[name]

    def find(self, text: str, names: list[str]) -> list[str]:
        """The names that occur in `text` as whole names, sorted."""
        return sorted(n for n in names if self.pattern(n).search(text))

    def max_index(self) -> int:
        """The largest layer index over all stores (0 when none is known)."""
        return max((i for m in self.layer_pos.values() for i in m.values()), default=0)

    def public(self) -> dict[str, Any]:
        """What the page's script gets (JSON)."""
        return {"stores": self.stores, "targets": self.targets, "layerPos": self.layer_pos,
                "maxIndex": self.max_index()}


def filter_options(frame: pd.DataFrame, artifacts: list[dict[str, Any]] | None = None) -> FilterOptions:
    """Collect stores (from rows and provenance artifacts), targets (params 'target') and layer positions."""
    opts = FilterOptions()
    stores: set[str] = set()
    pos: dict[str, dict[str, int]] = {}

    def put(store: str, layer: Any, idx: Any) -> None:
        if missing(layer) or missing(idx):
            return
        m = pos.setdefault(store, {})
        m[str(layer)] = min(m.get(str(layer), int(idx)), int(idx))

    if frame is not None and len(frame):
        for s in frame["store"].dropna().unique():
            stores.update(split_store(s))
        targets = {str(p["target"]) for p in frame["params"] if isinstance(p, dict) and p.get("target") is not None}
        opts.targets = sorted(targets)
        cols = [c for c in ("store", "layer", "layer_b", "layer_index", "layer_b_index") if c in frame]
        if {"layer_index", "layer_b_index"} <= set(cols):
            for s, la, lb, ia, ib in frame[cols].drop_duplicates().itertuples(index=False):
                parts = split_store(s)
                if not parts:
                    continue
                put(parts[0], la, ia)
                put(parts[-1], lb, ib)
                put("*", la, ia)
                put("*", lb, ib)
    for a in artifacts or []:
        if a.get("analysis") == "stores":
            stores.add(str(a.get("name")))
    opts.stores = sorted(stores)
    opts.layer_pos = pos
    return opts


def _text_of(v: Any) -> str:
    if v is None:
        return ""
    if isinstance(v, dict):
        return str(v.get("text") or "")
    return str(getattr(v, "text", None) or v)


def annotate_figure(fig: Any, opts: FilterOptions) -> None:
    """Give every trace `meta = {"stores", "targets"}` unless a plugin already set `meta["stores"]`."""
    title = _text_of(fig.layout.title) if fig.layout.title is not None else ""
    for tr in fig.data:
        meta = tr.meta if isinstance(tr.meta, dict) else {}
        if "stores" in meta and "targets" in meta:
            continue
        name = " ".join(str(v) for v in (tr.name, tr.legendgroup) if v)
        stores = meta.get("stores") or opts.find(name, opts.stores) or opts.find(title, opts.stores)
        tgt = re.findall(r"target=(\S+)", name)
        targets = meta.get("targets") or [t for t in tgt if t in opts.targets] or opts.find(name, opts.targets) \
            or opts.find(title, opts.targets)
        tr.meta = {**meta, "stores": list(stores), "targets": list(targets)}


def row_tags(row: dict[str, Any], opts: FilterOptions) -> dict[str, Any]:
    """Filter tags of a table row, card or finding: its stores, target and layer (with that layer's index)."""
    stores = split_store(row.get("store"))
    if not missing(row.get("store_b")) and row.get("store_b") and row.get("store_b") not in stores:
        stores.append(str(row["store_b"]))
    target = row.get("target")
    layer = row.get("layer")
    idx = None
    if not missing(layer) and str(layer):
        for s in [*stores, "*"]:
            if str(layer) in opts.layer_pos.get(s, {}):
                idx = opts.layer_pos[s][str(layer)]
                break
    return {"stores": stores, "target": None if missing(target) else str(target),
            "layer_index": idx}
