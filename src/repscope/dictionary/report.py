"""Report sections for SAEs (L0-vs-FVU frontier, metrics table, feature cards) and quantizers (bits vs FVU)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from repscope.report.sections import Section, natural_key

SAE_METRICS = ["fvu", "mean_l0", "dead_fraction", "dense_fraction", "probe_acc_drop", "samples_per_s"]
Q_METRICS = ["fvu", "bits_per_vector", "codebook_usage", "perplexity", "probe_acc_drop"]


def _wide(df: pd.DataFrame, keys: list[str]) -> pd.DataFrame:
    d = df.copy()
    for k in keys:
        d[k] = [p.get(k) if isinstance(p, dict) else None for p in d["params"]]
    d["store"] = d["store"].fillna("")
    d["layer"] = d["layer"].fillna("")
    idx = ["store", "layer", *keys]
    w = d.pivot_table(index=idx, columns="metric", values="value", aggfunc="last", dropna=False).reset_index()
    w = w.dropna(axis=1, how="all")
    return w.sort_values(["store", "layer"], key=lambda s: s.map(lambda v: str(natural_key(v))))


def frontier_figure(w: pd.DataFrame) -> go.Figure:
    """Mean L0 vs FVU, one trace per store·layer, points labelled arch/k (lower-left is better)."""
    fig = go.Figure()
    for (store, layer), g in w.groupby(["store", "layer"], sort=False):
        g = g.sort_values("mean_l0")
        labels = [f"{a} k={k} m={m}" for a, k, m in zip(g["arch"], g["k"], g["n_latents"], strict=True)]
        fig.add_trace(go.Scatter(x=g["mean_l0"].tolist(), y=g["fvu"].tolist(), mode="markers+lines",
                                 text=labels, name=f"{store} · {layer}"))
    fig.update_layout(title="SAE frontier: mean L0 vs FVU (held-out rows)", xaxis_title="mean L0 (log)",
                      yaxis_title="FVU", xaxis_type="log", height=420, margin=dict(l=50, r=20, t=40, b=60))
    return fig


def _sae_section(df: pd.DataFrame, artifacts: list[dict[str, Any]]) -> Section:
    sec = Section(title="Sparse dictionaries (SAEs)", analysis="sae",
                  text="Each SAE is trained on a store layer with every 10th row held out; FVU, L0, dead/dense "
                       "fractions and the probe-accuracy drop (probe trained on originals, tested on reconstructions) "
                       "are measured on held-out rows. Feature cards show top-activating samples per latent and the "
                       "label with the best one-vs-rest AUROC.")
    if len(df):
        w = _wide(df, ["arch", "k", "n_latents"])
        if {"mean_l0", "fvu"} <= set(w.columns):
            sec.figures.append(frontier_figure(w))
        cols = [c for c in ["store", "layer", "arch", "k", "n_latents", *SAE_METRICS] if c in w.columns]
        sec.tables.append(w[cols].head(200))
    for a in artifacts:
        p = a["payload"]
        cards = p.get("cards", [])[:12]
        for c in cards:
            sec.cards.append({**c, "title": f"{p.get('store')} · {p.get('layer')} · {c['title']}"})
    return sec


def _quantize_section(df: pd.DataFrame) -> Section:
    sec = Section(title="Discrete codes (quantizers)", analysis="quantize",
                  text="Quantizers fit on training rows and evaluated on held-out rows: reconstruction FVU per bit "
                       "budget, codebook usage and perplexity, and the probe-accuracy drop after quantization.")
    w = _wide(df, ["method", "bits"])
    if {"bits_per_vector", "fvu"} <= set(w.columns):
        fig = go.Figure()
        for (store, layer, method), g in w.groupby(["store", "layer", "method"], sort=False):
            g = g.sort_values("bits_per_vector")
            fig.add_trace(go.Scatter(x=g["bits_per_vector"].tolist(), y=g["fvu"].tolist(), mode="markers+lines",
                                     name=f"{method} · {store} · {layer}"))
        fig.update_layout(title="bits per vector vs FVU", xaxis_title="bits per vector (log)", xaxis_type="log",
                          yaxis_title="FVU", height=400, margin=dict(l=50, r=20, t=40, b=60))
        sec.figures.append(fig)
    cols = [c for c in ["store", "layer", "method", *Q_METRICS] if c in w.columns]
    sec.tables.append(w[cols].head(200))
    return sec


def report_sections(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> tuple[list[Section], set[str]]:
    """Sections for analyses `sae` and `quantize`; returns (sections, handled analysis names)."""
    out: list[Section] = []
    handled: set[str] = set()
    sae_rows = frame[frame["analysis"] == "sae"] if len(frame) else frame
    sae_art = [a for a in artifacts if a.get("analysis") == "sae"]
    if len(sae_rows) or sae_art:
        out.append(_sae_section(sae_rows, sae_art))
        handled.add("sae")
    q_rows = frame[frame["analysis"] == "quantize"] if len(frame) else frame
    if len(q_rows):
        out.append(_quantize_section(q_rows))
        handled.add("quantize")
    return out, handled
