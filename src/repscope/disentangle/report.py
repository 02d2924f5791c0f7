"""Report section for disentanglement: per-layer scores by store, a layer × score table and factor × latent heatmaps."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from repscope.report.sections import Section, layer_order, line_figure

ANALYSIS = "disentangle"
TEXT = ("How far each known factor lives in its own few coordinates. MIG (Chen et al. 2018, 20 equal-width bins), "
        "DCI disentanglement/completeness/informativeness (Eastwood & Williams 2018, importances from gradient-boosted "
        "trees), SAP (Kumar et al. 2018), modularity and explicitness (Ridgeway & Mozer 2018) and InfoM/InfoE/InfoC "
        "(Hsu et al. 2023). 1 is perfectly disentangled; informativeness, explicitness and InfoE measure how "
        "decodable the factors are at all. The heatmaps show, for the layer with the highest MIG of each store, the "
        "normalised mutual information I(z_j; v_k)/H(v_k) and the DCI importance of each latent for each factor.")
MAX_HEATMAP_LATENTS = 128  # wider layers show their most informative latents only


def _heatmap(payload: dict[str, Any], key: str, title: str) -> go.Figure | None:
    z = payload.get(key)
    if not z:
        return None
    frame = pd.DataFrame(z, index=payload["factors"])
    if frame.shape[1] > MAX_HEATMAP_LATENTS:
        keep = frame.max(axis=0).sort_values(ascending=False).index[:MAX_HEATMAP_LATENTS]
        frame = frame[sorted(keep)]
    fig = go.Figure(go.Heatmap(z=frame.values.tolist(), x=[f"z{c}" for c in frame.columns], y=list(frame.index),
                               colorscale="Viridis"))
    fig.update_layout(title=title, height=160 + 40 * len(frame.index), margin=dict(l=120, r=20, t=40, b=40),
                      xaxis_title="latent", yaxis_title="factor")
    return fig


def report_sections(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> tuple[list[Section], set[str]]:
    """The disentanglement section (per-layer curves, score table, heatmaps of the best layer per store)."""
    df = frame[frame["analysis"] == ANALYSIS] if len(frame) else frame
    if not len(df):
        return [], set()
    sec = Section(title="Disentanglement: known factors per layer", analysis=ANALYSIS, text=TEXT)
    for metric in ("mig", "dci_disentanglement", "dci_completeness", "sap", "modularity", "infom", "infoc"):
        if metric in set(df["metric"]):
            sec.figures.append(line_figure(df, metric, f"disentanglement: {metric} per layer"))
    for store, g in df.groupby("store", sort=True):
        piv = g.pivot_table(index="layer", columns="metric", values="value", aggfunc="mean")
        piv = piv.loc[layer_order(g)].reset_index()
        piv.insert(0, "store", store)
        sec.tables.append(piv)
        mig = g[g["metric"] == "mig"]
        if not len(mig):
            continue
        best = str(mig.loc[mig["value"].idxmax(), "layer"])
        for a in artifacts:
            p = a["payload"]
            if a["analysis"] == ANALYSIS and a["name"] == f"heatmap:{best}" and p.get("store") == store:
                for key, label in (("nmi", "normalised MI"), ("dci_importance", "DCI importance")):
                    fig = _heatmap(p, key, f"{store} {best}: {label} (factor × latent)")
                    if fig is not None:
                        sec.figures.append(fig)
    return [sec], {ANALYSIS}
