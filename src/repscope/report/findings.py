"""The findings overview: a deterministic summary of what a study found, generated from result rows alone.

The spine holds only the machinery: the `Finding` type, the helpers plugins format findings with, the ordering and
the overview section. The findings themselves come from each analysis plugin's `findings(frame, artifacts)` hook
(`repscope.analyses.AnalysisPlugin.findings`), called in pipeline order (probes → similarity → geometry →
dictionaries → … → disentanglement). The overview lists the informational findings under their `group` heading (in
order of first appearance), then every warning (saturated estimators, rogue dimensions, dead latents, CCA with fewer
samples than dimensions, confidence intervals wider than the differences they should separate). No text is written
by hand per study.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import pandas as pd

from repscope.report.sections import Section


@dataclass
class Finding:
    """One line of the overview; `severity` is "info" or "warning"; `data` holds the numbers behind the text;
    `group` is the overview heading an info finding is listed under (None: its plugin's family title)."""

    kind: str
    text: str
    store: str | None = None
    target: str | None = None
    layer: str | None = None
    severity: str = "info"
    data: dict[str, Any] = field(default_factory=dict)
    group: str | None = None

    def as_dict(self) -> dict[str, Any]:
        """A JSON-able dict (the template reads these)."""
        return asdict(self)


# ---- helpers for the plugins' findings hooks -------------------------------------------------------------------------

def fmt_num(v: Any) -> str:
    """A number with 3 significant digits for finding texts; "n/a" for None or NaN."""
    return "n/a" if v is None or (isinstance(v, float) and math.isnan(v)) else f"{float(v):.3g}"


def param_column(df: pd.DataFrame, key: str) -> pd.Series:
    """The `params[key]` of every row (None where a row's params lack it), aligned with `df`."""
    return pd.Series([p.get(key) if isinstance(p, dict) else None for p in df["params"]], index=df.index,
                     dtype=object)


def analysis_rows(frame: pd.DataFrame, analysis: str) -> pd.DataFrame:
    """The rows of one analysis that carry a value (an empty frame with the usual columns when there are none)."""
    if frame is None or not len(frame):
        return pd.DataFrame(columns=["analysis", "metric", "value", "store", "layer", "layer_b", "params"])
    return frame[(frame["analysis"] == analysis) & frame["value"].notna()]


def ci_text(lo: float | None, hi: float | None) -> str:
    """" [lo, hi]" for a confidence interval, "" when either bound is missing."""
    return "" if lo is None or hi is None else f" [{fmt_num(lo)}, {fmt_num(hi)}]"


def intervals_overlap(a: tuple[float | None, float | None], b: tuple[float | None, float | None]) -> bool | None:
    """Whether two intervals overlap; None when either is missing."""
    if None in a or None in b:
        return None
    return not (a[0] > b[1] or b[0] > a[1])


# ---- ordering and the overview section -------------------------------------------------------------------------------

def findings(frame: pd.DataFrame, artifacts: list[dict[str, Any]] | None = None) -> list[Finding]:
    """Every plugin's findings in pipeline order (`repscope.analyses.plugins()`), informational ones first, then
    every warning (deterministic for a given set of rows). A finding without a `group` gets its plugin's family
    title."""
    from repscope.analyses import plugins

    if frame is None or not len(frame):
        return []
    items: list[Finding] = []
    for plugin in plugins():
        for f in plugin.report_findings(frame, artifacts or []):
            items.append(f if f.group is not None else dataclasses.replace(f, group=plugin.family_title))
    return [f for f in items if f.severity != "warning"] + [f for f in items if f.severity == "warning"]


def findings_section(frame: pd.DataFrame, artifacts: list[dict[str, Any]] | None = None) -> Section | None:
    """The overview section drawn first in the report (None when there is nothing to summarise): one group per
    heading, in order of first appearance, then the warnings."""
    items = findings(frame, artifacts)
    if not items:
        return None
    by_group: dict[str, list[dict[str, Any]]] = {}
    for f in items:
        if f.severity != "warning":
            by_group.setdefault(str(f.group), []).append(f.as_dict())
    groups: list[dict[str, Any]] = [{"title": title, "items": g} for title, g in by_group.items()]
    warn = [f.as_dict() for f in items if f.severity == "warning"]
    if warn:
        groups.append({"title": f"Warnings ({len(warn)})", "items": warn, "warning": True})
    return Section(title="Findings", analysis="findings", groups=groups,
                   text="Generated from the result rows: the best layer per target (with its confidence interval), "
                        "where the representation changes, geometry trends, dictionary quality, and what to "
                        "distrust.")


__all__ = ["Finding", "analysis_rows", "ci_text", "findings", "findings_section", "fmt_num", "intervals_overlap",
           "param_column"]
