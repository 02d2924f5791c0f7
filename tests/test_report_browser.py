"""Open the HTML report in headless Chromium: charts render, no JS errors, user text escaped, fully offline."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from browser import CHROMIUM_PACKAGE, Chromium, find_chromium, png_size

from repscope.report.build import build_report
from repscope.results import ResultsDB
from repscope.results.db import Row

ARTIFACTS = Path(__file__).parent / "artifacts"
EVIL_STORE = '<script>alert(1)</script>"quotes"<img src=x onerror="window.PWNED=1">'
LAYERS = ["embeddings", *[f"encoder.layer.{i}" for i in range(6)]]
PAIR_LAYERS = ["layer1", "layer2", "layer3", "avgpool"]
LOCAL_SCHEMES = ("file:", "data:", "about:", "blob:")

# Run before any page script: record alert() calls instead of blocking on a dialog.
PRELUDE = "window.__alerts = []; window.alert = function (m) { window.__alerts.push(String(m)); };"


def _fill_db(path: Path) -> ResultsDB:
    db = ResultsDB(path, study="browser")
    rows = []
    for s, store in enumerate(["clean_store", EVIL_STORE]):
        for i, layer in enumerate(LAYERS):
            rows.append(Row(analysis="browsercheck_layers", metric="accuracy", value=0.5 + 0.06 * i - 0.05 * s,
                            layer=layer, store=store, model="m", params={"target": "topic"}))
    for i, a in enumerate(PAIR_LAYERS):
        for j, b in enumerate(PAIR_LAYERS):
            rows.append(Row(analysis="browsercheck_pairs", metric="cka", value=1.0 / (1 + abs(i - j)),
                            layer=a, layer_b=b, store=EVIL_STORE, model="m"))
    db.record_rows(rows)
    return db


def _chromium_or_fail() -> str:
    binary = find_chromium()
    if binary is None:
        pytest.fail(f"headless Chromium not found (/usr/bin/chromium): install the Debian package "
                    f"'{CHROMIUM_PACKAGE}' (apt-get install -y {CHROMIUM_PACKAGE}) or set REPSCOPE_CHROMIUM")
    return binary


@pytest.mark.browser
def test_report_renders_in_headless_chromium(tmp_path):
    binary = _chromium_or_fail()
    db = _fill_db(tmp_path / "r.duckdb")
    out = build_report(db, tmp_path / "report.html", title='browser test "report" <b>x</b>')
    html = out.read_text(encoding="utf-8")
    # user text never appears as live markup in the HTML source
    assert "<script>alert(1)</script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html

    with Chromium(binary, tmp_path / "profile", width=1280, height=900) as br:
        page = br.new_page()
        for domain in ("Page", "Runtime", "Log", "Network"):
            br.call(f"{domain}.enable", session=page)
        br.call("Page.addScriptToEvaluateOnNewDocument", {"source": PRELUDE}, session=page)
        br.call("Emulation.setDeviceMetricsOverride",
                {"width": 1280, "height": 900, "deviceScaleFactor": 1, "mobile": False}, session=page)
        nav = br.call("Page.navigate", {"url": out.resolve().as_uri()}, session=page)
        assert "errorText" not in nav, nav
        br.wait_event("Page.loadEventFired", timeout=60)
        n_figures = br.evaluate("window.REPSCOPE_FIGURES", page)
        assert isinstance(n_figures, int) and n_figures >= 2, n_figures  # ≥ one line chart + one heatmap
        rendered = br.evaluate(
            "new Promise(function (ok) { var t0 = Date.now(); (function poll() {"
            " if (window.REPSCOPE_RENDERED >= window.REPSCOPE_FIGURES || Date.now() - t0 > 30000)"
            " ok(window.REPSCOPE_RENDERED); else setTimeout(poll, 50); })(); })", page, timeout=40)
        assert rendered == n_figures, f"{rendered} of {n_figures} figures rendered"
        dom = br.evaluate("""(function () {
            var figs = Array.from(document.querySelectorAll('div.fig'));
            return {
              figs: figs.length,
              withSvg: figs.filter(function (d) { return d.querySelector('.main-svg') !== null; }).length,
              lines: document.querySelectorAll('g.scatterlayer path.js-line').length,
              heatmaps: document.querySelectorAll('g.hm image').length,
              xticks: Array.from(document.querySelectorAll('g.xtick text')).map(function (t) { return t.textContent; }),
              alerts: window.__alerts,
              pwned: window.PWNED === undefined ? null : window.PWNED,
              imgs: document.querySelectorAll('img').length,
              badScripts: Array.from(document.scripts).filter(function (s) {
                return s.textContent.trim() === 'alert(1)'; }).length,
              text: document.body.innerText,
              title: document.title
            };
        })()""", page)
        # let late errors / requests surface, then take a full-page screenshot
        br.pump(0.5)
        shot = br.call("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True},
                       session=page, timeout=60)
        events = list(br.events)

    # charts rendered
    assert dom["figs"] == n_figures and dom["withSvg"] == n_figures, dom
    assert dom["lines"] >= 2 and dom["heatmaps"] >= 1, dom  # two stores' lines, one heatmap image
    assert "encoder.layer.5" in dom["xticks"] and "avgpool" in dom["xticks"], dom["xticks"]
    # injected markup did not execute and shows as text
    assert dom["alerts"] == [] and dom["pwned"] is None and dom["imgs"] == 0 and dom["badScripts"] == 0, dom
    assert EVIL_STORE in dom["text"]
    assert dom["title"] == 'browser test "report" <b>x</b>'
    assert not [e for e in events if e.get("method") == "Page.javascriptDialogOpening"]
    # no JS errors
    errors = [e["params"] for e in events if e.get("method") == "Runtime.exceptionThrown"]
    errors += [e["params"] for e in events
               if e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert")]
    errors += [e["params"]["entry"] for e in events
               if e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error"]
    assert not errors, json.dumps(errors)[:2000]
    # offline: every request the page made is local, and none failed
    urls = [e["params"]["request"]["url"] for e in events if e.get("method") == "Network.requestWillBeSent"]
    assert urls and all(u.startswith(LOCAL_SCHEMES) for u in urls), urls
    assert not [e for e in events if e.get("method") == "Network.loadingFailed"]

    # screenshot saved and non-trivial
    png = base64.b64decode(shot["data"])
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report_browser.png").write_bytes(png)
    width, height = png_size(png)
    assert width >= 1000 and height >= 900, (width, height)
    assert len(png) > 20_000
    try:
        from PIL import Image
    except ImportError:  # Pillow comes with the text extra; the header checks above still ran
        return
    with Image.open(ARTIFACTS / "report_browser.png") as im:
        colours = im.convert("RGB").getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 100  # charts, text and heatmap colours, not a blank page


# ---- findings, filters, CSV (issue 16) -------------------------------------------------------------------------------

PROBE_LAYERS = ["embeddings", "encoder.layer.0", "encoder.layer.1", "encoder.layer.2"]
# planted accuracies: best layer per (store, target) is known
PLANTED = {("model_a", "topic"): [0.30, 0.55, 0.95, 0.70], ("model_a", "tense"): [0.40, 0.90, 0.60, 0.50],
           ("model_b", "topic"): [0.20, 0.35, 0.50, 0.85], ("model_b", "tense"): [0.80, 0.45, 0.40, 0.30]}


def _planted_db(path: Path) -> ResultsDB:
    db = ResultsDB(path, study="planted")
    rows = []
    for (store, target), scores in PLANTED.items():
        for i, (layer, v) in enumerate(zip(PROBE_LAYERS, scores, strict=True)):
            p = {"target": target, "probe": "logistic"}
            for metric, value in (("accuracy", v), ("accuracy_ci_low", v - 0.01), ("accuracy_ci_high", v + 0.01)):
                rows.append(Row("probe", metric, value, layer=layer, store=store, model=store, params=p,
                                layer_index=i))
    db.record_rows(rows)
    db.record_artifact("stores", "model_a", {"store": "model_a", "model": "m", "model_hash": "abc123",
                                             "dataset": "d", "dataset_hash": "def456", "pooling": "mean",
                                             "dtype": "float32", "n_rows": 10, "n_layers": 4,
                                             "repscope_version": "0", "extract_command": "repscope extract m d"})
    return db


def _open(br: Chromium, out: Path) -> str:
    page = br.new_page()
    for domain in ("Page", "Runtime", "Log", "Network"):
        br.call(f"{domain}.enable", session=page)
    br.call("Emulation.setDeviceMetricsOverride",
            {"width": 1280, "height": 1000, "deviceScaleFactor": 1, "mobile": False}, session=page)
    br.call("Page.navigate", {"url": out.resolve().as_uri()}, session=page)
    br.wait_event("Page.loadEventFired", timeout=60)
    br.evaluate("new Promise(function (ok) { var t0 = Date.now(); (function poll() {"
                " if (window.REPSCOPE_RENDERED >= window.REPSCOPE_FIGURES || Date.now() - t0 > 30000) ok(1);"
                " else setTimeout(poll, 50); })(); })", page, timeout=40)
    return page


TRACES_JS = """(function () {
  return window.REPSCOPE_FIGURE_IDS.map(function (id) {
    var gd = document.getElementById(id);
    return {drawn: gd.querySelectorAll('.scatterlayer .trace').length,
            traces: gd.data.map(function (t) { return {name: t.name, visible: t.visible, x: t.x,
                                                       stores: (t.meta || {}).stores}; })};
  });
})()"""


@pytest.mark.browser
def test_report_findings_filters_and_csv(tmp_path):
    import csv
    import io
    import urllib.parse

    binary = _chromium_or_fail()
    db = _planted_db(tmp_path / "p.duckdb")
    out = build_report(db, tmp_path / "report.html")
    with Chromium(binary, tmp_path / "profile") as br:
        page = _open(br, out)
        first = br.evaluate("(function () { var s = document.querySelector('main section');"
                            " return {analysis: s.dataset.analysis, text: s.innerText}; })()", page)
        nav = br.evaluate("Array.from(document.querySelectorAll('#nav .fam')).map(function (e) {"
                          " return e.textContent; })", page)
        before = br.evaluate(TRACES_JS, page)
        # store filter: pick model_a through the select, as a user would
        br.evaluate("(function () { var s = document.getElementById('f-store'); s.value = 'model_a';"
                    " s.dispatchEvent(new Event('change')); return window.REPSCOPE_FILTER_DONE.then(function () {"
                    " return 1; }); })()", page)
        after = br.evaluate(TRACES_JS, page)
        rows = br.evaluate("Array.from(document.querySelectorAll('table.data tbody tr')).map(function (r) {"
                           " return {stores: JSON.parse(r.dataset.stores), hidden: r.classList.contains('filtered')};"
                           " })", page)
        cards = br.evaluate("Array.from(document.querySelectorAll('.card')).map(function (c) {"
                            " return c.classList.contains('filtered'); })", page)
        # layer range 1..2 on top of the store filter
        br.evaluate("(function () { document.getElementById('f-lo').value = 1;"
                    " var hi = document.getElementById('f-hi'); hi.value = 2; hi.dispatchEvent(new Event('change'));"
                    " return window.REPSCOPE_FILTER_DONE.then(function () { return 1; }); })()", page)
        ranged = br.evaluate(TRACES_JS, page)
        # the probe table's CSV link and the table it belongs to
        table = br.evaluate("""(function () {
            var box = Array.from(document.querySelectorAll('section[data-analysis=probe] details.tablebox'))[0];
            return {href: box.querySelector('a.csv').getAttribute('href'),
                    download: box.querySelector('a.csv').getAttribute('download'),
                    head: Array.from(box.querySelectorAll('thead th')).map(function (t) { return t.textContent; }),
                    cells: Array.from(box.querySelectorAll('tbody tr')).map(function (r) {
                      return Array.from(r.cells).map(function (c) { return c.textContent; }); })};
        })()""", page)
        shot = br.call("Page.captureScreenshot", {"format": "png"}, session=page, timeout=60)
        events = list(br.events)

    # findings first, naming the planted best layer of every (store, target)
    assert first["analysis"] == "findings", first
    for (store, target), scores in PLANTED.items():
        best = PROBE_LAYERS[scores.index(max(scores))]
        assert f"{target} in {store}: best layer {best} " in first["text"], (store, target, first["text"][:800])
    assert nav[0].startswith("Findings") and nav[1].startswith("Stores") and nav[2].startswith("Probes"), nav
    # store filter: model_b's traces are hidden (in the data and in the drawn DOM), model_a's stay
    traces_b = [t for f in before for t in f["traces"] if t["stores"] == ["model_b"]]
    assert traces_b and all(t.get("visible") is not False for t in traces_b)
    assert all(t.get("visible") is False for f in after for t in f["traces"] if t["stores"] == ["model_b"])
    assert all(t.get("visible") is not False for f in after for t in f["traces"] if t["stores"] == ["model_a"])
    assert sum(f["drawn"] for f in after) < sum(f["drawn"] for f in before)
    assert rows and all(r["hidden"] == ("model_a" not in r["stores"]) for r in rows)
    assert cards == [False]  # model_a's provenance card stays
    # layer range: visible lines (and their CI bands, drawn there and back) keep only layers 1 … 2
    xs = [t["x"] for f in ranged for t in f["traces"] if t["stores"] == ["model_a"] and t.get("visible") is not False]
    assert xs and all(x in (PROBE_LAYERS[1:3], PROBE_LAYERS[1:3] + PROBE_LAYERS[2:0:-1]) for x in xs), xs
    # CSV download parses back to the table (and to the planted values at full precision)
    assert table["href"].startswith("data:text/csv") and table["download"].endswith(".csv")
    parsed = list(csv.reader(io.StringIO(urllib.parse.unquote(table["href"].split(",", 1)[1]))))
    assert parsed[0] == table["head"] and len(parsed) - 1 == len(table["cells"])
    for got, shown in zip(parsed[1:], table["cells"], strict=True):
        for g, s in zip(got, shown, strict=True):
            assert g == s or float(g) == pytest.approx(float(s), rel=1e-3), (got, shown)
    planted = {(s, t, lay): v for (s, t), sc in PLANTED.items() for lay, v in zip(PROBE_LAYERS, sc, strict=True)}
    col = parsed[0].index("logistic accuracy")
    for r in parsed[1:]:
        assert float(r[col]) == planted[(r[0], r[1], r[2])]
    # no JS errors
    errors = [e for e in events if e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Runtime.consoleAPICalled" and e["params"].get("type") in ("error", "assert"))
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"].get("level") == "error")]
    assert not errors, json.dumps(errors)[:2000]
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "report_filters.png").write_bytes(base64.b64decode(shot["data"]))
