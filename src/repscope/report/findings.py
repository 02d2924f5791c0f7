"""The findings overview: a deterministic summary of what a study found, generated from result rows alone.

Each `*_findings(frame)` function reads tidy rows (`ResultsDB.frame()`) and returns `Finding`s; `findings(frame)`
runs them all in pipeline order (probes → similarity → geometry → dictionaries → disentanglement) and appends the
warnings (saturated estimators, rogue dimensions, dead latents, CCA with fewer samples than dimensions, confidence
intervals wider than the differences they should separate). No text is written by hand per study.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from repscope.report.sections import Section, layer_order

PRIMARY = ("accuracy", "r2", "spearman")  # probe score metrics, in order of preference
JUMP = 0.1  # a probe score "jumps" at a layer when it rises by at least this much over the previous layer
DEAD_LATENTS = 0.2  # warn above this fraction of dead SAE latents
ROGUE_SHARE = 0.5  # warn when one dimension holds at least this share of the expected cosine
SATURATION_BITS = 0.05  # I(X;T) within this many bits of log2 n counts as saturated
CCA_MEASURES = ("cca", "mean_cca", "svcca", "pwcca")
SIMILARITY_PREFERENCE = ("linear_cka", "debiased_cka", "cka", "rsa", "mean_cca")


@dataclass
class Finding:
    """One line of the overview; `severity` is "info" or "warning"; `data` holds the numbers behind the text."""

    kind: str
    text: str
    store: str | None = None
    target: str | None = None
    layer: str | None = None
    severity: str = "info"
    data: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the template reads these)."""
        return asdict(self)


def _num(v: Any) -> str:
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.3g}"


def _param(df: pd.DataFrame, key: str) -> pd.Series:
    return pd.Series([p.get(key) if isinstance(p, dict) else None for p in df["params"]], index=df.index,
                     dtype=object)


def _rows(frame: pd.DataFrame, analysis: str) -> pd.DataFrame:
    if frame is None or not len(frame):
        return pd.DataFrame(columns=["analysis", "metric", "value", "store", "layer", "layer_b", "params"])
    return frame[(frame["analysis"] == analysis) & frame["value"].notna()]


def _ci(lo: float | None, hi: float | None) -> str:
    return "" if lo is None or hi is None else f" [{_num(lo)}, {_num(hi)}]"


def _overlap(a: tuple[float | None, float | None], b: tuple[float | None, float | None]) -> bool | None:
    """Whether two intervals overlap; None when either is missing."""
    if None in a or None in b:
        return None
    return not (a[0] > b[1] or b[0] > a[1])


# ---- probes ----------------------------------------------------------------------------------------------------------

def _probe_series(df: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Per (probe, layer): mean score and CI bounds (NaN when no CI rows), in model order of layers."""
    main = df[df["metric"] == metric].groupby(["probe", "layer"])["value"].mean().rename("score")
    out = main.to_frame()
    for side in ("low", "high"):
        ci = df[df["metric"] == f"{metric}_ci_{side}"].groupby(["probe", "layer"])["value"].mean()
        out[side] = ci.reindex(out.index)
    return out.reset_index()


def probe_findings(frame: pd.DataFrame) -> list[Finding]:
    """Per store and target: the best layer and score with its CI, concept depth, and the layers where it jumps."""
    df = _rows(frame, "probe")
    out: list[Finding] = []
    if not len(df):
        return out
    df = df.assign(target=_param(df, "target"), probe=_param(df, "probe").fillna("probe"))
    depth = _rows(frame, "concept_depth")
    depth = depth.assign(target=_param(depth, "target"), probe=_param(depth, "probe")) if len(depth) else depth
    for (store, target), g in df.groupby(["store", "target"], sort=True, dropna=False):
        target = None if pd.isna(target) else target  # rows without a 'target' param group under NaN
        metric = next((m for m in PRIMARY if m in set(g["metric"])), None)
        if metric is None:
            continue
        order = layer_order(g)
        rank = {n: i for i, n in enumerate(order)}
        s = _probe_series(g, metric)
        s = s.assign(_r=s["layer"].map(rank)).sort_values(["_r", "probe"], kind="stable")
        best = s.loc[s["score"].idxmax()]
        lo, hi = (None if pd.isna(best[k]) else float(best[k]) for k in ("low", "high"))
        probe = str(best["probe"])
        same = s[s["probe"] == best["probe"]]
        ties = [str(r.layer) for r in same.itertuples() if r.layer != best["layer"]
                and _overlap((lo, hi), (None if pd.isna(r.low) else r.low, None if pd.isna(r.high) else r.high))]
        jumps = []
        prev = None
        for r in same.itertuples():
            if prev is not None:
                delta = float(r.score - prev.score)
                separated = pd.isna(r.low) or pd.isna(prev.high) or r.low > prev.high
                if delta >= JUMP - 1e-9 and separated:
                    jumps.append({"layer": str(r.layer), "from": str(prev.layer), "delta": delta})
            prev = r
        data: dict[str, Any] = {"metric": metric, "probe": probe, "best_layer": str(best["layer"]),
                                "score": float(best["score"]), "ci_low": lo, "ci_high": hi, "ties": ties,
                                "jumps": jumps, "n_layers": len(order)}
        text = (f"{target or 'target'} in {store}: best layer {best['layer']} ({probe} {metric} "
                f"{_num(best['score'])}{_ci(lo, hi)})")
        d = depth[(depth["store"] == store) & (depth["target"] == target) & (depth["probe"] == best["probe"])] \
            if len(depth) else depth
        rel = d[d["metric"] == "relative_depth"]
        dl = d[d["metric"] == "depth"]
        if len(dl):
            data["depth_layer"] = str(dl.iloc[-1]["layer"])
            data["relative_depth"] = float(rel.iloc[-1]["value"]) if len(rel) else None
            text += f"; concept depth {data['depth_layer']}"
            if data["relative_depth"] is not None:
                text += f" (relative {_num(data['relative_depth'])})"
        if jumps:
            text += "; jumps at " + ", ".join(f"{j['layer']} (+{_num(j['delta'])})" for j in jumps)
        if ties:
            text += f"; {len(ties)} other layer(s) within its CI"
        out.append(Finding("probe", text, store=str(store), target=None if target is None else str(target),
                           layer=str(best["layer"]), data=data))
    tied = [f for f in out if f.data["ties"]]
    if tied:
        names = ", ".join(f"{f.target} ({f.store})" for f in tied[:6]) + ("…" if len(tied) > 6 else "")
        out.append(Finding(
            "ci", f"{len(tied)} of {len(out)} targets: the best layer's confidence interval overlaps other layers' "
                  f"— the best-layer choice is within noise for {names}", severity="warning",
            data={"tied": [(f.store, f.target, f.data["ties"]) for f in tied]}))
    return out


# ---- similarity ------------------------------------------------------------------------------------------------------

def _stores_of(store: str, params: dict[str, Any]) -> tuple[str, str]:
    b = params.get("store_b")
    if " vs " in store:
        a, _, bb = store.partition(" vs ")
        return a, b or bb
    return store, b or store


def similarity_findings(frame: pd.DataFrame) -> list[Finding]:
    """Most/least similar layer pairs within a store, adjacent-layer change, and cross-model alignment."""
    df = _rows(frame, "similarity")
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
            text = (f"{store} ({metric}): most similar pair {most[0]} ~ {most[1]} ({_num(most[2])}), least similar "
                    f"{least[0]} ~ {least[1]} ({_num(least[2])})")
            data: dict[str, Any] = {"metric": metric, "most": most[:2], "most_value": most[2], "least": least[:2],
                                    "least_value": least[2]}
            if adj:
                change = min(adj, key=lambda t: sign * t[2])
                text += f"; the representation changes most from {change[0]} to {change[1]} ({_num(change[2])})"
                data["largest_change"] = change[:2]
            out.append(Finding("similarity", text, store=str(store), data=data))
        else:  # across stores/models: alignment of same-name layers
            common = [r for r in rows_o if r in piv.columns]
            if not common:
                continue
            diag = [float(piv.loc[r, r]) for r in common if pd.notna(piv.loc[r, r])]
            hits = sum(1 for r in common if piv.loc[r].notna().any()
                       and (piv.loc[r].idxmin() if distance else piv.loc[r].idxmax()) == r)
            mean = sum(diag) / len(diag) if diag else float("nan")
            out.append(Finding(
                "alignment", f"{a} vs {b} ({metric}): same-name layers {_num(mean)} on average; the same-name layer "
                             f"is the best match for {hits}/{len(common)} layers", store=str(store),
                data={"metric": metric, "mean_diagonal": mean, "best_match_hits": hits, "layers": len(common)}))
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
    """CCA-family similarities computed on fewer samples than the layer has dimensions (they degenerate to 1)."""
    df = _rows(frame, "similarity")
    if not len(df):
        return []
    dims = _dims(frame)
    bad: dict[tuple[str, str, int], set[str]] = {}
    for r in df[df["metric"].isin(CCA_MEASURES)].itertuples():
        p = r.params if isinstance(r.params, dict) else {}
        n = p.get("n")
        a, b = _stores_of(str(r.store), p)
        d = max(dims.get((a, str(r.layer)), 0), dims.get((b, str(r.layer_b)), 0), int(p.get("dim", 0) or 0))
        if isinstance(n, int) and d and n < d:
            bad.setdefault((str(r.store), str(r.metric), n), set()).add(str(r.layer))
    return [Finding("cca", f"{store} ({metric}, n={n}): fewer samples than dimensions at {len(v)} layer(s); CCA is "
                           "degenerate there", store=store, severity="warning")
            for (store, metric, n), v in sorted(bad.items())]


# ---- geometry --------------------------------------------------------------------------------------------------------

def saturated_infoplane(frame: pd.DataFrame, tol: float = SATURATION_BITS) -> dict[str, list[str]]:
    """Per store: the layers whose binned I(X;T) is within `tol` bits of log₂ n (every sample its own bin)."""
    df = _rows(frame, "geometry")
    df = df[df["metric"] == "I_XT"] if len(df) else df
    out: dict[str, list[str]] = {}
    for r in df.itertuples():
        n = r.params.get("n") if isinstance(r.params, dict) else None
        if isinstance(n, (int, float)) and n > 1 and r.value >= math.log2(n) - tol:
            out.setdefault(str(r.store), []).append(str(r.layer))
    return out


def _trend(g: pd.DataFrame, metric: str) -> dict[str, Any] | None:
    d = g[g["metric"] == metric]
    if d["layer"].nunique() < 2:
        return None
    order = layer_order(d)
    v = d.groupby("layer")["value"].mean().reindex(order)
    return {"first": (order[0], float(v.iloc[0])), "last": (order[-1], float(v.iloc[-1])),
            "max": (str(v.idxmax()), float(v.max())), "min": (str(v.idxmin()), float(v.min()))}


def geometry_findings(frame: pd.DataFrame) -> list[Finding]:
    """Intrinsic dimension and anisotropy across depth per store; rogue-dimension and saturated-MI warnings."""
    df = _rows(frame, "geometry")
    out: list[Finding] = []
    if not len(df):
        return out
    for store, g in df.groupby("store", sort=True):
        parts = []
        data: dict[str, Any] = {}
        for metric, label in (("twonn_id", "intrinsic dimension (TwoNN)"), ("anisotropy", "anisotropy")):
            t = _trend(g, metric)
            if t is None:
                continue
            data[metric] = t
            s = f"{label} {_num(t['first'][1])} at {t['first'][0]} → {_num(t['last'][1])} at {t['last'][0]}"
            if t["max"][0] not in (t["first"][0], t["last"][0]):
                s += f" (peak {_num(t['max'][1])} at {t['max'][0]})"
            parts.append(s)
        if parts:
            out.append(Finding("geometry", f"{store}: " + "; ".join(parts), store=str(store), data=data))
        rogue = g[(g["metric"] == "rogue_top1_share") & (g["value"] >= ROGUE_SHARE)]
        if len(rogue):
            layers = [str(x) for x in layer_order(rogue)]
            top = float(rogue["value"].max())
            out.append(Finding("rogue", f"{store}: one rogue dimension holds ≥ {ROGUE_SHARE:.0%} of the expected "
                                        f"cosine at {len(layers)} layer(s) (up to {top:.0%}: {', '.join(layers[:4])}); "
                                        "cosine similarities there mostly measure that dimension",
                               store=str(store), severity="warning", data={"layers": layers, "max_share": top}))
    for store, layers in sorted(saturated_infoplane(frame).items()):
        out.append(Finding("saturated", f"{store}: binned I(X;T) saturates at log₂ n in {len(layers)} layer(s) "
                                        f"({', '.join(layers[:4])}{'…' if len(layers) > 4 else ''}); the information "
                                        "plane there reflects the binning, not the network",
                           store=store, severity="warning", data={"layers": layers}))
    return out


# ---- dictionaries, disentanglement -----------------------------------------------------------------------------------

def _wide(df: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    d = df.copy()
    for k in keys:
        d[k] = _param(d, k).astype(str)
    d["store"] = d["store"].fillna("").astype(str)
    d["layer"] = d["layer"].fillna("").astype(str)
    return d.pivot_table(index=["store", "layer", *keys], columns="metric", values="value",
                         aggfunc="last").reset_index()


def dictionary_findings(frame: pd.DataFrame) -> list[Finding]:
    """SAE and quantizer quality (held-out FVU, L0, codebook usage, probe drop) and the dead-latent warning."""
    out: list[Finding] = []
    sae = _rows(frame, "sae")
    if len(sae):
        w = _wide(sae, ("arch", "k", "n_latents"))
        for r in w.to_dict("records"):
            name = f"{r['arch']} k={r['k']} m={r['n_latents']}"
            where = f"{r['store']} {r['layer']}".strip()
            text = f"SAE {name} on {where}: FVU {_num(r.get('fvu'))} at mean L0 {_num(r.get('mean_l0'))}"
            if r.get("dead_fraction") is not None and not pd.isna(r.get("dead_fraction")):
                text += f", dead latents {r['dead_fraction']:.0%}"
            if r.get("probe_acc_drop") is not None and not pd.isna(r.get("probe_acc_drop")):
                text += f", probe accuracy drop {r['probe_acc_drop']:+.3f}"
            out.append(Finding("sae", text, store=r["store"], layer=r["layer"],
                               data={k: r.get(k) for k in ("fvu", "mean_l0", "dead_fraction")}))
            dead = r.get("dead_fraction")
            if dead is not None and not pd.isna(dead) and dead > DEAD_LATENTS:
                out.append(Finding("dead", f"SAE {name} on {where}: {dead:.0%} of latents are dead "
                                           f"(above {DEAD_LATENTS:.0%}); resample them or lower the expansion",
                                   store=r["store"], layer=r["layer"], severity="warning",
                                   data={"dead_fraction": float(dead)}))
    q = _rows(frame, "quantize")
    if len(q):
        w = _wide(q, ("method", "bits"))
        for r in w.to_dict("records"):
            text = (f"quantizer {r['method']} ({r['bits']} bits) on {r['store']} {r['layer']}".rstrip()
                    + f": FVU {_num(r.get('fvu'))}")
            if r.get("codebook_usage") is not None and not pd.isna(r.get("codebook_usage")):
                text += f", codebook usage {r['codebook_usage']:.0%}"
            if r.get("probe_acc_drop") is not None and not pd.isna(r.get("probe_acc_drop")):
                text += f", probe accuracy drop {r['probe_acc_drop']:+.3f}"
            out.append(Finding("quantize", text, store=r["store"], layer=r["layer"], data={"fvu": r.get("fvu")}))
    return out


def disentangle_findings(frame: pd.DataFrame) -> list[Finding]:
    """Per store: the layer with the highest MIG and its DCI disentanglement."""
    df = _rows(frame, "disentangle")
    out: list[Finding] = []
    for store, g in df.groupby("store", sort=True) if len(df) else []:
        mig = g[g["metric"] == "mig"]
        if not len(mig):
            continue
        best = mig.loc[mig["value"].idxmax()]
        dci = g[(g["metric"] == "dci_disentanglement") & (g["layer"] == best["layer"])]["value"]
        text = f"{store}: factors most disentangled at {best['layer']} (MIG {_num(best['value'])}"
        text += f", DCI disentanglement {_num(dci.mean())})" if len(dci) else ")"
        out.append(Finding("disentangle", text, store=str(store), layer=str(best["layer"]),
                           data={"mig": float(best["value"])}))
    return out


# ---- all -------------------------------------------------------------------------------------------------------------

GROUPS = [("probe", "Where each target is decodable"), ("similarity", "Layer similarity"),
          ("alignment", "Cross-model alignment"), ("geometry", "Geometry across depth"),
          ("sae", "Sparse dictionaries"), ("quantize", "Discrete codes"), ("disentangle", "Disentanglement")]


def findings(frame: pd.DataFrame) -> list[Finding]:
    """Every finding in pipeline order, then every warning (deterministic for a given set of rows)."""
    if frame is None or not len(frame):
        return []
    items = (probe_findings(frame) + similarity_findings(frame) + cca_warnings(frame) + geometry_findings(frame)
             + dictionary_findings(frame) + disentangle_findings(frame))
    return [f for f in items if f.severity != "warning"] + [f for f in items if f.severity == "warning"]


def findings_section(frame: pd.DataFrame) -> Section | None:
    """The overview section drawn first in the report (None when there is nothing to summarise)."""
    items = findings(frame)
    if not items:
        return None
    groups = []
    for kind, title in GROUPS:
        g = [f.as_dict() for f in items if f.kind == kind and f.severity != "warning"]
        if g:
            groups.append({"title": title, "items": g})
    warn = [f.as_dict() for f in items if f.severity == "warning"]
    if warn:
        groups.append({"title": f"Warnings ({len(warn)})", "items": warn, "warning": True})
    return Section(title="Findings", analysis="findings", groups=groups,
                   text="Generated from the result rows: the best layer per target (with its confidence interval), "
                        "where the representation changes, geometry trends, dictionary quality, and what to "
                        "distrust.")
