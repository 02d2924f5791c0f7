"""Build one self-contained offline HTML report from the results DB (Jinja2 + Plotly, plotly.js inlined)."""

from __future__ import annotations

import importlib
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import plotly.io as pio
from jinja2 import Environment, PackageLoader, select_autoescape
from plotly.offline import get_plotlyjs

from repscope import __version__
from repscope.report.sections import Section, generic_sections, set_layer_rank
from repscope.results import ResultsDB

PLUGINS = ["repscope.probe", "repscope.similarity", "repscope.geometry", "repscope.dictionary"]


def _plugin_sections(frame, artifacts) -> tuple[list[Section], set[str]]:
    sections: list[Section] = []
    handled: set[str] = set()
    for pkg in PLUGINS:
        try:
            mod = importlib.import_module(pkg + ".report")
        except ModuleNotFoundError as err:
            if err.name == pkg + ".report":
                continue
            raise
        secs, done = mod.report_sections(frame, artifacts)
        sections.extend(secs)
        handled.update(done)
    return sections, handled


def _figure_json(fig) -> str:
    # Escape '</' so a user string inside the JSON can never close the <script> element.
    return pio.to_json(fig, validate=False).replace("</", "<\\/")


def build_report(db: ResultsDB | str | os.PathLike | None = None, out: str | os.PathLike = "report.html",
                 study: str | None = None, title: str = "repscope report") -> Path:
    """Render every analysis in the DB (optionally one study) into one offline HTML file; returns its path."""
    db = db if isinstance(db, ResultsDB) else ResultsDB(db)
    frame = db.frame(study=study)
    artifacts = db.artifacts(study=study)
    set_layer_rank(frame)
    sections, handled = _plugin_sections(frame, artifacts)
    rest = frame[~frame["analysis"].isin(handled)] if len(frame) else frame
    sections.extend(generic_sections(rest) if len(rest) else [])
    sections.sort(key=lambda s: s.analysis)
    figures = []
    rendered = []
    for s in sections:
        ids = []
        for fig in s.figures:
            fid = f"fig{len(figures)}"
            figures.append({"id": fid, "json": _figure_json(fig)})
            ids.append(fid)
        tables = [
            {"columns": [str(c) for c in t.columns],
             "rows": [[_fmt(v) for v in r] for r in t.itertuples(index=False)]}
            for t in s.tables
        ]
        rendered.append({"title": s.title, "analysis": s.analysis, "text": s.text, "figure_ids": ids,
                         "tables": tables, "cards": s.cards})
    env = Environment(loader=PackageLoader("repscope.report", "templates"), autoescape=select_autoescape(["j2"]))
    html = env.get_template("report.html.j2").render(
        title=title, sections=rendered, figures=figures, plotlyjs=get_plotlyjs(), version=__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"), n_rows=len(frame),
        studies=sorted({str(s) for s in frame["study"].unique()}) if len(frame) else [],
    )
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".html.tmp")
    tmp.write_text(html, encoding="utf-8")
    tmp.replace(out)
    return out


def _fmt(v) -> str:
    if isinstance(v, float):
        return "" if v != v else f"{v:.4g}"
    if isinstance(v, (dict, list)):
        return json.dumps(v)
    return "" if v is None else str(v)
