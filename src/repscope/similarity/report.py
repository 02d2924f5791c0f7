"""Report sections of repscope.similarity: layer × layer heatmaps, matched-correlation curves, stitching tables."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from repscope.report.sections import Section, layer_order

HANDLED = {"similarity", "neuron_match", "stitching", "relative_stitching"}


def heatmap(d: pd.DataFrame, title: str, distance: bool) -> go.Figure:
    """Layer × layer heatmap (rows: layers of A, columns: layers of B) in model order."""
    piv = d.pivot_table(index="layer", columns="layer_b", values="value", aggfunc="mean")
    rows, cols = layer_order(d), layer_order(d, "layer_b")  # model order from layer_index / layer_b_index
    piv = piv.reindex(index=rows, columns=cols)
    z = [[None if v != v else round(float(v), 4) for v in r] for r in piv.to_numpy()]
    fig = go.Figure(go.Heatmap(z=z, x=cols, y=rows, colorscale="Viridis_r" if distance else "Viridis",
                               colorbar={"title": "distance" if distance else "similarity"}))
    fig.update_layout(title=title, height=460, margin=dict(l=130, r=20, t=50, b=130),
                      yaxis={"autorange": "reversed", "title": "A"}, xaxis={"title": "B"})
    return fig


def _similarity(frame: pd.DataFrame) -> Section:
    sec = Section(title="Similarity: layer × layer", analysis="similarity",
                  text="Each heatmap compares every layer of A (rows) with every layer of B (columns) on the same "
                       "samples. Similarities (CKA, CCA, RSA, kNN) are higher when alike; distances (Procrustes, "
                       "angular shape metrics) are lower when alike, and their colour scale is reversed.")
    best = []
    for (store, metric), d in frame.groupby(["store", "metric"], sort=True):
        p = d["params"].iloc[0] if isinstance(d["params"].iloc[0], dict) else {}
        distance = p.get("kind") == "distance"
        n = p.get("n")
        sec.figures.append(heatmap(d, f"{metric} — {store}" + (f" (n={n})" if n else ""), distance))
        piv = d.pivot_table(index="layer", columns="layer_b", values="value", aggfunc="mean")
        if piv.shape[0] == piv.shape[1] and set(piv.index) == set(piv.columns) and " vs " in str(store):
            hits = [(piv.loc[r].idxmin() if distance else piv.loc[r].idxmax()) == r for r in piv.index]
            best.append({"store": store, "measure": metric, "layers": len(hits),
                         "same-name layer is the best match": f"{sum(hits)}/{len(hits)}"})
    if best:
        sec.tables.append(pd.DataFrame(best))
    return sec


def _neuron_match(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> Section:
    sec = Section(title="Neuron matching", analysis="neuron_match",
                  text="One-to-one matching of neurons by correlation (Hungarian assignment, Li et al. 2016). "
                       "Solid: matched correlations sorted high to low (matched-correlation curve); dotted: each "
                       "neuron's best correlation with any neuron of B (semi-matching).")
    fig = go.Figure()
    for art in artifacts:
        if art.get("analysis") != "neuron_match":
            continue
        p = art["payload"]
        curve, bestc = p.get("curve", []), p.get("best", [])
        x = [i / max(1, len(curve) - 1) for i in range(len(curve))]
        fig.add_trace(go.Scatter(x=x, y=curve, mode="lines", name=str(art["name"])))
        if bestc:
            fig.add_trace(go.Scatter(x=[i / max(1, len(bestc) - 1) for i in range(len(bestc))], y=bestc,
                                     mode="lines", line={"dash": "dot"}, name=f"{art['name']} (best)"))
    fig.update_layout(title="matched-correlation curves", xaxis_title="neuron rank (fraction)",
                      yaxis_title="correlation", height=420, margin=dict(l=50, r=20, t=40, b=50))
    if fig.data:
        sec.figures.append(fig)
    if len(frame):
        sec.tables.append(frame.pivot_table(index=["store", "layer", "layer_b"], columns="metric",
                                            values="value", aggfunc="mean").round(4).reset_index())
    return sec


def _table_section(frame: pd.DataFrame, analysis: str, title: str, text: str) -> Section:
    d = frame.copy()
    d["setting"] = [", ".join(f"{k}={v}" for k, v in sorted(p.items()) if k in ("kind", "n_anchors", "label"))
                    if isinstance(p, dict) else "" for p in d["params"]]
    tab = d.pivot_table(index=["store", "layer", "layer_b", "setting"], columns="metric", values="value",
                        aggfunc="mean").round(4).reset_index()
    return Section(title=title, analysis=analysis, text=text, tables=[tab])


def report_sections(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> tuple[list[Section], set[str]]:
    """Sections for the analyses this package records; returns them and the analysis names handled."""
    out: list[Section] = []
    if frame is None or not len(frame):
        return out, set()
    present = set(frame["analysis"].unique())
    if "similarity" in present:
        out.append(_similarity(frame[frame["analysis"] == "similarity"]))
    if "neuron_match" in present or any(a.get("analysis") == "neuron_match" for a in artifacts):
        out.append(_neuron_match(frame[frame["analysis"] == "neuron_match"], artifacts))
    if "stitching" in present:
        out.append(_table_section(frame[frame["analysis"] == "stitching"], "stitching", "Linear stitching",
                                  "A map from a layer of A to a layer of B is fit on train rows; on test rows: R², "
                                  "B's logistic head on B (acc_b) and on mapped A (acc_stitched)."))
    if "relative_stitching" in present:
        out.append(_table_section(frame[frame["analysis"] == "relative_stitching"], "relative_stitching",
                                  "Relative representations: zero-shot stitching",
                                  "Moschella et al. 2023: a probe trained on A's cosine-to-anchors representation "
                                  "is applied unchanged to B's (acc_a_to_b), next to the absolute-space baseline."))
    return out, HANDLED & present
