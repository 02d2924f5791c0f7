"""Results DB round trip, artifacts and export; report HTML escaping (without a browser)."""

from __future__ import annotations

import pandas as pd
import pytest

from repscope.errors import ConfigError
from repscope.report.build import build_report
from repscope.results import ResultsDB, Row, record


def test_record_query_export(tmp_path):
    db = ResultsDB(tmp_path / "r.duckdb", study="s1")
    db.record_rows([Row("probe", "accuracy", 0.5 + i / 10, layer=f"l{i}", store="st", params={"C": 1.0})
                    for i in range(3)])
    record("geometry", "twonn", float("nan"), layer="l0", db=db)
    df = db.frame()
    assert len(df) == 4 and set(df["study"]) == {"s1"}
    assert df[df["analysis"] == "probe"]["params"].iloc[0] == {"C": 1.0}
    assert df[df["analysis"] == "geometry"]["value"].isna().all()  # NaN stored as NULL
    db.record_artifact("geometry", "spectrum:l0", {"values": [3, 2, 1]})
    db.record_artifact("geometry", "spectrum:l0", {"values": [1]})  # replaces
    assert db.artifacts("geometry") == [{"study": "s1", "analysis": "geometry", "name": "spectrum:l0",
                                         "payload": {"values": [1]}}]
    out = db.export("SELECT * FROM results WHERE analysis='probe'", tmp_path / "x.parquet")
    assert len(pd.read_parquet(out)) == 3
    db.export("SELECT 1 AS one", tmp_path / "x.csv")
    with pytest.raises(ConfigError, match=".csv or .parquet"):
        db.export("SELECT 1", tmp_path / "x.xlsx")


def test_report_escapes_user_text(tmp_path):
    db = ResultsDB(tmp_path / "r.duckdb")
    evil = '<script>alert("x")</script>'
    for i in range(3):
        db.record("probe", "accuracy", i / 3, layer=f"layer.{i}", store=evil)
        for j in range(3):
            db.record("cka", "cka", float(i == j), layer=f"layer.{i}", layer_b=f"layer.{j}", store=evil)
    html = build_report(db, tmp_path / "r.html").read_text()
    assert evil not in html
    assert "&lt;script&gt;alert" in html
    # in chart JSON too: '<!--' would switch a <script> element into its escape states and break the page
    sneaky = '<!--<script>'
    for i in range(2):
        for j in range(2):
            db.record("cka", "cka", float(i == j), layer=f"layer.{i}", layer_b=f"layer.{j}", store=sneaky)
    html = build_report(db, tmp_path / "r2.html").read_text()
    assert "<!--" not in html and "cka: cka (\\u003c!--\\u003cscript\\u003e)" in html  # the heatmap's title
    import re

    assert not re.search(r"<(script|link|img)[^>]+(src|href)=[\"']?https?:", html), "report must load nothing remote"


def test_old_db_gains_new_columns_and_tables(tmp_path):
    import duckdb

    path = tmp_path / "old.duckdb"
    with duckdb.connect(str(path)) as con:  # the schema before layer_index and imports existed
        con.execute("CREATE TABLE results (study VARCHAR, store VARCHAR, model VARCHAR, layer VARCHAR, layer_b VARCHAR,"
                    " analysis VARCHAR, metric VARCHAR, value DOUBLE, params VARCHAR, seconds DOUBLE,"
                    " created TIMESTAMP)")
        con.execute("INSERT INTO results VALUES ('s', NULL, NULL, 'l0', NULL, 'probe', 'acc', 0.5, '{}', NULL, "
                    "TIMESTAMP '2020-01-01')")
    db = ResultsDB(path)
    db.record("probe", "acc", 0.75, layer="l1", layer_index=1)
    df = db.frame()
    assert df["value"].tolist() == [0.5, 0.75] and df["layer_index"].isna().tolist() == [True, False]
    assert len(db.query("SELECT * FROM imports")) == 0 and db.artifacts() == []
