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
