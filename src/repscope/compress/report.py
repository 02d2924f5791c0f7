"""Report sections of repscope.compress: the truncation grid (2DMSE-style layer × dim heatmap, curves per layer,
smallest-size summary), the Matryoshka adapter's curves before vs after, and the embedding quantization table."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from repscope.report.sections import Section, layer_order

HANDLED = {"truncate", "truncate_summary", "adapter", "quantize_embeddings"}
MAIN_METRICS = ("accuracy", "spearman", "recall@10", "mAP")

TRUNCATE_TEXT = ("How small can the embedding get? Each cell scores the first m coordinates of a layer: raw (the "
                 "first m dimensions, as Matryoshka Representation Learning, Kusupati et al. 2022, trains them to "
                 "work) or pca (the first m principal components, fit on the training split only). The heatmap is the "
                 "2-D grid of 2D Matryoshka Sentence Embeddings (Li et al. 2024): depth (layer) × width (dim). Scores: "
                 "linear-probe accuracy (LogisticProbe), leave-one-out label retrieval recall@k and mAP, and STS "
                 "Spearman for pair stores, all on held-out rows. The table gives the smallest (layer, dim), and its "
                 "float32 bytes per vector, that keeps ≥ 99% / ≥ 95% of the best full-size score.")
ADAPTER_TEXT = ("A Matryoshka adapter (Yoon et al. 2024) on frozen embeddings: a linear (or residual MLP) map, "
                "started at the PCA rotation, trained on the fit rows with the nested MRL loss summed over prefix "
                "dims (unsupervised: keep the pairwise cosines of the original embeddings at every prefix; "
                "supervised: cross-entropy of a head per prefix). Curves compare held-out scores of raw truncation, "
                "PCA truncation and the adapted embeddings.")
QUANT_TEXT = ("What int8 and binary embeddings cost. float16; int8 with per-dimension [min, max] ranges calibrated on "
              "the calibration (training) split, 256 buckets; binary sign bits packed 8 per byte. Search: Hamming "
              "top-k over packed codes (binary) or int8 × int8 scores, then optionally rescoring of the top k·r "
              "candidates with the float32 query × the int8/binary document. recall@k_vs_float32 is the share of "
              "the exact float32 top-k found; label_recall@k, Spearman and probe accuracy use the decoded codes.")


def _params(df: pd.DataFrame, *keys: str) -> pd.DataFrame:
    return df.assign(**{k: [p.get(k) if isinstance(p, dict) else None for p in df["params"]] for k in keys})


def _grid_heatmap(g: pd.DataFrame, title: str) -> go.Figure:
    piv = g.pivot_table(index="layer", columns="dim", values="value", aggfunc="mean")
    piv = piv.loc[layer_order(g)]
    fig = go.Figure(go.Heatmap(z=piv.values.tolist(), x=[str(c) for c in piv.columns], y=list(piv.index),
                               colorscale="Viridis", colorbar=dict(title="score")))
    fig.update_layout(title=title, height=160 + 32 * len(piv.index), margin=dict(l=140, r=20, t=40, b=50),
                      xaxis_title="prefix dim m", yaxis=dict(title="layer", autorange="reversed"))
    return fig


def _curves(g: pd.DataFrame, series: str, title: str, order: list[str] | None = None) -> go.Figure:
    fig = go.Figure()
    for name in order or sorted(g[series].unique(), key=str):
        s = g[g[series] == name].groupby("dim", as_index=False)["value"].mean().sort_values("dim")
        fig.add_trace(go.Scatter(x=s["dim"].tolist(), y=s["value"].tolist(), mode="lines+markers", name=str(name)))
    dims = sorted({int(d) for d in g["dim"]})
    fig.update_layout(title=title, height=360, margin=dict(l=50, r=20, t=40, b=50), yaxis_title="score",
                      xaxis=dict(title="prefix dim m", type="log", tickvals=dims, ticktext=[str(d) for d in dims]))
    return fig


def _main_metric(g: pd.DataFrame) -> list[str]:
    have = set(g["metric"])
    return [m for m in MAIN_METRICS if m in have][:2] or sorted(have)[:1]


def _truncate_section(frame: pd.DataFrame) -> Section | None:
    df = frame[frame["analysis"] == "truncate"]
    if not len(df):
        return None
    sec = Section(title="Compression: truncation curves (MRL / 2DMSE)", analysis="truncate", text=TRUNCATE_TEXT)
    df = _params(df, "basis", "dim")
    for store, g in df.groupby("store", sort=True):
        metrics = _main_metric(g)
        for basis, gb in g[g["metric"] == metrics[0]].groupby("basis", sort=True):
            sec.figures.append(_grid_heatmap(gb, f"{store}: {metrics[0]}, {basis} basis (layer × dim)"))
        for metric in metrics:
            gm = g[g["metric"] == metric]
            gm = gm.assign(series=[f"{la} ({b})" for la, b in zip(gm["layer"], gm["basis"], strict=True)])
            order = [f"{la} ({b})" for b in sorted(set(gm["basis"])) for la in layer_order(gm)]
            sec.figures.append(_curves(gm, "series", f"{store}: {metric} vs dim per layer and basis",
                                       [o for o in order if o in set(gm["series"])]))
    summ = frame[frame["analysis"] == "truncate_summary"]
    if len(summ):
        s = _params(summ, "basis", "score_metric", "fraction", "bytes_per_vector", "score", "best_full",
                    "best_full_layer")
        sec.tables.append(s[["store", "basis", "score_metric", "fraction", "layer", "value", "bytes_per_vector",
                             "score", "best_full", "best_full_layer"]].rename(columns={"value": "dim"})
                          .sort_values(["store", "basis", "score_metric", "fraction"], ascending=[1, 1, 1, 0]))
    return sec


def _adapter_section(frame: pd.DataFrame) -> Section | None:
    df = frame[frame["analysis"] == "adapter"]
    if not len(df):
        return None
    sec = Section(title="Compression: Matryoshka adapter, before vs after", analysis="adapter", text=ADAPTER_TEXT)
    df = _params(df, "method", "dim", "objective")
    for (store, layer, objective), g in df.groupby(["store", "layer", "objective"], sort=True):
        for metric in _main_metric(g):
            sec.figures.append(_curves(g[g["metric"] == metric], "method",
                                       f"{store} {layer}: {metric} vs dim ({objective} adapter)",
                                       [m for m in ("raw", "pca", "adapter") if m in set(g["method"])]))
        piv = g.pivot_table(index=["metric", "method"], columns="dim", values="value", aggfunc="first")
        piv.columns = [f"m={c}" for c in piv.columns]
        piv = piv.reset_index()
        piv.insert(0, "layer", layer)
        piv.insert(0, "store", store)
        sec.tables.append(piv)
    return sec


def _quantize_section(frame: pd.DataFrame) -> Section | None:
    df = frame[frame["analysis"] == "quantize_embeddings"]
    if not len(df):
        return None
    sec = Section(title="Compression: embedding quantization (int8, binary, rescoring)",
                  analysis="quantize_embeddings", text=QUANT_TEXT)
    df = _params(df, "scheme", "rescore", "bytes_per_vector")
    piv = df.pivot_table(index=["store", "layer", "scheme", "rescore", "bytes_per_vector"], columns="metric",
                         values="value", aggfunc="first").reset_index()
    sec.tables.append(piv)
    rec = [c for c in piv.columns if str(c).endswith("_vs_float32")]
    if rec:
        fig = go.Figure()
        for (store, layer), g in piv.groupby(["store", "layer"], sort=True):
            labels = [f"{s}{'+r' + str(r) if r else ''}" for s, r in zip(g["scheme"], g["rescore"], strict=True)]
            fig.add_trace(go.Scatter(x=g["bytes_per_vector"].tolist(), y=g[rec[0]].tolist(), text=labels,
                                     mode="markers+text", textposition="top center", name=f"{store} {layer}"))
        fig.update_layout(title=f"{rec[0]} vs bytes per vector", height=380, margin=dict(l=50, r=20, t=40, b=50),
                          xaxis=dict(title="bytes per vector", type="log"), yaxis_title=rec[0])
        sec.figures.append(fig)
    return sec


def report_sections(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> tuple[list[Section], set[str]]:
    """The compression sections (truncation grid and summary, adapter curves, quantization table)."""
    if not len(frame):
        return [], set()
    secs = [s for s in (_truncate_section(frame), _adapter_section(frame), _quantize_section(frame)) if s is not None]
    return secs, HANDLED if secs else set()
