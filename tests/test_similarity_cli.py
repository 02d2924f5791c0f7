"""`repscope compare` / `repscope match` end to end on small stores, and the similarity report sections."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pandas as pd

from repscope.errors import ConfigError, LayerNotFoundError
from repscope.results import ResultsDB
from repscope.similarity import linear_cka, pwcca
from repscope.store import write_store

CLI = [sys.executable, "-m", "repscope.cli"]


def run(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, timeout=300)


def invoke(*args: str):
    """In-process CLI call (fast); errors surface as the raised exception."""
    from typer.testing import CliRunner

    from repscope.cli import app

    return CliRunner().invoke(app, list(args))


def _stores(tmp_path):
    rng = np.random.default_rng(0)
    n = 150
    base = rng.normal(size=(n, 8))
    la = {"fc1": base @ rng.normal(size=(8, 16)), "act1": np.maximum(base @ rng.normal(size=(8, 16)), 0)}
    perm = rng.permutation(16)
    lb = {"fc1": la["fc1"][:, perm] + 0.1 * rng.normal(size=(n, 16)), "act1": la["act1"] + rng.normal(size=(n, 16))}
    lb["act1"][:, 3] = 2.0  # a dead neuron
    ids = pd.DataFrame({"id": np.arange(n), "label": rng.integers(0, 3, n)})
    return write_store(tmp_path / "sa", la, ids), write_store(tmp_path / "sb", lb, ids), la, lb


def test_compare_and_match_record_rows_and_report(tmp_path):
    sa, sb, la, lb = _stores(tmp_path)
    db = tmp_path / "r.duckdb"
    r = invoke("compare", str(sa.root), str(sb.root), "--measure", "cka,pwcca,procrustes,mknn", "--db", str(db))
    assert r.exit_code == 0, r.output
    frame = ResultsDB(db).frame("similarity")
    assert set(frame["metric"]) == {"linear_cka", "pwcca", "procrustes", "mutual_knn"}
    assert len(frame) == 4 * 4
    row = frame[(frame.metric == "linear_cka") & (frame.layer == "act1") & (frame.layer_b == "fc1")]
    ref = linear_cka(la["act1"].astype(np.float32), lb["fc1"].astype(np.float32), "cpu")
    assert abs(row["value"].iloc[0] - ref) < 1e-9
    row = frame[(frame.metric == "pwcca") & (frame.layer == "fc1") & (frame.layer_b == "act1")]
    assert abs(row["value"].iloc[0] - pwcca(la["fc1"].astype(np.float32), lb["act1"].astype(np.float32), "cpu")) < 1e-9
    # one store with itself, streaming exact CKA
    r = invoke("compare", str(sa.root), "--streaming", "--db", str(db))
    assert r.exit_code == 0, r.output
    # neuron matching with the curve artifact
    r = invoke("match", str(sa.root), str(sb.root), "--layer", "fc1", "--lasso", "--db", str(db))
    assert r.exit_code == 0, r.output
    m = ResultsDB(db).frame("neuron_match")
    assert m.set_index("metric").loc["mean_matched_corr", "value"] > 0.9  # a permuted, lightly noised copy
    arts = ResultsDB(db).artifacts("neuron_match")
    assert len(arts) == 1 and len(arts[0]["payload"]["curve"]) == 16
    # bad input: a RepscopeError naming the problem; the console script prints it on one line
    for args, err, word in ((["--measure", "nope"], ConfigError, "unknown similarity measure"),
                            (["--layers", "fc9"], LayerNotFoundError, "fc9"),
                            (["--streaming", "--measure", "pwcca"], ConfigError, "streaming")):
        r = invoke("compare", str(sa.root), *args, "--db", str(db))
        assert isinstance(r.exception, err) and word in str(r.exception)
    r = run("compare", str(sa.root), "--measure", "nope", "--db", str(db))
    assert r.returncode != 0
    assert len([x for x in r.stderr.strip().splitlines() if x.strip()]) == 1, r.stderr
    # report: the similarity package claims its analyses and draws heatmaps and curves
    from repscope.similarity.report import report_sections

    rdb = ResultsDB(db)
    secs, handled = report_sections(rdb.frame(), rdb.artifacts())
    assert handled == {"similarity", "neuron_match"}
    sim = next(s for s in secs if s.analysis == "similarity")
    assert len(sim.figures) == 4 + 1  # 4 measures across stores + streaming CKA within sa
    heat = sim.figures[0].data[0]
    assert list(heat.y) == ["fc1", "act1"]  # model order, not alphabetical
    nm = next(s for s in secs if s.analysis == "neuron_match")
    assert len(nm.figures) == 1 and len(nm.figures[0].data) == 2
    from repscope.report.build import build_report

    out = build_report(rdb, tmp_path / "report.html")
    assert "matched-correlation curves" in out.read_text()
