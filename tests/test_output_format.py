"""Output streams: tables and data on stdout, progress and logs on stderr, `--format table|csv|json` on the analysis
commands; `--format csv` reads back into exactly the rows `repscope results` shows."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from repscope.results import ResultsDB
from repscope.store import write_store

COLS = ["study", "store", "model", "layer", "layer_b", "analysis", "metric", "value", "params", "seconds",
        "layer_index", "layer_b_index"]


def repscope(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-m", "repscope.cli", *args], capture_output=True, text=True, env=env,
                          timeout=300)


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    """Three layers; `label` is decodable only from the last two."""
    rng = np.random.default_rng(0)
    n = 240
    y = rng.integers(0, 3, n)
    layers = {}
    for name, strength in (("enc.0", 0.0), ("enc.1", 4.0), ("enc.2", 6.0)):
        x = rng.normal(size=(n, 6)).astype(np.float32)
        x[:, 0] += strength * y
        layers[name] = x
    return write_store(tmp_path_factory.mktemp("fmt") / "s", layers, pd.DataFrame({"id": np.arange(n), "label": y}))


def _sorted(df: pd.DataFrame) -> pd.DataFrame:
    return df.sort_values(["analysis", "layer", "metric", "params"]).reset_index(drop=True)


def test_probe_csv_reads_back_as_the_results_rows(store, tmp_path):
    db = str(tmp_path / "r.duckdb")
    r = repscope("probe", str(store.root), "--probe", "logistic,nb", "--target", "label", "--format", "csv",
                 "--db", db, "--study", "fmt", "--device", "cpu")
    assert r.returncode == 0, r.stderr
    assert "wrote" in r.stderr and "wrote" not in r.stdout  # logs on stderr, data on stdout
    got = pd.read_csv(io.StringIO(r.stdout))
    assert list(got.columns) == COLS
    assert set(got["analysis"]) == {"probe", "concept_depth"}
    assert len(got) == 3 * 2 * 3 + 2 * 3  # layers × probes × (value, ci_low, ci_high) + probes × depth rows
    shown = repscope("results", f"SELECT {', '.join(COLS)} FROM results", "--format", "csv", "--db", db)
    assert shown.returncode == 0, shown.stderr
    want = pd.read_csv(io.StringIO(shown.stdout))
    pd.testing.assert_frame_equal(_sorted(got), _sorted(want))
    # and the same rows as the DB holds (layer order recorded as layer_index)
    frame = ResultsDB(db).frame()
    assert len(frame) == len(got) and set(frame["study"]) == {"fmt"}
    probe = got[got["analysis"] == "probe"]
    assert (probe["layer"].map(store.layers.index) == probe["layer_index"]).all()
    acc = probe[probe["metric"] == "accuracy"].groupby("layer")["value"].min()
    assert acc["enc.2"] > 0.9 > 0.6 > acc["enc.0"]


def test_table_and_json_formats_go_to_stdout(store, tmp_path):
    from repscope.cli import app

    db = str(tmp_path / "r.duckdb")
    runner = CliRunner()
    r = runner.invoke(app, ["probe", str(store.root), "--probe", "nb", "--db", db, "--device", "cpu"])
    assert r.exit_code == 0, r.output
    assert "enc.1" in r.stdout and "concept depth" in r.stdout  # the human tables are data: stdout
    r = runner.invoke(app, ["geometry", str(store.root), "-m", "twonn,rank", "--format", "json", "--db", db,
                            "--device", "cpu"])
    assert r.exit_code == 0, r.output
    rows = json.loads(r.stdout)
    assert {x["metric"] for x in rows} == {"twonn_id", "effective_rank", "stable_rank"}
    assert {x["layer"]: x["layer_index"] for x in rows} == {"enc.0": 0, "enc.1": 1, "enc.2": 2}
    r = runner.invoke(app, ["compare", str(store.root), "--measure", "cka", "--format", "csv", "--db", db,
                            "--device", "cpu"])
    assert r.exit_code == 0, r.output
    cka = pd.read_csv(io.StringIO(r.stdout))
    assert len(cka) == 9 and set(cka["analysis"]) == {"similarity"}
    assert np.allclose(cka[cka["layer"] == cka["layer_b"]]["value"], 1.0)
    bad = runner.invoke(app, ["probe", str(store.root), "--format", "xml", "--db", db])
    assert bad.exit_code != 0 and "xml" in bad.output


def test_every_table_command_offers_format():
    import typer.main

    from repscope.cli import app

    group = typer.main.get_command(app)
    want = {"probe", "sts", "compare", "match", "geometry", "quantize", "results", "sae train", "sae inspect", "info",
            "layers", "disentangle", "truncate", "quantize-embeddings", "adapter train", "compat"}
    seen = set()
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", None)
        for qual, sub in ({f"{name} {k}": v for k, v in subs.items()} if subs else {name: cmd}).items():
            if qual in want:
                assert any("--format" in p.opts for p in sub.params), qual
                seen.add(qual)
    assert seen == want
