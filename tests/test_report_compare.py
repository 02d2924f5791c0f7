"""`repscope report --compare`: two demo-sized studies (digits MLP seed 0 vs seed 1) side by side.

The deltas on the page must equal the difference of the two DBs' rows, read back here with plain SQL.
"""

from __future__ import annotations

import csv
import io
import re
import urllib.parse

import numpy as np
import pytest
from typer.testing import CliRunner

from repscope.cli import app
from repscope.report.compare import compare_frames
from repscope.results import ResultsDB


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    """Each run: its own DB, study and store folder; the store has the same name in both (like one study file
    rerun with another seed). Rows: a logistic probe at every layer (accuracy with a Wilson CI) and geometry."""
    from repscope.extract import extract
    from repscope.geometry.profile import geometry_profile
    from repscope.probe.protocols import layer_sweep
    from repscope.report.provenance import record_store_provenance
    from repscope.sources.datasets import load_sklearn
    from repscope.sources.models import TorchModuleAdapter
    from repscope.sources.zoo.mlp import train_digits_mlp

    root = tmp_path_factory.mktemp("compare")
    digits = load_sklearn("digits")
    rng = np.random.default_rng(0)
    digits.samples["split"] = np.where(rng.random(len(digits)) < 0.8, "train", "test")
    dbs = []
    for seed in (0, 1):
        store = extract(TorchModuleAdapter(train_digits_mlp(seed, epochs=5), device="cpu"), digits,
                        root / f"seed{seed}" / "digits_mlp", seed=seed, progress=False)
        db = ResultsDB(root / f"seed{seed}.duckdb", study=f"seed{seed}")
        db.record_result(layer_sweep(store, ("logistic",), "label", device="cpu", seed=0))
        db.record_result(geometry_profile(store, measures=["participation_ratio", "twonn"], device="cpu",
                                           spectra=False, max_rows=600))
        record_store_provenance(db, store)
        dbs.append(db)
    return root, dbs


def _sql_values(db: ResultsDB) -> dict[tuple[str, str, str], float]:
    df = db.query("SELECT analysis, metric, layer, value FROM results "
                  "WHERE NOT regexp_matches(metric, '_ci_(low|high)$')")
    return {(a, m, la): v for a, m, la, v in df.itertuples(index=False)}


def test_compare_page_deltas_equal_db_row_differences(two_runs):
    root, (db_a, db_b) = two_runs
    out = root / "compare.html"
    res = CliRunner().invoke(app, ["report", "--compare", str(db_a.path), str(db_b.path), "-o", str(out)])
    assert res.exit_code == 0, res.output
    html = out.read_text(encoding="utf-8")
    assert html.count("Plotly.newPlot") >= 1 and html.count("<script>") == 2  # plotly inlined once
    # the "every shared metric" table's CSV (the last table on the page), parsed back
    uri = re.findall(r'href="data:text/csv;charset=utf-8,([^"]*)"', html)[-1]
    rows = list(csv.DictReader(io.StringIO(urllib.parse.unquote(uri.replace("&amp;", "&")))))
    va, vb = _sql_values(db_a), _sql_values(db_b)
    shared = set(va) & set(vb)
    assert len(rows) == len(shared) > 10
    for r in rows:
        key = (r["analysis"], r["metric"], r["layer"])
        assert float(r["value_a"]) == va[key] and float(r["value_b"]) == vb[key]
        assert float(r["delta"]) == pytest.approx(vb[key] - va[key], abs=1e-12)
    # probe accuracies carry CIs: each "exceeds" is exactly "the two intervals do not overlap"
    ci = db_a.frame(), db_b.frame()
    for r in rows:
        if r["analysis"] != "probe":
            assert r["exceeds"] == ""
            continue
        lo_a, hi_a, lo_b, hi_b = (float(r[c]) for c in ("ci_low_a", "ci_high_a", "ci_low_b", "ci_high_b"))
        assert r["exceeds"] == str(lo_b > hi_a or lo_a > hi_b)
    n_exceed = sum(r["exceeds"] == "True" for r in rows)
    assert f"<b>{n_exceed}</b> of those differ by more than their CIs" in html
    direct = compare_frames(*ci)  # the library call agrees with the page's table
    assert len(direct) == len(rows) and direct["delta"].notna().all()


def test_compare_two_studies_of_one_db_pairs_stores(two_runs, tmp_path):
    root, (db_a, db_b) = two_runs
    one = ResultsDB(tmp_path / "both.duckdb")
    for db in (db_a, db_b):
        f = db.frame()
        f = f.assign(store=f["store"] + "_" + f["study"])  # different store names: paired with --pair
        from repscope.results.db import Row

        one.record_rows(Row(r.analysis, r.metric, r.value, layer=r.layer, store=r.store, study=r.study,
                            params=r.params, layer_index=r.layer_index) for r in f.itertuples())
    out = tmp_path / "c.html"
    res = CliRunner().invoke(app, ["report", "--db", str(one.path), "--compare-studies", "seed0", "seed1",
                                   "--pair", "digits_mlp_seed1=digits_mlp_seed0", "-o", str(out)])
    assert res.exit_code == 0, res.output
    a, b = one.frame(study="seed0"), one.frame(study="seed1")
    cmp = compare_frames(a, b, {"digits_mlp_seed1": "digits_mlp_seed0"})
    assert len(cmp) == len(_sql_values(db_a).keys() & _sql_values(db_b).keys())
    bad = CliRunner().invoke(app, ["report", "--db", str(one.path), "--compare-studies", "seed0", "nope"])
    assert bad.exit_code != 0 and "no rows of study 'nope'" in str(bad.exception)


def test_provenance_cards_name_model_hash_and_rebuild_command(two_runs):
    from repscope.report.build import build_report
    from repscope.store import RepStore

    root, (db_a, _) = two_runs
    html = build_report(db_a, root / "a.html").read_text(encoding="utf-8")
    store = RepStore.open(root / "seed0" / "digits_mlp")
    prov = store.provenance
    sec = html[html.index("<h2>Stores: provenance"):]
    sec = sec[:sec.index("</section>")]
    assert prov["model_hash"][:16] in sec and prov["dataset_hash"][:16] in sec
    assert "rows: 1797" in sec and f"dtype: {prov['dtype']}" in sec
    assert html.index("<h2>Findings") < html.index("<h2>Stores: provenance") < html.index("<h2>Probes")
