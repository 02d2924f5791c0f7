"""Report sections: the generic per-analysis renderer and the helpers plugins draw with.

Each analysis plugin (`repscope.analyses.PLUGINS`) declares `report_sections(frame, artifacts) -> (sections,
handled_analyses)`; everything no plugin claims is drawn by `generic_sections`. Layer order comes from the rows'
`layer_index`/`layer_b_index` (natural order for rows recorded before layer order was stored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import plotly.graph_objects as go


@dataclass
class Section:
    """One report section. All strings are escaped by the template; figures are Plotly figures."""

    title: str
    analysis: str
    text: str = ""
    figures: list[go.Figure] = field(default_factory=list)
    tables: list[pd.DataFrame] = field(default_factory=list)
    cards: list[dict[str, Any]] = field(default_factory=list)  # {"title": str, "lines": [str], "image": [[...]]?}
    groups: list[dict[str, Any]] = field(default_factory=list)  # findings: {"title", "items": [Finding dicts]}
    notes: list[str] = field(default_factory=list)  # caveats shown highlighted (clipped axes, saturated estimators)


def natural_key(s: Any) -> list[Any]:
    """Sort key putting 'layer.10' after 'layer.2'; embeddings-like names first."""
    s = "" if s is None else str(s)
    parts = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]
    return [0 if s.startswith("embed") else 1, *[(0, p) if isinstance(p, int) else (1, p) for p in parts]]


def _present(v: Any) -> bool:
    return v is not None and v is not pd.NA and v == v


def layer_order(rows: Any, col: str = "layer") -> list[str]:
    """Unique layer names of `rows[col]` in model order.

    `rows` is a results frame: names sort by their recorded position (`layer_index` for `layer`, `layer_b_index`
    for `layer_b`; the smallest when stores disagree), and names without one (old rows) follow in natural order.
    A plain list of names sorts in natural order."""
    pos: dict[str, float] = {}
    if isinstance(rows, pd.DataFrame):
        idx = "layer_index" if col == "layer" else f"{col}_index"
        names = rows[col].tolist()
        if idx in rows:
            for n, i in zip(rows[col], rows[idx], strict=True):
                if _present(n) and _present(i):
                    pos[str(n)] = min(pos.get(str(n), float(i)), float(i))
    else:
        names = list(rows)
    uniq = {str(n) for n in names if _present(n)}
    return sorted(uniq, key=lambda n: (0, pos[n], natural_key(n)) if n in pos else (1, 0.0, natural_key(n)))


def series_label(row: pd.Series) -> str:
    """Legend label for a series: store, plus params that vary (probe kind, target)."""
    p = row["params"] if isinstance(row["params"], dict) else {}
    extra = [f"{k}={p[k]}" for k in ("target", "probe", "measure") if k in p]
    return " ".join([str(row["store"] or row["model"] or "")] + extra)


def line_figure(df: pd.DataFrame, metric: str, title: str | None = None) -> go.Figure:
    """Per-layer line chart of one metric, one line per series (store + distinguishing params); where the rows carry
    `<metric>_ci_low`/`<metric>_ci_high`, the interval is drawn as error bars."""
    fig = go.Figure()
    ci = {side: df[df["metric"] == f"{metric}_ci_{side}"].copy() for side in ("low", "high")}
    df = df[df["metric"] == metric].copy()
    df["series"] = df.apply(series_label, axis=1)
    for d in ci.values():
        d["series"] = d.apply(series_label, axis=1) if len(d) else []
    for name, rows in df.groupby("series", sort=True):
        order = layer_order(rows)
        g = rows.groupby("layer")["value"].mean().reindex(order)
        lo = ci["low"][ci["low"]["series"] == name].groupby("layer")["value"].mean().reindex(order)
        hi = ci["high"][ci["high"]["series"] == name].groupby("layer")["value"].mean().reindex(order)
        err = None
        if len(order) and lo.notna().all() and hi.notna().all():
            err = dict(type="data", symmetric=False, array=(hi - g).clip(lower=0).tolist(),
                       arrayminus=(g - lo).clip(lower=0).tolist())
        fig.add_trace(go.Scatter(x=order, y=g.tolist(), mode="lines+markers", name=str(name), error_y=err))
    fig.update_layout(title=title or metric, xaxis_title="layer", yaxis_title=metric, height=380,
                      margin=dict(l=50, r=20, t=40, b=80))
    return fig


def heatmap_figure(df: pd.DataFrame, metric: str, title: str | None = None) -> go.Figure:
    """Layer × layer heatmap of one metric (rows: layer, columns: layer_b)."""
    d = df[df["metric"] == metric]
    piv = d.pivot_table(index="layer", columns="layer_b", values="value", aggfunc="mean")
    piv = piv.loc[layer_order(d), layer_order(d, "layer_b")]
    fig = go.Figure(go.Heatmap(z=piv.values.tolist(), x=list(piv.columns), y=list(piv.index), colorscale="Viridis"))
    fig.update_layout(title=title or metric, height=520, margin=dict(l=120, r=20, t=40, b=80),
                      xaxis_title="layer_b", yaxis=dict(title="layer", autorange="reversed"))
    return fig


def generic_sections(frame: pd.DataFrame) -> list[Section]:
    """One section per analysis: line charts for per-layer metrics, heatmaps for layer pairs, and a table."""
    out = []
    for analysis, df in frame.groupby("analysis", sort=True):
        sec = Section(title=str(analysis), analysis=str(analysis))
        single = df[df["layer"].notna() & df["layer_b"].isna()]
        for metric in sorted(single["metric"].unique()):
            if metric.endswith(("_ci_low", "_ci_high")):
                continue  # drawn as error bars of their metric
            if single[single["metric"] == metric]["layer"].nunique() > 1:
                sec.figures.append(line_figure(single, metric, f"{analysis}: {metric} per layer"))
        pair = df[df["layer"].notna() & df["layer_b"].notna()]
        for (store, metric), g in pair.groupby(["store", "metric"], sort=True, dropna=False):
            sec.figures.append(heatmap_figure(g, metric, f"{analysis}: {metric} ({store})"))
        table = df[["store", "layer", "layer_b", "metric", "value"]].copy()
        table["params"] = [", ".join(f"{k}={v}" for k, v in sorted(p.items())) for p in df["params"]]
        rank_a = {n: i for i, n in enumerate(layer_order(df))}
        rank_b = {n: i for i, n in enumerate(layer_order(df, "layer_b"))}
        table = table.assign(_s=table["store"].astype(str), _l=table["layer"].map(rank_a),
                             _b=table["layer_b"].map(rank_b))
        table = table.sort_values(["_s", "_l", "_b", "metric"], kind="stable").drop(columns=["_s", "_l", "_b"])
        sec.tables.append(table.head(400))
        out.append(sec)
    return out
