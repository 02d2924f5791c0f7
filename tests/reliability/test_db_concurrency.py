"""Several processes share one results DB: no row is lost, readers never crash, a long-held lock parks rows in a side
file that `repscope results --import` merges exactly once."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from repscope.errors import ConfigError
from repscope.results import ResultsDB, ResultsDBError, ResultsLockedError

N_WRITERS, N_RECORDS = 3, 200

WRITER = """
import sys, time
from pathlib import Path
from repscope.results import ResultsDB
db_path, k, n, go = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), Path(sys.argv[4])
while not go.exists():
    time.sleep(0.01)
db = ResultsDB(db_path, study=f"w{k}")
for i in range(n):
    db.record("concurrency", "value", float(i), layer=f"w{k}", params={"i": i})
"""

READER = """
import sys, time
from pathlib import Path
from repscope.results import ResultsDB
db_path, go, done = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
while not go.exists():
    time.sleep(0.01)
counts = []
while not done.exists():
    n = int(ResultsDB(db_path).query("SELECT count(*) AS n FROM results")["n"].iloc[0])
    counts.append(n)
print(len(counts), int(counts == sorted(counts)), counts[-1] if counts else -1)
"""


def _spawn(code: str, *args: object) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", code, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def test_three_writers_and_a_reader_lose_nothing(tmp_path):
    db, go, done = tmp_path / "r.duckdb", tmp_path / "go", tmp_path / "done"
    writers = [_spawn(WRITER, db, k, N_RECORDS, go) for k in range(N_WRITERS)]
    reader = _spawn(READER, db, go, done)
    time.sleep(1.0)  # let the interpreters import repscope, then release them together onto a DB that doesn't exist
    t0 = time.perf_counter()
    go.touch()
    outs = [w.communicate(timeout=240) for w in writers]
    seconds = time.perf_counter() - t0
    done.touch()
    r_out, r_err = reader.communicate(timeout=120)
    for w, (_, err) in zip(writers, outs, strict=True):
        assert w.returncode == 0, err[-2000:]
    assert reader.returncode == 0, r_err[-2000:]
    n_reads, monotone, _ = map(int, r_out.split())
    assert n_reads >= 1 and monotone == 1  # the reader ran throughout and only ever saw committed rows
    df = ResultsDB(db).frame()
    assert len(df) == N_WRITERS * N_RECORDS, f"{len(df)} rows after {seconds:.1f}s"
    got = sorted((s, p["i"]) for s, p in zip(df["study"], df["params"], strict=True))
    assert got == sorted((f"w{k}", i) for k in range(N_WRITERS) for i in range(N_RECORDS))  # each exactly once
    assert not list(tmp_path.glob("*.pending-*"))  # nothing had to be parked


HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("locked", flush=True)
sys.stdin.readline()
con.close()
"""


def _hold_lock(db: Path) -> subprocess.Popen:
    p = subprocess.Popen([sys.executable, "-c", HOLDER, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         text=True)
    assert p.stdout.readline().strip() == "locked"
    return p


def _release(p: subprocess.Popen) -> None:
    p.communicate("\n", timeout=30)


def test_lock_held_past_timeout_parks_rows_then_import_merges_once(tmp_path, cli):
    db_path = tmp_path / "r.duckdb"
    db = ResultsDB(db_path, study="s", timeout=0.5)
    db.record("probe", "accuracy", 0.5, layer="l0")
    from repscope.results import Result

    res = Result()
    for i in range(4):
        res.add("probe", "accuracy", i / 4, layer=f"l{i}", layer_index=i, params={"C": i})
    res.add_artifact("probe", "curve", {"x": [1, 2, 3]})
    holder = _hold_lock(db_path)
    try:
        t0 = time.perf_counter()
        with pytest.raises(ResultsLockedError) as info:
            db.record_result(res)
        waited = time.perf_counter() - t0
    finally:
        _release(holder)
    assert 0.4 < waited < 10  # it retried for the timeout, then gave up
    side = info.value.side_file
    msg = str(info.value)
    assert "\n" not in msg and str(side) in msg and "repscope results" in msg and "--import" in msg
    assert side.parent == db_path.parent and side.exists()
    assert len(json.loads(side.read_text())["rows"]) == 4
    assert len(ResultsDB(db_path).frame()) == 1  # the parked rows are not in the DB yet

    copy = tmp_path / "copy.json"
    copy.write_bytes(side.read_bytes())
    r = cli("results", "--db", db_path, "--import", side)
    assert r.returncode == 0 and "imported 4 rows and 1 artifacts" in " ".join(r.stderr.split()), r.stderr
    assert not side.exists()
    df = ResultsDB(db_path).frame()
    assert len(df) == 5
    parked = df[df["layer_index"].notna()].sort_values("layer_index")
    assert parked["value"].tolist() == [0.0, 0.25, 0.5, 0.75] and set(parked["study"]) == {"s"}
    assert [p["C"] for p in parked["params"]] == [0, 1, 2, 3]
    assert ResultsDB(db_path).artifacts("probe") == [{"study": "s", "analysis": "probe", "name": "curve",
                                                      "payload": {"x": [1, 2, 3]}}]
    # importing the same side file again (here a copy) adds nothing
    again = ResultsDB(db_path).import_pending(copy)
    assert again.already_imported and again.rows == 0 and not copy.exists()
    assert len(ResultsDB(db_path).frame()) == 5
    with pytest.raises(ConfigError, match="does not exist"):  # the original is gone
        ResultsDB(db_path).import_pending(side)


def test_reader_waits_for_a_writer_instead_of_failing(tmp_path):
    db_path = tmp_path / "r.duckdb"
    ResultsDB(db_path).record("probe", "accuracy", 1.0)
    holder = _hold_lock(db_path)
    t0 = time.perf_counter()
    with pytest.raises(ResultsLockedError, match="stayed locked by PID"):
        ResultsDB(db_path, timeout=0.3).frame()
    assert time.perf_counter() - t0 >= 0.3
    release_at = time.perf_counter() + 0.5
    import threading

    threading.Timer(0.5, _release, [holder]).start()
    assert len(ResultsDB(db_path, timeout=20).frame()) == 1  # waits out the holder, then reads
    assert time.perf_counter() >= release_at - 0.05


def test_artifact_import_keeps_the_newer_artifact(tmp_path, monkeypatch):
    db_path = tmp_path / "r.duckdb"
    monkeypatch.setenv("REPSCOPE_DB_TIMEOUT", "0.2")
    holder = _hold_lock(db_path)
    try:
        db = ResultsDB(db_path, study="s")  # opening while locked is fine: commands open the DB after computing
        with pytest.raises(ResultsLockedError) as info:
            db.record_artifact("geometry", "spectrum", {"v": "old"})
    finally:
        _release(holder)
    monkeypatch.setenv("REPSCOPE_DB_TIMEOUT", "bad")
    with pytest.raises(ResultsDBError, match="REPSCOPE_DB_TIMEOUT='bad'") as bad:  # a bad setting parks too
        db.record_artifact("geometry", "spectrum", {"v": "bad"})
    assert len(list(tmp_path.glob("*.pending-*"))) == 2 and str(bad.value).count("\n") == 0
    next(p for p in tmp_path.glob("*.pending-*") if p != info.value.side_file).unlink()
    monkeypatch.delenv("REPSCOPE_DB_TIMEOUT")
    db.record_artifact("geometry", "spectrum", {"v": "new"})
    summary = db.import_pending(info.value.side_file)
    assert summary.artifacts == 1 and not summary.already_imported
    assert [a["payload"] for a in db.artifacts("geometry")] == [{"v": "new"}]


def test_reads_use_read_only_connections(tmp_path, monkeypatch):
    db_path = tmp_path / "r.duckdb"
    db = ResultsDB(db_path)
    db.record("probe", "accuracy", 1.0)
    modes = []
    real = duckdb.connect

    def spy(path, read_only=False, config=None):
        modes.append(read_only)
        return real(path, read_only=read_only, config=config or {})

    monkeypatch.setattr(duckdb, "connect", spy)
    ResultsDB(db_path).frame()
    db.artifacts()
    db.query("SELECT 1")
    db.export("SELECT * FROM results", tmp_path / "o.csv")
    assert modes and all(modes)
    modes.clear()
    db.record("probe", "accuracy", 2.0)
    assert modes == [False]


def test_probe_and_geometry_at_once_on_one_db_keep_every_row(tmp_path):
    """Real commands sharing one --db: the rows each process says it wrote are all there."""
    from repscope.store import write_store

    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 150)
    layers = {f"enc.{i}": rng.normal(size=(150, 6)) + (i + 1) * np.eye(3, 6)[y] for i in range(3)}
    store = write_store(tmp_path / "s", layers, samples=pd.DataFrame({"label": y}))
    db = tmp_path / "r.duckdb"
    geo = ["geometry", store.root, "--measures", "anisotropy,twonn", "--db", db, "--format", "csv"]
    cmds = {"g1": [*geo, "--study", "g1"], "g2": [*geo, "--study", "g2"],
            "p": ["probe", store.root, "--db", db, "--study", "p", "--format", "csv"]}
    procs = {k: subprocess.Popen([sys.executable, "-m", "repscope.cli", *map(str, c)], stdout=subprocess.PIPE,
                                 stderr=subprocess.PIPE, text=True) for k, c in cmds.items()}
    outs = {k: p.communicate(timeout=300) for k, p in procs.items()}
    for k, p in procs.items():
        assert p.returncode == 0, outs[k][1][-2000:]
    df = ResultsDB(db).frame()
    for k, (out, _) in outs.items():  # each command printed the rows it recorded: all of them are in the DB
        printed = pd.read_csv(io.StringIO(out))
        assert len(printed) > 0 and (df["study"] == k).sum() == len(printed), k
    g1, g2 = (df[df["study"] == s][["layer", "metric", "value"]].sort_values(["layer", "metric"]) for s in ("g1", "g2"))
    assert g1.to_numpy().tolist() == g2.to_numpy().tolist()  # the same computation twice: the same rows
