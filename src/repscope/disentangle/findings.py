"""The disentanglement plugin's findings hook: per store, the layer with the highest MIG and its DCI
disentanglement. Read from tidy result rows alone (`ResultsDB.frame()`)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from repscope.report.findings import Finding, analysis_rows, fmt_num

GROUP = "Disentanglement"


def disentangle_findings(frame: pd.DataFrame) -> list[Finding]:
    """Per store: the layer with the highest MIG (Chen et al. 2018) and the DCI disentanglement (Eastwood &
    Williams 2018) at that layer."""
    df = analysis_rows(frame, "disentangle")
    out: list[Finding] = []
    for store, g in df.groupby("store", sort=True) if len(df) else []:
        mig = g[g["metric"] == "mig"]
        if not len(mig):
            continue
        best = mig.loc[mig["value"].idxmax()]
        dci = g[(g["metric"] == "dci_disentanglement") & (g["layer"] == best["layer"])]["value"]
        text = f"{store}: factors most disentangled at {best['layer']} (MIG {fmt_num(best['value'])}"
        text += f", DCI disentanglement {fmt_num(dci.mean())})" if len(dci) else ")"
        out.append(Finding("disentangle", text, store=str(store), layer=str(best["layer"]),
                           data={"mig": float(best["value"])}, group=GROUP))
    return out


def findings(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> list[Finding]:
    """The disentanglement plugin's findings hook (`AnalysisPlugin.findings`)."""
    return disentangle_findings(frame)
