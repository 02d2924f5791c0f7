"""Report section for backward compatibility: the compatibility table (query model × gallery model × transform) and
M(new→old) per transform against the M(old,old) and M(new,new) references."""

from __future__ import annotations

from typing import Any

import pandas as pd
import plotly.graph_objects as go

from repscope.report.sections import Section

ANALYSIS = "compat"
KEYS = ["query", "gallery", "transform", "direction"]
COLUMNS = ["recall@1", "recall@5", "mAP", "compatible:recall@1", "update_gain:recall@1", "compatible:mAP",
           "update_gain:mAP"]
TEXT = ("Can the new model's queries search the old model's index without re-embedding it (backfilling)? Label "
        "retrieval on held-out samples: each sample queries the other samples, relevant = same label. "
        "M(old,old) and M(new,new) are each model against its own index; the other rows search across models after a "
        "transform fit on a separate fit split: none, orthogonal Procrustes, ridge or least squares (new→old maps the "
        "queries, old→new maps the stored index), and a BCT head (Shen et al. 2020: a projection of the frozen new "
        "features trained with the old classifier's influence loss). Compatible (1) when M(new→old) > M(old,old) "
        "(Shen et al.'s empirical criterion); update gain = (M(new→old) − M(old,old)) / |M(new,new) − M(old,old)|, "
        "1 = the full improvement of the new model without backfilling, ≤ 0 = worse than keeping the old model. "
        "Rows where the gallery is the mapped query model show what the compatible model scores on its own index.")


def compat_table(frame: pd.DataFrame) -> pd.DataFrame:
    """Rows of analysis 'compat' as a table: store, layers, query, gallery, transform, direction, then the scores."""
    df = frame[frame["analysis"] == ANALYSIS] if len(frame) else frame
    if not len(df):
        return pd.DataFrame(columns=["store", "layer", "layer_b", *KEYS, *COLUMNS])
    p = pd.DataFrame([dict(x) if isinstance(x, dict) else {} for x in df["params"]], index=df.index)
    wide = pd.concat([df[["store", "layer", "layer_b", "metric", "value"]], p.reindex(columns=KEYS)], axis=1)
    index = ["store", "layer", "layer_b", *KEYS]
    first = wide.drop_duplicates(index)[index].reset_index(drop=True)  # the order the rows were recorded in
    piv = wide.pivot_table(index=index, columns="metric", values="value", aggfunc="first", sort=False)
    out = first.merge(piv.reset_index(), on=index, how="left")
    return out[[*index, *[c for c in COLUMNS if c in out.columns]]]


def _figure(table: pd.DataFrame, store: str, score: str) -> go.Figure | None:
    cross = table[(table["transform"] != "-") & (table["gallery"] != table["query"])]
    ref = table[table["transform"] == "-"].set_index("query")[score] if score in table else None
    if ref is None or not len(cross):
        return None
    labels = [f"{t} ({d})" for t, d in zip(cross["transform"], cross["direction"], strict=True)]
    fig = go.Figure(go.Bar(x=labels, y=cross[score].tolist(), name="M(new→old)"))
    for who, dash in (("old", "dash"), ("new", "dot")):
        if who in ref.index and ref[who] == ref[who]:
            fig.add_hline(y=float(ref[who]), line_dash=dash, annotation_text=f"M({who},{who})")
    fig.update_layout(title=f"{store}: cross-model {score} per transform", yaxis_title=score, height=380,
                      margin=dict(l=50, r=20, t=40, b=80))
    return fig


def report_sections(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> tuple[list[Section], set[str]]:
    """The compatibility section: one table and one bar chart (mAP) per store pair."""
    table = compat_table(frame)
    if not len(table):
        return [], set()
    sec = Section(title="Backward compatibility: new queries against the old index", analysis=ANALYSIS, text=TEXT)
    for store, t in table.groupby("store", sort=True):
        sec.tables.append(t.reset_index(drop=True))
        fig = _figure(t, str(store), "mAP")
        if fig is not None:
            sec.figures.append(fig)
    return [sec], {ANALYSIS}
