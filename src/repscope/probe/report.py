"""Report sections for probe results: per-layer lines with CI bands, few-shot curves, concept depth, STS, retrieval."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from repscope.report.sections import Section, layer_order, line_figure

HANDLED = {"probe", "probe_few_shot", "concept_depth", "probe_concat", "retrieval", "sts"}
_PALETTE = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f"]


def _with_params(df: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    df = df.copy()
    for k in keys:
        df[k] = [p.get(k) if isinstance(p, dict) else None for p in df["params"]]
    return df


def _rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    return f"rgba({int(h[0:2], 16)},{int(h[2:4], 16)},{int(h[4:6], 16)},{alpha})"


def _band_figure(df: pd.DataFrame, metric: str, x: str, series: list[str], title: str, xtitle: str,
                 x_order: list[Any] | None = None, log_x: bool = False) -> go.Figure:
    """Lines of `metric` against `x`, one per series, with a shaded band from `<metric>_ci_low` to `_ci_high`."""
    fig = go.Figure()
    base = df[df["metric"] == metric]
    lo = df[df["metric"] == f"{metric}_ci_low"]
    hi = df[df["metric"] == f"{metric}_ci_high"]
    for i, (name, g) in enumerate(base.groupby(series, sort=True)):
        name = " ".join(str(v) for v in (name if isinstance(name, tuple) else (name,)))
        key = {c: g[c].iloc[0] for c in series}

        def pick(frame: pd.DataFrame, key: dict[str, Any] = key) -> pd.Series:
            m = pd.Series(True, index=frame.index)
            for c, v in key.items():
                m &= frame[c] == v
            return frame[m].groupby(x)["value"].mean()

        mean = g.groupby(x)["value"].mean()
        xs = [v for v in x_order if v in mean.index] if x_order else sorted(mean.index)
        color = _PALETTE[i % len(_PALETTE)]
        low, high = pick(lo).reindex(xs), pick(hi).reindex(xs)
        if low.notna().all() and high.notna().all() and len(xs):
            fig.add_trace(go.Scatter(x=list(xs) + list(xs)[::-1], y=high.tolist() + low.tolist()[::-1],
                                     mode="lines", fill="toself", fillcolor=_rgba(color, 0.15), line=dict(width=0),
                                     hoverinfo="skip", showlegend=False, name=f"{name} CI"))
        fig.add_trace(go.Scatter(x=list(xs), y=mean.reindex(xs).tolist(), mode="lines+markers", name=name,
                                 line=dict(color=color)))
    fig.update_layout(title=title, xaxis_title=xtitle, yaxis_title=metric, height=400,
                      margin=dict(l=50, r=20, t=40, b=90))
    if log_x:
        fig.update_xaxes(type="log")
    return fig


def _layer_sections(frame: pd.DataFrame) -> list[Section]:
    df = _with_params(frame[frame["analysis"] == "probe"], ("probe", "target", "eval"))
    if df.empty:
        return []
    sec = Section(title="Probes: score per layer", analysis="probe",
                  text="Held-out score of each probe at each layer (shaded: confidence interval; Student-t over CV "
                       "folds, Wilson interval for a single test split).")
    for target, g in df.groupby("target", sort=True):
        metrics = [m for m in ("accuracy", "r2", "spearman") if m in set(g["metric"])]
        for metric in metrics:
            sec.figures.append(_band_figure(g, metric, "layer", ["store", "probe"],
                                            f"{target}: {metric} per layer", "layer", layer_order(g)))
    main = df[df["metric"].isin(["accuracy", "r2", "spearman"])]
    tab = main.pivot_table(index=["store", "target", "layer"], columns=["probe", "metric"], values="value",
                           aggfunc="mean")
    tab.columns = [f"{p} {m}" for p, m in tab.columns]
    rank = {name: i for i, name in enumerate(layer_order(df))}
    tab = tab.reset_index().sort_values(["store", "target", "layer"], key=lambda c: c.map(rank) if c.name == "layer"
                                        else c, kind="stable")
    sec.tables.append(tab.head(400))
    return [sec]


def _few_shot_sections(frame: pd.DataFrame) -> list[Section]:
    df = _with_params(frame[frame["analysis"] == "probe_few_shot"], ("probe", "target", "shots", "seeds"))
    if df.empty:
        return []
    sec = Section(title="Probes: few-shot sample efficiency", analysis="probe_few_shot",
                  text="Test accuracy when training on n labelled examples per class, mean over random draws "
                       "(shaded: t-interval over seeds). Generative probes (naive Bayes) tend to lead at small n.")
    for (store, target, layer), g in df.groupby(["store", "target", "layer"], sort=True):
        sec.figures.append(_band_figure(g, "accuracy", "shots", ["probe"], f"{store} · {target} @ {layer}",
                                        "examples per class", log_x=True))
    return [sec]


def _depth_figure(df: pd.DataFrame, table: pd.DataFrame, probe_rows: pd.DataFrame) -> go.Figure:
    """Dot plot: for each target · store, where the concept is first decodable (filled) and where the probe peaks
    (open), as relative depth 0…1; one trace per store and probe so the page's store filter applies."""
    best_rel: dict[tuple[Any, Any, Any], float] = {}
    for (store, target, probe), g in df.groupby(["store", "target", "probe"], sort=True):
        p = g["params"].iloc[-1] if isinstance(g["params"].iloc[-1], dict) else {}
        order = layer_order(probe_rows[probe_rows["store"] == store]) if len(probe_rows) else []
        if p.get("best_layer") in order and len(order) > 1:
            best_rel[(store, target, probe)] = order.index(p["best_layer"]) / (len(order) - 1)
    fig = go.Figure()
    probes = sorted(table["probe"].dropna().unique())
    for (store, probe), g in table.groupby(["store", "probe"], sort=True):
        color = _PALETTE[probes.index(probe) % len(_PALETTE)]
        y = [f"{t} · {store}" for t in g["target"]]
        meta = {"stores": [str(store)], "targets": []}
        fig.add_trace(go.Scatter(x=g["relative depth"].tolist(), y=y, mode="markers", name=f"{probe} depth",
                                 legendgroup=str(probe), marker={"color": color, "size": 10}, meta=meta,
                                 showlegend=store == table[table["probe"] == probe]["store"].iloc[0]))
        best = [best_rel.get((store, t, probe)) for t in g["target"]]
        if any(b is not None for b in best):
            fig.add_trace(go.Scatter(x=best, y=y, mode="markers", name=f"{probe} best layer",
                                     legendgroup=str(probe), meta=meta,
                                     marker={"color": color, "size": 12, "symbol": "circle-open"},
                                     showlegend=store == table[table["probe"] == probe]["store"].iloc[0]))
    fig.update_layout(title="concept depth (filled) and best layer (open), relative depth 0 = first layer",
                      xaxis={"title": "relative depth", "range": [-0.05, 1.05]}, height=160 + 22 * len(table),
                      margin=dict(l=220, r=20, t=40, b=50))
    return fig


def _depth_sections(frame: pd.DataFrame) -> list[Section]:
    df = _with_params(frame[frame["analysis"] == "concept_depth"], ("probe", "target", "threshold"))
    if df.empty:
        return []
    rows = []
    for (store, target, probe), g in df.groupby(["store", "target", "probe"], sort=True):
        g = g.sort_values("created")
        get = {m: gg.iloc[-1] for m, gg in g.groupby("metric")}
        rows.append({"store": store, "target": target, "probe": probe,
                     "depth layer": get["depth"]["layer"] if "depth" in get else None,
                     "depth": get["depth"]["value"] if "depth" in get else None,
                     "relative depth": get["relative_depth"]["value"] if "relative_depth" in get else None,
                     "best score": get["best"]["value"] if "best" in get else None,
                     "threshold": get["depth"]["threshold"] if "depth" in get else None})
    table = pd.DataFrame(rows)
    sec = Section(title="Probes: concept depth", analysis="concept_depth",
                  text="First layer whose probe score reaches the threshold fraction of the best layer's score "
                       "(Jin et al. 2024). Lower relative depth: the concept is decodable earlier.",
                  tables=[table])
    if len(table) and table["relative depth"].notna().any():
        sec.figures.append(_depth_figure(df, table, frame[frame["analysis"] == "probe"]))
    return [sec]


def _simple_sections(frame: pd.DataFrame) -> list[Section]:
    out = []
    concat = _with_params(frame[frame["analysis"] == "probe_concat"], ("probe", "target", "members"))
    if len(concat):
        tab = concat[concat["metric"].str.startswith("accuracy")].pivot_table(
            index=["layer", "target", "probe", "store", "members"], columns="metric", values="value", aggfunc="mean"
        ).reset_index()
        out.append(Section(title="Probes: concatenated representations", analysis="probe_concat",
                           text="One layer of several stores of the same samples (e.g. training seeds), probed alone "
                                "and concatenated.", tables=[tab]))
    ret = frame[frame["analysis"] == "retrieval"]
    if len(ret):
        sec = Section(title="Retrieval by label", analysis="retrieval",
                      text="Leave-one-out retrieval: each sample queries the rest; relevant items share its label.")
        for metric in sorted(ret["metric"].unique()):
            if ret[ret["metric"] == metric]["layer"].nunique() > 1:
                sec.figures.append(line_figure(ret, metric, f"retrieval: {metric} per layer"))
        sec.tables.append(ret[["store", "layer", "metric", "value"]].head(400))
        out.append(sec)
    sts = frame[frame["analysis"] == "sts"]
    if len(sts):
        sec = Section(title="Semantic textual similarity", analysis="sts",
                      text="Spearman correlation between the cosine of each sentence pair and its gold score.")
        if sts["layer"].nunique() > 1:
            sec.figures.append(line_figure(sts, "spearman", "STS Spearman per layer"))
        sec.tables.append(sts[["store", "layer", "metric", "value"]].head(400))
        out.append(sec)
    return out


def report_sections(frame: pd.DataFrame, artifacts: list[dict]) -> tuple[list[Section], set[str]]:
    """Sections for the probe analyses present in `frame`, and the analysis names they cover."""
    if frame is None or len(frame) == 0:
        return [], set()
    present = set(frame["analysis"].unique()) & HANDLED
    if not present:
        return [], set()
    secs = _layer_sections(frame) + _few_shot_sections(frame) + _depth_sections(frame) + _simple_sections(frame)
    return secs, present
