"""Report section for learners: training summary per trained model and the seed claims (mean ± std over seeds)."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from repscope.report.sections import Section

ANALYSIS = "learn"
TEXT = ("Small representation learners trained by repscope (autoencoders, β-VAE: Higgins et al. 2017, QLAE: Hsu et "
        "al. 2023, SimCLR: Chen et al. 2020). The table lists each trained model (one row per learner and seed): its "
        "first and final training loss, throughput, and any scores of its latents (InfoM/InfoC/InfoE and MIG against "
        "known factors; linear-probe accuracy). The chart shows each score's mean over seeds with the min–max range: "
        "a claim such as 'QLAE beats β-VAE on InfoM' holds at this scale only where the ranges separate.")
SCORES = ("infom", "infoc", "infoe", "mig", "probe_accuracy")


def seed_summary(df: pd.DataFrame) -> pd.DataFrame:
    """Mean, std, min, max and seed count per (model, metric) for the score metrics."""
    d = df[df["metric"].isin(SCORES)]
    if not len(d):
        return pd.DataFrame(columns=["model", "metric", "mean", "std", "min", "max", "seeds"])
    g = d.groupby(["model", "metric"], sort=True)["value"]
    return g.agg(mean="mean", std="std", min="min", max="max", seeds="count").reset_index()


def _figure(summary: pd.DataFrame) -> go.Figure:
    fig = go.Figure()
    for model, g in summary.groupby("model", sort=True):
        fig.add_trace(go.Bar(name=str(model), x=list(g["metric"]), y=list(g["mean"]),
                             error_y=dict(type="data", symmetric=False, array=list(g["max"] - g["mean"]),
                                          arrayminus=list(g["mean"] - g["min"]))))
    fig.update_layout(barmode="group", title="learners: score mean over seeds (bars: min–max)", height=360,
                      yaxis_title="score", margin=dict(l=60, r=20, t=40, b=40))
    return fig


def report_sections(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> tuple[list[Section], set[str]]:
    """The learners section (per-model table, seed summary table and chart)."""
    df = frame[frame["analysis"] == ANALYSIS] if len(frame) else frame
    if not len(df):
        return [], set()
    sec = Section(title="Learners: what small trained models learned", analysis=ANALYSIS, text=TEXT)
    piv = df.pivot_table(index=["store", "model"], columns="metric", values="value", aggfunc="first").reset_index()
    sec.tables.append(piv)
    summary = seed_summary(df)
    if len(summary):
        sec.tables.append(summary)
        sec.figures.append(_figure(summary))
    return [sec], {ANALYSIS}
