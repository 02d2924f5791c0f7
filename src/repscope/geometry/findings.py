"""The geometry plugin's findings hook: intrinsic dimension and anisotropy across depth per store, and the warnings
for rogue dimensions and for a binned information plane saturated at log₂ n.

Read from tidy result rows alone (`ResultsDB.frame()`).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

from repscope.report.findings import Finding, analysis_rows, fmt_num
from repscope.report.sections import layer_order

ROGUE_SHARE = 0.5  # warn when one dimension holds at least this share of the expected cosine
SATURATION_BITS = 0.05  # I(X;T) within this many bits of log2 n counts as saturated
GROUP = "Geometry across depth"


def saturated_infoplane(frame: pd.DataFrame, tol: float = SATURATION_BITS) -> dict[str, list[str]]:
    """Per store: the layers whose binned I(X;T) is within `tol` bits of log₂ n (every sample its own bin)."""
    df = analysis_rows(frame, "geometry")
    df = df[df["metric"] == "I_XT"] if len(df) else df
    out: dict[str, list[str]] = {}
    for r in df.itertuples():
        n = r.params.get("n") if isinstance(r.params, dict) else None
        if isinstance(n, (int, float)) and n > 1 and r.value >= math.log2(n) - tol:
            out.setdefault(str(r.store), []).append(str(r.layer))
    return out


def _trend(g: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    d = g[g["metric"] == metric]
    if d["layer"].nunique() < 2:
        return None
    order = layer_order(d)
    v = d.groupby("layer")["value"].mean().reindex(order)
    return {"first": (order[0], float(v.iloc[0])), "last": (order[-1], float(v.iloc[-1])),
            "max": (str(v.idxmax()), float(v.max())), "min": (str(v.idxmin()), float(v.min()))}


def geometry_findings(frame: pd.DataFrame) -> list[Finding]:
    """Intrinsic dimension (TwoNN) and anisotropy from the first to the last layer per store (with the peak when it
    is inside); rogue-dimension (top-1 share of the expected cosine ≥ `ROGUE_SHARE`) and saturated-MI warnings."""
    df = analysis_rows(frame, "geometry")
    out: list[Finding] = []
    if not len(df):
        return out
    for store, g in df.groupby("store", sort=True):
        parts = []
        data: dict[str, Any] = {}
        for metric, label in (("twonn_id", "intrinsic dimension (TwoNN)"), ("anisotropy", "anisotropy")):
            t = _trend(g, metric)
            if t is None:
                continue
            data[metric] = t
            s = f"{label} {fmt_num(t['first'][1])} at {t['first'][0]} → {fmt_num(t['last'][1])} at {t['last'][0]}"
            if t["max"][0] not in (t["first"][0], t["last"][0]):
                s += f" (peak {fmt_num(t['max'][1])} at {t['max'][0]})"
            parts.append(s)
        if parts:
            out.append(Finding("geometry", f"{store}: " + "; ".join(parts), store=str(store), data=data,
                               group=GROUP))
        rogue = g[(g["metric"] == "rogue_top1_share") & (g["value"] >= ROGUE_SHARE)]
        if len(rogue):
            layers = [str(x) for x in layer_order(rogue)]
            top = float(rogue["value"].max())
            out.append(Finding("rogue", f"{store}: one rogue dimension holds ≥ {ROGUE_SHARE:.0%} of the expected "
                                        f"cosine at {len(layers)} layer(s) (up to {top:.0%}: {', '.join(layers[:4])}); "
                                        "cosine similarities there mostly measure that dimension",
                               store=str(store), severity="warning", data={"layers": layers, "max_share": top}))
    for store, layers in sorted(saturated_infoplane(frame).items()):
        out.append(Finding("saturated", f"{store}: binned I(X;T) saturates at log₂ n in {len(layers)} layer(s) "
                                        f"({', '.join(layers[:4])}{'…' if len(layers) > 4 else ''}); the information "
                                        "plane there reflects the binning, not the network",
                           store=store, severity="warning", data={"layers": layers}))
    return out


def findings(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> list[Finding]:
    """The geometry plugin's findings hook (`AnalysisPlugin.findings`)."""
    return geometry_findings(frame)
