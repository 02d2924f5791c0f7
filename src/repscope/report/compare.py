"""Study against study: the metrics two runs share, side by side, with deltas, CIs and an "exceeds its CIs" flag.

Two runs are two results DBs (`repscope report --compare DB_A DB_B`) or two studies of one DB
(`repscope report --compare-studies A B`). Rows match on (store, layer, layer_b, analysis, metric, setting), where
the setting is the identifying params (target, probe, measure, …), not the run's incidental ones (seed, n, timing).
When the two runs share no store name and each has exactly one, those two stores are paired (seed 0 vs seed 1 of the
same study). A difference *exceeds its CIs* when both sides carry a confidence interval
(`<metric>_ci_low`/`_ci_high` rows) and the two intervals do not overlap.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.graph_objects as go

from repscope.errors import ConfigError
from repscope.report.filters import annotate_figure, filter_options
from repscope.report.tables import render_table
from repscope.results import ResultsDB

# params that say *what* was measured; everything else (seed, n, timings, best_layer …) may differ between runs
SETTING_KEYS = ("target", "probe", "measure", "kind", "arch", "k", "n_latents", "expansion", "method", "bits",
                "shots", "label", "threshold", "factor", "members", "n_anchors", "compare", "metric", "eval")
KEY = ["store", "layer", "layer_b", "analysis", "metric", "setting"]
CI_SUFFIXES = ("_ci_low", "_ci_high")


def setting_of(params: Any) -> str:
    """The identifying params of a row as a stable string ('probe=logistic, target=topic')."""
    p = params if isinstance(params, dict) else {}
    return ", ".join(f"{k}={p[k]}" for k in sorted(SETTING_KEYS) if k in p and not isinstance(p[k], (dict, list)))


def _keyed(frame: pd.DataFrame, store_map: dict[str, str] | None = None) -> pd.DataFrame:
    """Mean value per key, with its CI bounds (NaN where the run recorded none)."""
    if frame is None or not len(frame):
        return pd.DataFrame(columns=[*KEY, "value", "ci_low", "ci_high"])
    d = frame[frame["value"].notna()].copy()
    d["setting"] = [setting_of(p) for p in d["params"]]
    if store_map:
        d["store"] = d["store"].map(lambda s: store_map.get(s, s) if isinstance(s, str) else s)
    for c in ("store", "layer", "layer_b"):
        d[c] = d[c].fillna("").astype(str)
    base = d["metric"].str.replace(r"_ci_(low|high)$", "", regex=True)
    side = d["metric"].str.extract(r"_ci_(low|high)$")[0]
    d = d.assign(metric=base, side=side.fillna("value"))
    w = d.pivot_table(index=KEY, columns="side", values="value", aggfunc="mean").reset_index()
    w.columns.name = None
    for c in ("value", "low", "high"):
        if c not in w:
            w[c] = float("nan")
    w = w[w["value"].notna()]
    order = d.drop_duplicates(KEY)[KEY + ["layer_index"]] if "layer_index" in d else None
    if order is not None:
        w = w.merge(order, on=KEY, how="left")
    return w.rename(columns={"low": "ci_low", "high": "ci_high"})


def auto_store_map(a: pd.DataFrame, b: pd.DataFrame) -> dict[str, str]:
    """{store of B: store of A} when the runs share no store and each has exactly one; else {}."""
    sa = {s for s in a["store"].dropna().unique()} if len(a) else set()
    sb = {s for s in b["store"].dropna().unique()} if len(b) else set()
    if sa and sb and not sa & sb and len(sa) == 1 and len(sb) == 1:
        return {next(iter(sb)): next(iter(sa))}
    return {}


def compare_frames(a: pd.DataFrame, b: pd.DataFrame, store_map: dict[str, str] | None = None) -> pd.DataFrame:
    """Rows both runs share: value_a, value_b, delta = b − a, each side's CI, and `exceeds` (True: the CIs do not
    overlap; False: they do; None: a side has no CI). `store_map` renames B's stores to A's before matching
    (default: `auto_store_map`)."""
    store_map = auto_store_map(a, b) if store_map is None else store_map
    ka, kb = _keyed(a), _keyed(b, store_map)
    m = ka.merge(kb, on=KEY, suffixes=("_a", "_b"), how="inner")
    m["delta"] = m["value_b"] - m["value_a"]
    has_ci = m[["ci_low_a", "ci_high_a", "ci_low_b", "ci_high_b"]].notna().all(axis=1)
    apart = (m["ci_low_b"] > m["ci_high_a"]) | (m["ci_low_a"] > m["ci_high_b"])
    m["exceeds"] = [bool(x) if ok else None for x, ok in zip(apart, has_ci, strict=True)]
    idx = m["layer_index_a"] if "layer_index_a" in m else pd.Series(float("nan"), index=m.index)
    m = m.assign(_i=idx.astype(float)).sort_values(["analysis", "store", "setting", "metric", "_i", "layer"],
                                                    kind="stable", na_position="last")
    cols = [*KEY, "value_a", "value_b", "delta", "ci_low_a", "ci_high_a", "ci_low_b", "ci_high_b", "exceeds"]
    return m[cols].reset_index(drop=True)


def _target_of(setting: str) -> str | None:
    for part in setting.split(", "):
        if part.startswith("target="):
            return part[len("target="):]
    return None


def delta_figures(cmp: pd.DataFrame) -> list[go.Figure]:
    """Per-layer deltas (B − A) of every metric with CIs on both sides, error bars = the two CI half-widths added."""
    figs = []
    d = cmp[cmp["exceeds"].notna() & (cmp["layer"] != "") & (cmp["layer_b"] == "")]
    for (analysis, metric), g in d.groupby(["analysis", "metric"], sort=True):
        fig = go.Figure()
        for (store, setting), s in g.groupby(["store", "setting"], sort=True):
            err = ((s["ci_high_a"] - s["ci_low_a"]) + (s["ci_high_b"] - s["ci_low_b"])) / 2
            fig.add_trace(go.Scatter(
                x=s["layer"].tolist(), y=s["delta"].tolist(), mode="lines+markers", name=f"{store} {setting}",
                error_y=dict(type="data", array=err.tolist()),
                marker={"symbol": ["diamond" if e else "circle-open" for e in s["exceeds"]], "size": 9},
                meta={"stores": [store], "targets": [t] if (t := _target_of(setting)) else []}))
        fig.add_hline(y=0, line={"color": "#888", "dash": "dot"})
        fig.update_layout(title=f"{analysis}: Δ{metric} (B − A) per layer; ◆ = exceeds the CIs", height=380,
                          xaxis_title="layer", yaxis_title=f"Δ {metric}", margin=dict(l=50, r=20, t=40, b=80))
        figs.append(fig)
    return figs


def _datasets(db: ResultsDB | str | os.PathLike, study: str | None) -> dict[str, dict[str, Any]]:
    """{store name: its recorded provenance} of a run (artifacts of analysis 'stores'; the newest record wins)."""
    from repscope.report.provenance import ANALYSIS as STORES

    rdb = db if isinstance(db, ResultsDB) else ResultsDB(db)
    return {str(a["name"]): a["payload"] for a in rdb.artifacts(analysis=STORES, study=study)
            if isinstance(a.get("payload"), dict)}


def check_same_inputs(cmp: pd.DataFrame, prov_a: dict[str, dict[str, Any]], prov_b: dict[str, dict[str, Any]],
                      store_map: dict[str, str] | None = None) -> None:
    """Refuse (ConfigError) when a store whose rows are compared (alone, or inside 'A vs B' / 'old → new' keys) was
    extracted from different data in the two runs: both runs recorded its provenance and the dataset content
    hashes differ. Runs without provenance records are not checked."""
    back = {a: b for b, a in (store_map or {}).items()}
    involved: set[str] = set()
    for key in cmp["store"].unique():
        involved |= {str(key), *re.split(r" vs | → ", str(key))}
    for name in sorted(involved):
        pa, pb = prov_a.get(name) or {}, prov_b.get(back.get(name, name)) or {}
        ha, hb = pa.get("dataset_hash"), pb.get("dataset_hash")
        if ha and hb and ha != hb:
            da, db = (f"{p.get('dataset_spec') or p.get('dataset')} #{str(p['dataset_hash'])[:8]}, "
                      f"{p.get('n_rows')} rows" for p in (pa, pb))
            raise ConfigError(f"store '{name}' holds different samples in the two runs (A: {da}; B: {db}), so its "
                              "metrics do not pair; compare runs over the same data, or pass --unpaired to compare "
                              "them anyway")


def _load(db: ResultsDB | str | os.PathLike, study: str | None) -> pd.DataFrame:
    rdb = db if isinstance(db, ResultsDB) else ResultsDB(db)
    if not Path(rdb.path).exists():
        raise ConfigError(f"results DB '{rdb.path}' does not exist; pass two existing DB files to --compare")
    frame = rdb.frame(study=study)
    if not len(frame):
        raise ConfigError(f"results DB '{rdb.path}'" + (f" has no rows of study '{study}'" if study else " is empty")
                          + "; run the analyses first or pick another study")
    return frame


def build_compare(db_a: ResultsDB | str | os.PathLike, db_b: ResultsDB | str | os.PathLike | None = None,
                  out: str | os.PathLike = "compare.html", study_a: str | None = None, study_b: str | None = None,
                  store_map: dict[str, str] | None = None, title: str = "repscope comparison",
                  unpaired: bool = False) -> Path:
    """Write the comparison page of run A (DB `db_a`, study `study_a`) against run B (`db_b` or the same DB,
    `study_b`); returns its path. A store compared across runs must hold the same samples in both
    (`check_same_inputs`) unless `unpaired`."""
    from repscope.report.build import _figure_json, render_html, write_atomic

    a = _load(db_a, study_a)
    b = _load(db_b if db_b is not None else db_a, study_b)
    store_map = auto_store_map(a, b) if store_map is None else store_map
    cmp = compare_frames(a, b, store_map)
    if not len(cmp):
        raise ConfigError("the two runs share no (store, layer, analysis, metric, setting); compare runs of the same "
                          "study, or pair the stores with --pair STORE_B=STORE_A")
    if not unpaired:
        check_same_inputs(cmp, _datasets(db_a, study_a), _datasets(db_b if db_b is not None else db_a, study_b),
                          store_map)
    label = {"a": _label(db_a, study_a), "b": _label(db_b if db_b is not None else db_a, study_b)}
    opts = filter_options(pd.concat([a, b], ignore_index=True))
    figs = delta_figures(cmp)
    figures = []
    for i, fig in enumerate(figs):
        annotate_figure(fig, opts)
        figures.append({"id": f"fig{i}", "json": _figure_json(fig)})
    table = cmp.assign(target=[_target_of(s) for s in cmp["setting"]])
    exceed = cmp[cmp["exceeds"] == True]  # noqa: E712 - a column of True/False/None
    summary = {"shared": len(cmp), "with_ci": int(cmp["exceeds"].notna().sum()), "exceeds": len(exceed),
               "higher_b": int((exceed["delta"] > 0).sum()), "lower_b": int((exceed["delta"] < 0).sum())}
    tables = {"exceeds": render_table(exceed.reset_index(drop=True), "exceeds", opts),
              "all": render_table(table, "shared-metrics", opts)}
    html = render_html("compare.html.j2", title=title, label=label, summary=summary, tables=tables,
                       figure_ids=[f["id"] for f in figures], figures=figures, filters=opts.public(),
                       n_rows=len(a) + len(b))
    return write_atomic(out, html)


def _label(db: ResultsDB | str | os.PathLike, study: str | None) -> str:
    path = db.path if isinstance(db, ResultsDB) else Path(db)
    return f"{path}" + (f" · study {study}" if study else "")


def parse_pairs(pairs: list[str] | None) -> dict[str, str] | None:
    """--pair STORE_B=STORE_A options as {store of B: store of A} (None when none was given)."""
    if not pairs:
        return None
    out = {}
    for p in pairs:
        b, sep, a = p.partition("=")
        if not sep or not a or not b:
            raise ConfigError(f"--pair '{p}': write STORE_B=STORE_A, e.g. --pair digits_mlp_s1=digits_mlp_s0")
        out[b] = a
    return out


__all__ = ["KEY", "SETTING_KEYS", "auto_store_map", "build_compare", "check_same_inputs", "compare_frames",
           "delta_figures", "parse_pairs", "setting_of"]
