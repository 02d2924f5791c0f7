"""The probe plugin's findings hook: per store and target, the best layer with its CI, concept depth and jumps.

Read from tidy result rows alone (`ResultsDB.frame()`); the report lists them under "Where each target is
decodable", and a CI warning names the targets whose best layer is within noise of other layers.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from repscope.report.findings import Finding, analysis_rows, ci_text, fmt_num, intervals_overlap, param_column
from repscope.report.sections import layer_order

PRIMARY = ("accuracy", "r2", "spearman")  # probe score metrics, in order of preference
JUMP = 0.1  # a probe score "jumps" at a layer when it rises by at least this much over the previous layer
GROUP = "Where each target is decodable"


def _probe_series(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (probe, layer): mean score and CI bounds (NaN when no CI rows), in model order of layers."""
    main = df[df["metric"] == metric].groupby(["probe", "layer"])["value"].mean().rename("score")
    out = main.to_frame()
    for side in ("low", "high"):
        ci = df[df["metric"] == f"{metric}_ci_{side}"].groupby(["probe", "layer"])["value"].mean()
        out[side] = ci.reindex(out.index)
    return out.reset_index()


def probe_findings(frame: pd.DataFrame) -> list[Finding]:
    """Per store and target: the best layer and score with its CI, concept depth, and the layers where it jumps.

    A jump is a rise of at least `JUMP` over the previous layer whose CI does not overlap the previous layer's;
    "ties" are the other layers whose CI overlaps the best layer's."""
    df = analysis_rows(frame, "probe")
    out: list[Finding] = []
    if not len(df):
        return out
    df = df.assign(target=param_column(df, "target"), probe=param_column(df, "probe").fillna("probe"))
    depth = analysis_rows(frame, "concept_depth")
    depth = depth.assign(target=param_column(depth, "target"), probe=param_column(depth, "probe")) \
        if len(depth) else depth
    for (store, target), g in df.groupby(["store", "target"], sort=True, dropna=False):
        target = None if pd.isna(target) else target  # rows without a 'target' param group under NaN
        metric = next((m for m in PRIMARY if m in set(g["metric"])), None)
        if metric is None:
            continue
        order = layer_order(g)
        rank = {n: i for i, n in enumerate(order)}
        s = _probe_series(g, metric)
        s = s.assign(_r=s["layer"].map(rank)).sort_values(["_r", "probe"], kind="stable")
        best = s.loc[s["score"].idxmax()]
        lo, hi = (None if pd.isna(best[k]) else float(best[k]) for k in ("low", "high"))
        probe = str(best["probe"])
        same = s[s["probe"] == best["probe"]]
        ties = [str(r.layer) for r in same.itertuples() if r.layer != best["layer"]
                and intervals_overlap((lo, hi), (None if pd.isna(r.low) else r.low,
                                                 None if pd.isna(r.high) else r.high))]
        jumps = []
        prev = None
        for r in same.itertuples():
            if prev is not None:
                delta = float(r.score - prev.score)
                separated = pd.isna(r.low) or pd.isna(prev.high) or r.low > prev.high
                if delta >= JUMP - 1e-9 and separated:
                    jumps.append({"layer": str(r.layer), "from": str(prev.layer), "delta": delta})
            prev = r
        data: dict[str, Any] = {"metric": metric, "probe": probe, "best_layer": str(best["layer"]),
                                "score": float(best["score"]), "ci_low": lo, "ci_high": hi, "ties": ties,
                                "jumps": jumps, "n_layers": len(order)}
        text = (f"{target or 'target'} in {store}: best layer {best['layer']} ({probe} {metric} "
                f"{fmt_num(best['score'])}{ci_text(lo, hi)})")
        d = depth[(depth["store"] == store) & (depth["target"] == target) & (depth["probe"] == best["probe"])] \
            if len(depth) else depth
        rel = d[d["metric"] == "relative_depth"]
        dl = d[d["metric"] == "depth"]
        if len(dl):
            data["depth_layer"] = str(dl.iloc[-1]["layer"])
            data["relative_depth"] = float(rel.iloc[-1]["value"]) if len(rel) else None
            text += f"; concept depth {data['depth_layer']}"
            if data["relative_depth"] is not None:
                text += f" (relative {fmt_num(data['relative_depth'])})"
        if jumps:
            text += "; jumps at " + ", ".join(f"{j['layer']} (+{fmt_num(j['delta'])})" for j in jumps)
        if ties:
            text += f"; {len(ties)} other layer(s) within its CI"
        out.append(Finding("probe", text, store=str(store), target=None if target is None else str(target),
                           layer=str(best["layer"]), data=data, group=GROUP))
    tied = [f for f in out if f.data["ties"]]
    if tied:
        names = ", ".join(f"{f.target} ({f.store})" for f in tied[:6]) + ("…" if len(tied) > 6 else "")
        out.append(Finding(
            "ci", f"{len(tied)} of {len(out)} targets: the best layer's confidence interval overlaps other layers' "
                  f"— the best-layer choice is within noise for {names}", severity="warning",
            data={"tied": [(f.store, f.target, f.data["ties"]) for f in tied]}))
    return out


def findings(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> list[Finding]:
    """The probe plugin's findings hook (`AnalysisPlugin.findings`)."""
    return probe_findings(frame)
