"""`repscope results`: a read-only SQL console without file access unless --write, one-line errors for empty or bad
SQL, `--db` refusing files that are not DuckDB before any work, and --format csv/json that read back as the DB rows."""

from __future__ import annotations

import io
import json
import math
import sys

import numpy as np
import pandas as pd
import pytest

from repscope.errors import ConfigError
from repscope.results import ResultsDB, Row
from repscope.results.connect import check_db_file


def run_main(monkeypatch, capsys, *args) -> tuple[int, str, str]:
    """The console entry point in-process (no interpreter start-up): (exit code, stdout, stderr)."""
    from repscope.cli import main

    monkeypatch.setattr(sys, "argv", ["repscope", *map(str, args)])
    code = 0
    try:
        main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else 1
    out, err = capsys.readouterr()
    return code, out, err


def one_line(err: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if ln.strip()]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def _plain(col: pd.Series) -> list:
    """Cell values with every kind of missing (None, NaN) as None."""
    return [None if pd.isna(v) else v for v in col.astype(object)]


@pytest.fixture
def db(tmp_path):
    d = ResultsDB(tmp_path / "r.duckdb", study="s")
    d.record_rows([Row("probe", "accuracy", 1 / (i + 3), layer=f"enc.{i}", layer_index=i, store="st, \"q\"",
                       model=None if i else "m\tx", params={"C": i, "probe": "logistic"}, seconds=0.1 * i)
                   for i in range(4)])
    d.record("geometry", "twonn", float("nan"), layer="enc.0", layer_index=0)  # stored as NULL
    d.record("similarity", "cka", 0.5, layer="enc.0", layer_b="enc.1", layer_index=0, layer_b_index=1)
    return d


@pytest.mark.parametrize("sql, target", [
    ("COPY results TO '{tmp}/leak.csv'", "leak.csv"),
    ("SELECT * FROM read_text('/etc/passwd')", None),
    ("SELECT * FROM read_csv('{tmp}/../secret.csv')", None),
    ("ATTACH '{tmp}/other.duckdb' AS other", "other.duckdb"),
    ("CREATE TABLE t AS SELECT 1 AS x", None),
    ("INSERT INTO results (analysis, metric) VALUES ('x', 'y')", None),
    ("DELETE FROM results", None),
    ("SET enable_external_access = true", None),
    ("INSTALL httpfs", None),
])
def test_console_is_read_only_without_file_access(db, tmp_path, sql, target):
    n = len(db.frame())
    with pytest.raises(ConfigError) as info:
        db.run_sql(sql.format(tmp=tmp_path))
    msg = str(info.value)
    assert "\n" not in msg and "--write" in msg
    assert target is None or not (tmp_path / target).exists()
    assert len(db.frame()) == n


def test_cli_refuses_copy_and_write_opts_in(db, tmp_path, monkeypatch, capsys):
    leak = tmp_path / "leak.csv"
    code, out, err = run_main(monkeypatch, capsys, "results", f"COPY results TO '{leak}'", "--db", db.path)
    assert code == 2 and not leak.exists() and out == ""
    assert "--write" in one_line(err) and str(leak) in err
    code, _, err = run_main(monkeypatch, capsys, "results", "SELECT * FROM read_text('/etc/passwd')", "--db", db.path)
    assert code == 2 and "/etc/passwd" in one_line(err)
    code, _, err = run_main(monkeypatch, capsys, "results", "--write", "--db", db.path,
                            "CREATE TABLE notes AS SELECT 42 AS answer")
    assert code == 0, err
    assert db.query("SELECT answer FROM notes")["answer"].tolist() == [42]
    code, _, err = run_main(monkeypatch, capsys, "results", "--write", "--db", db.path, f"COPY notes TO '{leak}'")
    assert code == 0 and pd.read_csv(leak)["answer"].tolist() == [42]


@pytest.mark.parametrize("sql, needle", [
    ("", "empty SQL"),
    ("   ", "empty SQL"),
    ("SELECT * FROM nope", "nope"),
    ("SELEC 1", "syntax error"),
    ("SELECT no_such_column FROM results", "no_such_column"),
])
def test_bad_sql_is_one_line_exit_2(db, monkeypatch, capsys, sql, needle):
    code, out, err = run_main(monkeypatch, capsys, "results", sql, "--db", db.path)
    assert code == 2 and out == ""
    assert needle in one_line(err)


def test_db_must_be_a_duckdb_file(tmp_path, db):
    csv = tmp_path / "notes.csv"
    csv.write_text("a,b\n1,2\n3,4\n")
    text = tmp_path / "notes.txt"
    text.write_text("not a database at all, just some notes long enough\n")
    for bad in (csv, text, tmp_path):
        with pytest.raises(ConfigError) as info:
            ResultsDB(bad)
        assert str(bad) in str(info.value) and "\n" not in str(info.value)
    assert csv.read_text() == "a,b\n1,2\n3,4\n"  # untouched
    check_db_file(db.path)  # a real DuckDB file passes whatever its name
    renamed = tmp_path / "results.data"
    db.path.rename(renamed)
    assert len(ResultsDB(renamed).frame()) == 6
    new = tmp_path / "sub" / "new.duckdb"
    assert len(ResultsDB(new).frame()) == 0 and new.exists()  # a new path is created


def test_db_csv_fails_before_any_computation(tmp_path, cli):
    from repscope.store import write_store

    rng = np.random.default_rng(0)
    store = write_store(tmp_path / "s", {"enc.0": rng.normal(size=(60, 8)), "enc.1": rng.normal(size=(60, 8))},
                        samples=pd.DataFrame({"label": rng.integers(0, 2, 60)}))
    notes = tmp_path / "notes.csv"
    notes.write_text("x\n1\n")
    r = cli("geometry", store.root, "--db", notes)
    assert r.returncode == 2 and r.stdout == ""
    line = one_line(r.stderr)  # no progress line: it stopped before the first measure
    assert str(notes) in " ".join(r.stderr.split()) and "not a DuckDB" in line
    assert notes.read_text() == "x\n1\n"


def test_format_csv_and_json_read_back_as_the_db_rows(db, monkeypatch, capsys):
    sql = "SELECT * FROM results ORDER BY created, rowid"
    expected = db.query(sql)
    code, out, err = run_main(monkeypatch, capsys, "results", sql, "--db", db.path, "--format", "csv")
    assert code == 0 and err == ""
    got = pd.read_csv(io.StringIO(out))
    assert list(got.columns) == list(expected.columns) and len(got) == len(expected) == 6
    for c in ["value", "seconds", "layer_index", "layer_b_index"]:
        np.testing.assert_array_equal(got[c].to_numpy(float), expected[c].to_numpy(float))  # NaN == NULL
    for c in ["study", "store", "model", "layer", "layer_b", "analysis", "metric"]:
        assert _plain(got[c]) == _plain(expected[c]), c
    assert [json.loads(p) for p in got["params"]] == [json.loads(p) for p in expected["params"]]
    assert (pd.to_datetime(got["created"]) == expected["created"]).all()

    code, out, err = run_main(monkeypatch, capsys, "results", sql, "--db", db.path, "--format", "json")
    assert code == 0 and err == ""
    records = json.loads(out)
    assert [r["value"] for r in records] == [None if math.isnan(v) else v for v in expected["value"]]
    assert [r["layer"] for r in records] == expected["layer"].tolist()
    assert [json.loads(r["params"]) for r in records][0] == {"C": 0, "probe": "logistic"}

    code, out, err = run_main(monkeypatch, capsys, "results", "--db", db.path)  # default: a table on stdout
    assert code == 0 and err == "" and "accuracy" in out and "cka" in out
    code, out, err = run_main(monkeypatch, capsys, "results", "--db", db.path, "--format", "xml")
    assert code == 2 and "xml" in one_line(err)


def test_print_table_formats(capsys):
    from repscope.cli_common import print_table

    df = pd.DataFrame({"layer": ["a", "b"], "value": [1 / 3, float("nan")], "params": [{"k": 1}, {}]})
    print_table(df, "csv")
    out, err = capsys.readouterr()
    back = pd.read_csv(io.StringIO(out))
    assert err == "" and back["value"].iloc[0] == 1 / 3 and math.isnan(back["value"].iloc[1])
    assert [json.loads(p) for p in back["params"]] == [{"k": 1}, {}]
    print_table(df, "json")
    assert json.loads(capsys.readouterr().out) == [{"layer": "a", "value": 1 / 3, "params": {"k": 1}},
                                                   {"layer": "b", "value": None, "params": {}}]
    print_table(df, "table", title="T")
    out, err = capsys.readouterr()
    assert err == "" and "0.3333" in out and "T" in out
    with pytest.raises(ConfigError, match="xml"):
        print_table(df, "xml")
