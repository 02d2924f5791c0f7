"""The dictionary plugin's findings hook: SAE and quantizer quality (held-out FVU, mean L0, codebook usage, probe
accuracy drop) and the dead-latent warning.

Read from tidy result rows alone (`ResultsDB.frame()`).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from repscope.report.findings import Finding, analysis_rows, fmt_num, param_column

DEAD_LATENTS = 0.2  # warn above this fraction of dead SAE latents
SAE_GROUP, QUANTIZE_GROUP = "Sparse dictionaries", "Discrete codes"


def _wide(df: pd.DataFrame, keys: tuple[str, ...]) -> pd.DataFrame:
    """One row per (store, layer, *keys) with one column per metric (the last value recorded)."""
    d = df.copy()
    for k in keys:
        d[k] = param_column(d, k).astype(str)
    d["store"] = d["store"].fillna("").astype(str)
    d["layer"] = d["layer"].fillna("").astype(str)
    return d.pivot_table(index=["store", "layer", *keys], columns="metric", values="value",
                         aggfunc="last").reset_index()


def dictionary_findings(frame: pd.DataFrame) -> list[Finding]:
    """SAE and quantizer quality (held-out FVU, L0, codebook usage, probe drop) and the dead-latent warning (dead
    fraction above `DEAD_LATENTS`)."""
    out: list[Finding] = []
    sae = analysis_rows(frame, "sae")
    if len(sae):
        w = _wide(sae, ("arch", "k", "n_latents"))
        for r in w.to_dict("records"):
            name = f"{r['arch']} k={r['k']} m={r['n_latents']}"
            where = f"{r['store']} {r['layer']}".strip()
            text = f"SAE {name} on {where}: FVU {fmt_num(r.get('fvu'))} at mean L0 {fmt_num(r.get('mean_l0'))}"
            if r.get("dead_fraction") is not None and not pd.isna(r.get("dead_fraction")):
                text += f", dead latents {r['dead_fraction']:.0%}"
            if r.get("probe_acc_drop") is not None and not pd.isna(r.get("probe_acc_drop")):
                text += f", probe accuracy drop {r['probe_acc_drop']:+.3f}"
            out.append(Finding("sae", text, store=r["store"], layer=r["layer"],
                               data={k: r.get(k) for k in ("fvu", "mean_l0", "dead_fraction")}, group=SAE_GROUP))
            dead = r.get("dead_fraction")
            if dead is not None and not pd.isna(dead) and dead > DEAD_LATENTS:
                out.append(Finding("dead", f"SAE {name} on {where}: {dead:.0%} of latents are dead "
                                           f"(above {DEAD_LATENTS:.0%}); resample them or lower the expansion",
                                   store=r["store"], layer=r["layer"], severity="warning",
                                   data={"dead_fraction": float(dead)}))
    q = analysis_rows(frame, "quantize")
    if len(q):
        w = _wide(q, ("method", "bits"))
        for r in w.to_dict("records"):
            text = (f"quantizer {r['method']} ({r['bits']} bits) on {r['store']} {r['layer']}".rstrip()
                    + f": FVU {fmt_num(r.get('fvu'))}")
            if r.get("codebook_usage") is not None and not pd.isna(r.get("codebook_usage")):
                text += f", codebook usage {r['codebook_usage']:.0%}"
            if r.get("probe_acc_drop") is not None and not pd.isna(r.get("probe_acc_drop")):
                text += f", probe accuracy drop {r['probe_acc_drop']:+.3f}"
            out.append(Finding("quantize", text, store=r["store"], layer=r["layer"], data={"fvu": r.get("fvu")},
                               group=QUANTIZE_GROUP))
    return out


def findings(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> list[Finding]:
    """The dictionary plugin's findings hook (`AnalysisPlugin.findings`)."""
    return dictionary_findings(frame)
