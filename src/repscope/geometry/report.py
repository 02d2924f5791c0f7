"""Report sections for the geometry profile: per-layer curves by theme, spectrum plots and the information plane."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from repscope.geometry.findings import saturated_infoplane
from repscope.report.sections import Section, generic_sections, layer_order

ANALYSIS = "geometry"

THEMES: list[tuple[str, list[str], str]] = [
    ("intrinsic dimension", ["twonn_id", "mle_id", "participation_ratio", "pca_90", "pca_95", "pca_99"],
     "TwoNN (Facco et al. 2017, 10% of the largest ratios discarded), Levina–Bickel MLE with MacKay–Ghahramani "
     "averaging (k = 10…20), participation ratio and the number of principal components for 90/95/99% of variance."),
    ("anisotropy and uniformity", ["anisotropy", "anisotropy_standardized", "rogue_top1_share", "rogue_top3_share",
                                   "uniformity", "alignment"],
     "Expected cosine of random pairs (Ethayarajh 2019), the same after z-scoring each dimension, the share of the "
     "expected cosine held by the top 1/3 dimensions (Timkey & van Schijndel 2021; NaN when the expected cosine is "
     "near 0), and uniformity/alignment (Wang & Isola 2020; lower is better)."),
    ("rank and spectrum", ["effective_rank", "stable_rank", "numerical_rank", "powerlaw_alpha"],
     "Effective rank (Roy & Vetterli 2007), stable rank ‖X‖²_F/‖X‖²₂ and numerical rank of the centred "
     "representation; α is the slope of the log eigenvalue against log rank over the stated rank range (α-ReQ). "
     "The spectrum plots show each layer's covariance eigenvalues as fractions of the total variance."),
    ("coding rate", ["coding_rate", "coding_rate_classes", "rate_reduction"],
     "Coding rate R(Z, ε) = ½ logdet(I + d/(nε²) ZᵀZ) of unit-norm rows, its class-conditional part and the rate "
     "reduction ΔR (MCR², Yu et al. 2020), in nats."),
    ("cluster separation", ["silhouette", "davies_bouldin", "calinski_harabasz", "dunn", "xie_beni"],
     "Separation of the label classes: silhouette, Calinski–Harabasz and Dunn (higher is better), Davies–Bouldin "
     "and Xie–Beni (lower is better)."),
    ("information plane", ["I_XT", "I_TY"],
     "Binned I(X;T) and I(T;Y) in bits (Shwartz-Ziv & Tishby 2017). These measure the binning as much as the "
     "network: they depend on the number of bins and saturate at log₂ n and H(Y) when every pattern is unique."),
]


def _depth(df: pd.DataFrame) -> pd.DataFrame:
    """Add layer position (the rows' `layer_index`, natural order for old rows) and relative depth 0…1 per store."""
    df = df.copy()
    nl = [p.get("n_layers") if isinstance(p, dict) else None for p in df["params"]]
    df["pos"] = df["layer_index"].astype(float) if "layer_index" in df else float("nan")
    df["n_layers"] = pd.Series(nl, index=df.index, dtype=float)
    for _, g in df.groupby("store", dropna=False):
        if g["pos"].isna().any() or g["n_layers"].isna().any():
            order = {name: i for i, name in enumerate(layer_order(g["layer"]))}
            df.loc[g.index, "pos"] = g["layer"].map(order)
            df.loc[g.index, "n_layers"] = len(order)
    df["depth"] = df["pos"].astype(float) / (df["n_layers"].astype(float) - 1).clip(lower=1)
    return df


def _metric_figure(df: pd.DataFrame, metric: str) -> go.Figure:
    fig = go.Figure()
    d = df[df["metric"] == metric]
    for store, g in d.groupby("store", sort=True):
        g = g.groupby(["layer", "depth", "pos"], as_index=False)["value"].mean().sort_values("pos")
        fig.add_trace(go.Scatter(x=g["depth"].tolist(), y=g["value"].tolist(), mode="lines+markers", name=str(store),
                                 text=g["layer"].tolist(), hovertemplate="%{text}: %{y:.4g}<extra>" + str(store)
                                 + "</extra>"))
    fig.update_layout(title=f"{metric} per layer", xaxis_title="relative depth (first layer 0, last 1)",
                      yaxis_title=metric, height=360, margin=dict(l=50, r=20, t=40, b=50))
    return fig


FLOAT64_EPS = 2.220446049250313e-16


def precision_floor(values: list[float]) -> float:
    """Relative eigenvalues below λ₁ · d · ε(float64) are numerical zeros of the eigensolver, not structure."""
    return (max(values) if values else 0.0) * max(1, len(values)) * FLOAT64_EPS


def _spectrum_figure(payload: dict[str, Any]) -> tuple[go.Figure, int, int]:
    """Each layer's spectrum, clipped at its precision floor; returns (figure, values dropped, values in all)."""
    fig = go.Figure()
    layers = payload.get("order") or layer_order(payload.get("layers", {}).keys())
    dropped = total = 0
    for layer in layers:
        raw = [float(v) for v in payload["layers"].get(layer, [])]
        floor = precision_floor(raw)
        vals = [v for v in raw if v > floor]
        dropped += len(raw) - len(vals)
        total += len(raw)
        fig.add_trace(go.Scatter(x=list(range(1, len(vals) + 1)), y=vals, mode="lines", name=str(layer),
                                 meta={"stores": [str(payload.get("store"))], "targets": []}))
    fig.update_layout(title=f"covariance spectrum: {payload.get('store')} (n = {payload.get('n')})",
                      xaxis_type="log", yaxis_type="log", xaxis_title="rank i", yaxis_title="λᵢ / Σλ",
                      height=400, margin=dict(l=60, r=20, t=40, b=50))
    return fig, dropped, total


def _infoplane_figure(df: pd.DataFrame, saturated: dict[str, list[str]]) -> go.Figure:
    """I(X;T) vs I(T;Y) per store in model order; saturated points (I(X;T) ≈ log₂ n) drawn as open crosses."""
    fig = go.Figure()
    d = df[df["metric"].isin(["I_XT", "I_TY"])]
    for store, g in d.groupby("store", sort=True):
        p = g.pivot_table(index=["pos", "layer"], columns="metric", values="value", aggfunc="mean").reset_index()
        p = p.sort_values("pos").dropna(subset=["I_XT", "I_TY"])
        sat = set(saturated.get(str(store), []))
        fig.add_trace(go.Scatter(x=p["I_XT"].tolist(), y=p["I_TY"].tolist(), mode="lines+markers+text",
                                 text=p["layer"].tolist(), textposition="top center", name=str(store),
                                 marker={"symbol": ["x-open" if lay in sat else "circle" for lay in p["layer"]],
                                         "size": 9}))
    fig.update_layout(title="information plane (layers in model order; ✕ = saturated at log₂ n)",
                      xaxis_title="I(X;T) bits", yaxis_title="I(T;Y) bits", height=420,
                      margin=dict(l=60, r=20, t=40, b=50))
    return fig


def _table(df: pd.DataFrame, metrics: list[str]) -> pd.DataFrame:
    d = df[df["metric"].isin(metrics)]
    piv = d.pivot_table(index=["store", "pos", "layer"], columns="metric", values="value", aggfunc="mean")
    piv = piv.reset_index().sort_values(["store", "pos"]).drop(columns="pos")
    return piv[["store", "layer"] + [m for m in metrics if m in piv.columns]]


def report_sections(frame: pd.DataFrame, artifacts: list[dict]) -> tuple[list[Section], set[str]]:
    """Geometry sections: one per theme with per-layer curves (x = relative depth), spectra and the info plane."""
    if frame is None or len(frame) == 0 or "analysis" not in frame:
        return [], set()
    df = frame[(frame["analysis"] == ANALYSIS) & frame["layer"].notna()]
    spectra = [a["payload"] for a in artifacts if a.get("analysis") == ANALYSIS and str(a.get("name", ""))
               .startswith("spectrum:")]
    if df.empty and not spectra:
        return [], set()
    df = _depth(df)
    sections = []
    for theme, metrics, text in THEMES:
        present = [m for m in metrics if m in set(df["metric"])]
        sec = Section(title=f"Geometry: {theme}", analysis=ANALYSIS, text=text)
        if theme == "information plane" and {"I_XT", "I_TY"} <= set(present):
            saturated = saturated_infoplane(df)
            n_points = int(df[df["metric"] == "I_XT"].groupby(["store", "layer"]).ngroups)
            n_sat = sum(len(v) for v in saturated.values())
            if n_sat:
                sec.notes.append(f"I(X;T) saturates at log₂ n in {n_sat} of {n_points} layer(s) "
                                 f"({', '.join(sorted(saturated))}): every sample falls in its own bin, so those "
                                 "points measure the binning, not the network.")
            if n_sat < n_points:  # a plane of saturated points only says nothing; it is not drawn
                sec.figures.append(_infoplane_figure(df, saturated))
            else:
                sec.notes.append("The information-plane plot is not drawn: all of its points are saturated.")
                present = [m for m in present if m != "I_XT"]
        for m in present:
            sec.figures.append(_metric_figure(df, m))
        if theme == "rank and spectrum":
            dropped = total = 0
            for p in sorted(spectra, key=lambda p: str(p.get("store"))):
                fig, k, n = _spectrum_figure(p)
                sec.figures.append(fig)
                dropped, total = dropped + k, total + n
            if dropped:
                sec.notes.append(f"Spectra are clipped at the float precision floor λ₁·d·ε₆₄ of each layer: {dropped} "
                                 f"of {total} eigenvalues below it are numerical zeros and are not drawn.")
        if not sec.figures:
            continue
        if present:
            sec.tables.append(_table(df, present))
        sections.append(sec)
    themed = {m for _, metrics, _ in THEMES for m in metrics}
    other = frame[(frame["analysis"] == ANALYSIS) & ~frame["metric"].isin(themed)]
    for sec in generic_sections(other) if len(other) else []:  # a metric with no theme is still shown
        sec.title = "Geometry: other measures"
        sec.text = "Measures without a themed section (" + ", ".join(sorted(set(other["metric"]))) + ")."
        sections.append(sec)
    return sections, {ANALYSIS}
