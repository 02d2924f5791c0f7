"""Report sections: the generic per-analysis renderer plus a plugin hook for analysis packages.

An analysis package may define `report_sections(frame, artifacts) -> (sections, handled_analyses)` in its
`report.py`; everything it does not claim is drawn by `generic_sections`.
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


def natural_key(s: Any) -> list[Any]:
    """Sort key putting 'layer.10' after 'layer.2'; embeddings-like names first."""
    s = "" if s is None else str(s)
    parts = [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", s)]
    return [0 if s.startswith("embed") else 1, *[(0, p) if isinstance(p, int) else (1, p) for p in parts]]


_RANK: dict[str, int] = {}


def set_layer_rank(frame: pd.DataFrame) -> None:
    """Remember each layer's first appearance in the results (analyses record layers in model order)."""
    _RANK.clear()
    for col in ("layer", "layer_b"):
        if col in frame:
            for name in frame[col].dropna():
                _RANK.setdefault(str(name), len(_RANK))


def layer_order(names: Any) -> list[str]:
    """Unique layer names in model order (first appearance in the results), natural order as the tie-break."""
    uniq = {str(n) for n in names if n is not None and n == n}
    return sorted(uniq, key=lambda n: (_RANK.get(n, len(_RANK)), natural_key(n)))


def series_label(row: pd.Series) -> str:
    """Legend label for a series: store, plus params that vary (probe kind, target)."""
    p = row["params"] if isinstance(row["params"], dict) else {}
    extra = [f"{k}={p[k]}" for k in ("target", "probe", "measure") if k in p]
    return " ".join([str(row["store"] or row["model"] or "")] + extra)


def line_figure(df: pd.DataFrame, metric: str, title: str | None = None) -> go.Figure:
    """Per-layer line chart of one metric, one line per series (store + distinguishing params)."""
    fig = go.Figure()
    df = df[df["metric"] == metric].copy()
    df["series"] = df.apply(series_label, axis=1)
    for name, g in df.groupby("series", sort=True):
        g = g.groupby("layer", as_index=False)["value"].mean()
        order = layer_order(g["layer"])
        g = g.set_index("layer").loc[order]
        fig.add_trace(go.Scatter(x=order, y=g["value"].tolist(), mode="lines+markers", name=str(name)))
    fig.update_layout(title=title or metric, xaxis_title="layer", yaxis_title=metric, height=380,
                      margin=dict(l=50, r=20, t=40, b=80))
    return fig


def heatmap_figure(df: pd.DataFrame, metric: str, title: str | None = None) -> go.Figure:
    """Layer × layer heatmap of one metric (rows: layer, columns: layer_b)."""
    d = df[df["metric"] == metric]
    piv = d.pivot_table(index="layer", columns="layer_b", values="value", aggfunc="mean")
    piv = piv.loc[layer_order(piv.index), layer_order(piv.columns)]
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
            if single[single["metric"] == metric]["layer"].nunique() > 1:
                sec.figures.append(line_figure(single, metric, f"{analysis}: {metric} per layer"))
        pair = df[df["layer"].notna() & df["layer_b"].notna()]
        for (store, metric), g in pair.groupby(["store", "metric"], sort=True, dropna=False):
            sec.figures.append(heatmap_figure(g, metric, f"{analysis}: {metric} ({store})"))
        table = df[["store", "layer", "layer_b", "metric", "value"]].copy()
        table["params"] = [", ".join(f"{k}={v}" for k, v in sorted(p.items())) for p in df["params"]]
        rank = {n: i for i, n in enumerate(layer_order(pd.concat([df["layer"], df["layer_b"]])))}
        table = table.assign(_s=table["store"].astype(str), _l=table["layer"].map(rank), _b=table["layer_b"].map(rank))
        table = table.sort_values(["_s", "_l", "_b", "metric"], kind="stable").drop(columns=["_s", "_l", "_b"])
        sec.tables.append(table.head(400))
        out.append(sec)
    return out
