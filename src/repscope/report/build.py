"""Build one self-contained offline HTML report from the results DB (Jinja2 + Plotly, plotly.js inlined once).

Layout: the generated findings overview first, then every plugin's sections in pipeline order
(`repscope.analyses.plugins()`), grouped by family in the navigation with counts, then analyses no plugin claims.
Every table carries a CSV download (data URI) and every trace, table row, card and finding carries its store,
target and layer, which the page's offline filters use.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import plotly.io as pio
from jinja2 import Environment, PackageLoader, select_autoescape
from plotly.offline import get_plotlyjs

from repscope import __version__
from repscope.atomic import atomic_write_text
from repscope.report.filters import FilterOptions, annotate_figure, filter_options, row_tags
from repscope.report.findings import findings_section
from repscope.report.provenance import provenance_section
from repscope.report.sections import Section, generic_sections
from repscope.report.tables import render_table
from repscope.results import ResultsDB

SPINE_TITLES = {"findings": "Findings", "other": "Other analyses"}  # families the spine draws; plugins: `title`


def family_titles() -> dict[str, str]:
    """Navigation heading per family: the spine's own, then each plugin's `family_title`."""
    from repscope.analyses import plugins

    return {**SPINE_TITLES, **{p.name: p.family_title for p in plugins()}}


def _plugin_sections(frame, artifacts) -> tuple[list[tuple[str, Section]], set[str]]:
    """(family, section) for every plugin in pipeline order (`repscope.analyses.plugins()`), and the analyses
    they claim. The spine's `stores` plugin draws the provenance cards unless it declares its own sections."""
    from repscope.analyses import plugins

    sections: list[tuple[str, Section]] = []
    handled: set[str] = set()
    for plugin in plugins():
        if plugin.name == "stores" and plugin.report is None:
            secs, done = provenance_section(frame, artifacts)
        else:
            secs, done = plugin.report_sections(frame, artifacts)
        sections.extend((plugin.name, s) for s in secs)
        handled.update(done)
    return sections, handled


def _figure_json(fig) -> str:
    # Escape every '<' (it occurs only inside JSON strings) so a user string can neither close the <script> element
    # ('</script>') nor switch the HTML parser into its script-escape states ('<!--').
    return pio.to_json(fig, validate=False).replace("<", "\\u003c")


def collect_sections(frame: pd.DataFrame, artifacts: list[dict[str, Any]]) -> list[tuple[str, Section]]:
    """(family, section) in report order: findings, plugin sections in pipeline order, then unclaimed analyses."""
    out: list[tuple[str, Section]] = []
    overview = findings_section(frame, artifacts)
    if overview is not None:
        out.append(("findings", overview))
    secs, handled = _plugin_sections(frame, artifacts)
    out.extend(secs)
    rest = frame[~frame["analysis"].isin(handled)] if len(frame) else frame
    out.extend(("other", s) for s in (generic_sections(rest) if len(rest) else []))
    return out


def _nav(rendered: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Navigation groups (family title, count, links) in report order."""
    titles = family_titles()
    groups: list[dict[str, Any]] = []
    for s in rendered:
        if not groups or groups[-1]["family"] != s["family"]:
            groups.append({"family": s["family"], "title": titles.get(s["family"], s["family"].title()),
                           "links": []})
        groups[-1]["links"].append({"id": s["id"], "title": s["title"], "figures": len(s["figure_ids"]),
                                    "tables": len(s["tables"])})
    for g in groups:
        g["count"] = len(g["links"])
    return groups


def render_sections(sections: list[tuple[str, Section]],
                    opts: FilterOptions) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """Template-ready sections and figure JSON (traces tagged with store/target for the filters)."""
    figures: list[dict[str, str]] = []
    rendered = []
    for i, (family, s) in enumerate(sections):
        ids = []
        for fig in s.figures:
            fid = f"fig{len(figures)}"
            annotate_figure(fig, opts)
            figures.append({"id": fid, "json": _figure_json(fig)})
            ids.append(fid)
        tables = [render_table(t, f"{s.analysis}-{i + 1}-{k + 1}", opts) for k, t in enumerate(s.tables)]
        cards = [{**c, "tags": row_tags({"store": c.get("store") or c.get("title")}, opts)} for c in s.cards]
        groups = [{**g, "items": [{**it, "tags": row_tags(it, opts)} for it in g["items"]]} for g in s.groups]
        rendered.append({"id": f"sec{i + 1}", "family": family, "title": s.title, "analysis": s.analysis,
                         "text": s.text, "notes": s.notes, "figure_ids": ids, "tables": tables, "cards": cards,
                         "groups": groups})
    return rendered, figures


def render_html(template: str, **context: Any) -> str:
    """Render a template of this package (autoescaped) with Plotly inlined once."""
    env = Environment(loader=PackageLoader("repscope.report", "templates"), autoescape=select_autoescape(["j2"]))
    return env.get_template(template).render(plotlyjs=get_plotlyjs(), version=__version__,
                                             created=datetime.now(UTC).isoformat(timespec="seconds"), **context)


def write_atomic(out: str | os.PathLike, html: str) -> Path:
    """Write `html` to `out` through a unique temporary file (a reader never sees half a report). An existing file
    at `out` is replaced only when it is a report repscope wrote (`ownership.check_report_output`)."""
    from repscope.store.ownership import check_report_output

    out = check_report_output(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    return atomic_write_text(out, html)


def build_report(db: ResultsDB | str | os.PathLike | None = None, out: str | os.PathLike = "report.html",
                 study: str | None = None, title: str = "repscope report") -> Path:
    """Render every analysis in the DB (optionally one study) into one offline HTML file; returns its path."""
    db = db if isinstance(db, ResultsDB) else ResultsDB(db)
    frame = db.frame(study=study)
    artifacts = db.artifacts(study=study)
    opts = filter_options(frame, artifacts)
    rendered, figures = render_sections(collect_sections(frame, artifacts), opts)
    html = render_html(
        "report.html.j2", title=title, sections=rendered, nav=_nav(rendered), figures=figures, filters=opts.public(),
        n_rows=len(frame), studies=sorted({str(s) for s in frame["study"].unique()}) if len(frame) else [],
    )
    return write_atomic(out, html)

