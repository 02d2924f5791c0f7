"""The similarity plugin's findings hook: most/least similar layer pairs within a store, where the representation
changes most, cross-model alignment of same-name layers, and the warning for CCA on fewer samples than dimensions.

Read from tidy result rows alone (`ResultsDB.frame()`). A cross-store comparison's rows carry the store pair as
`"A vs B"` and `params["store_b"]`.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from repscope.report.findings import Finding, analysis_rows, fmt_num
from repscope.report.sections import layer_order

SIMILARITY_PREFERENCE = ("linear_cka", "debiased_cka", "cka", "rsa", "mean_cca")
WITHIN, ACROSS = "Layer similarity", "Cross-model alignment"


def _stores_of(store: str, params: dict[str, Any]) -> tuple[str, str]:
    b = params.get("store_b")
    if " vs " in store:
        a, _, bb = store.partition(" vs ")
        return a, b or bb
    return store, b or store


def similarity_findings(frame: pd.DataFrame) -> list[Finding]:
    """Most/least similar layer pairs within a store, adjacent-layer change, and cross-model alignment (mean
    same-name-layer score, and for how many layers the same-name layer is the best match), in store order."""
    df = analysis_rows(frame, "similarity")
    out: list[Finding] = []
    if not len(df):
        return out
    df = df[df["layer"].notna() & df["layer_b"].notna()]
    for store, g in df.groupby("store", sort=True):
        measures = list(dict.fromkeys([m for m in SIMILARITY_PREFERENCE if m in set(g["metric"])]
                                      + sorted(set(g["metric"]))))
        metric = measures[0]
        d = g[g["metric"] == metric]
        p = d["params"].iloc[0] if isinstance(d["params"].iloc[0], dict) else {}
        distance = p.get("kind") == "distance"
        a, b = _stores_of(str(store), p)
        piv = d.pivot_table(index="layer", columns="layer_b", values="value", aggfunc="mean")
        rows_o, cols_o = layer_order(d), layer_order(d, "layer_b")
        piv = piv.reindex(index=rows_o, columns=cols_o)
        sign = -1.0 if distance else 1.0
        if a == b:  # within one store: distinct pairs only
            rank = {n: i for i, n in enumerate(rows_o)}
            pairs = [(r, c, float(piv.loc[r, c])) for i, r in enumerate(rows_o) for c in cols_o
                     if rank.get(c, -1) > i and pd.notna(piv.loc[r, c])]
            if not pairs:
                continue
            most = max(pairs, key=lambda t: sign * t[2])
            least = min(pairs, key=lambda t: sign * t[2])
            adj = [(rows_o[i], rows_o[i + 1], float(piv.loc[rows_o[i], rows_o[i + 1]]))
                   for i in range(len(rows_o) - 1) if rows_o[i + 1] in piv.columns
                   and pd.notna(piv.loc[rows_o[i], rows_o[i + 1]])]
            text = (f"{store} ({metric}): most similar pair {most[0]} ~ {most[1]} ({fmt_num(most[2])}), least "
                    f"similar {least[0]} ~ {least[1]} ({fmt_num(least[2])})")
            data: dict[str, Any] = {"metric": metric, "most": most[:2], "most_value": most[2], "least": least[:2],
                                    "least_value": least[2]}
            if adj:
                change = min(adj, key=lambda t: sign * t[2])
                text += f"; the representation changes most from {change[0]} to {change[1]} ({fmt_num(change[2])})"
                data["largest_change"] = change[:2]
            out.append(Finding("similarity", text, store=str(store), data=data, group=WITHIN))
        else:  # across stores/models: alignment of same-name layers
            common = [r for r in rows_o if r in piv.columns]
            if not common:
                continue
            diag = [float(piv.loc[r, r]) for r in common if pd.notna(piv.loc[r, r])]
            hits = sum(1 for r in common if piv.loc[r].notna().any()
                       and (piv.loc[r].idxmin() if distance else piv.loc[r].idxmax()) == r)
            mean = sum(diag) / len(diag) if diag else float("nan")
            out.append(Finding(
                "alignment", f"{a} vs {b} ({metric}): same-name layers {fmt_num(mean)} on average; the same-name "
                             f"layer is the best match for {hits}/{len(common)} layers", store=str(store),
                data={"metric": metric, "mean_diagonal": mean, "best_match_hits": hits, "layers": len(common)},
                group=ACROSS))
    return out


def _dims(frame: pd.DataFrame) -> dict[tuple[str, str], int]:
    """Known width of (store, layer), from any row's params ('dim')."""
    out: dict[tuple[str, str], int] = {}
    if frame is None or not len(frame):
        return out
    for s, lay, lay_b, p in zip(frame["store"], frame["layer"], frame["layer_b"], frame["params"], strict=True):
        if not isinstance(p, dict) or s is None or lay is None:
            continue
        if isinstance(p.get("dim"), int):
            out[(str(s), str(lay))] = p["dim"]
        a, b = _stores_of(str(s), p)
        if isinstance(p.get("d_a"), int):
            out[(a, str(lay))] = p["d_a"]
        if isinstance(p.get("d_b"), int) and isinstance(lay_b, str):
            out[(b, lay_b)] = p["d_b"]
    return out


def cca_warnings(frame: pd.DataFrame) -> list[Finding]:
    """Similarities by a measure registered `cca_like` computed on fewer samples than the layer has dimensions
    (n < d: the canonical correlations degenerate to 1)."""
    df = analysis_rows(frame, "similarity")
    if not len(df):
        return []
    from repscope.similarity.registry import MEASURES

    cca_like = MEASURES.names(cca_like=True)  # the measures declared CCA-like, and their aliases
    cca_like += [alias for alias, name in MEASURES.aliases().items() if name in cca_like]
    dims = _dims(frame)
    bad: dict[tuple[str, str, int], set[str]] = {}
    for r in df[df["metric"].isin(cca_like)].itertuples():
        p = r.params if isinstance(r.params, dict) else {}
        n = p.get("n")
        a, b = _stores_of(str(r.store), p)
        d = max(dims.get((a, str(r.layer)), 0), dims.get((b, str(r.layer_b)), 0), int(p.get("dim", 0) or 0))
        if isinstance(n, int) and d and n < d:
            bad.setdefault((str(r.store), str(r.metric), n), set()).add(str(r.layer))
    return [Finding("cca", f"{store} ({metric}, n={n}): fewer samples than dimensions at {len(v)} layer(s); CCA is "
                           "degenerate there", store=store, severity="warning")
            for (store, metric, n), v in sorted(bad.items())]


def findings(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> list[Finding]:
    """The similarity plugin's findings hook (`AnalysisPlugin.findings`): within-store findings, then cross-model
    alignment (the order of their overview groups), then the CCA warnings."""
    items = similarity_findings(frame)
    return ([f for f in items if f.group == WITHIN] + [f for f in items if f.group != WITHIN]
            + cca_warnings(frame))
