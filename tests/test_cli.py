"""CLI conventions: examples in --help, one-line errors without traceback, non-zero exit codes, info/verify."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from repscope.store import write_store

CLI = [sys.executable, "-m", "repscope.cli"]


def run(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = {**os.environ, "COLUMNS": "200"}
    return subprocess.run([*CLI, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=300)


def test_every_command_help_shows_an_example():
    import typer.main

    from repscope.cli import app

    group = typer.main.get_command(app)
    names = []
    for name, cmd in group.commands.items():
        subs = getattr(cmd, "commands", None)
        for sub_name, sub in (subs or {name: cmd}).items():
            names.append(sub_name)
            assert "Example: repscope" in (sub.help or ""), f"`{name} {sub_name}` --help has no example"
    assert {"extract", "layers", "info", "verify", "results", "report", "demo"} <= set(names)


def test_errors_are_one_line_without_traceback(tmp_path):
    r = run("info", str(tmp_path / "missing"))
    assert r.returncode != 0
    lines = [line for line in r.stderr.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and "not a repscope store" in lines[0], r.stderr
    assert "Traceback" not in r.stderr
    r = run("--debug", "info", str(tmp_path / "missing"))
    assert r.returncode != 0 and "Traceback" in r.stderr


def test_extract_unknown_layer_lists_available(tmp_path):
    r = run("extract", "digits-mlp:0", "digits@50", "-o", str(tmp_path / "s"), "--layers", "fc9")
    assert r.returncode == 2
    assert "layer 'fc9' not found in model 'digits_mlp_s0'; available: fc1, act1, fc2, act2, out" in r.stderr
    assert not (tmp_path / "s").exists()


def test_extract_info_verify_results_report(tmp_path):
    r = run("extract", "digits-mlp:1", "digits@120", "-o", str(tmp_path / "s"), "--chunk-rows", "50")
    assert r.returncode == 0, r.stderr
    r = run("info", str(tmp_path / "s"))
    assert r.returncode == 0 and "fc1" in r.stdout and "120/120" in r.stdout  # tables go to stdout
    r = run("info", str(tmp_path / "s"), "--format", "csv")
    layers = pd.read_csv(io.StringIO(r.stdout))
    assert list(layers["layer"]) == ["fc1", "act1", "fc2", "act2", "out"] and str(layers["shape"][0]) == "64"
    r = run("verify", str(tmp_path / "s"))
    assert r.returncode == 0 and "15 chunks" in r.stderr  # 5 layers × 3 chunks of 50 rows
    db = str(tmp_path / "r.duckdb")
    from repscope.results import ResultsDB

    ResultsDB(db).record("probe", "accuracy", 0.9, layer="fc1")
    r = run("results", "SELECT metric, value FROM results", "--db", db)
    assert r.returncode == 0 and "accuracy" in r.stdout
    r = run("results", "SELECT * FROM results", "--db", db, "-o", str(tmp_path / "o.csv"))
    assert r.returncode == 0 and (tmp_path / "o.csv").read_text().count("\n") == 2
    r = run("report", "--db", db, "-o", str(tmp_path / "rep.html"))
    assert r.returncode == 0 and (tmp_path / "rep.html").stat().st_size > 100_000


def test_verify_reports_corruption(tmp_path):
    s = write_store(tmp_path / "s", {"enc.0": np.random.randn(64, 8)}, chunk_rows=32)
    f = s.root / "arrays" / "L_enc.0" / "c" / "1" / "0"
    b = bytearray(f.read_bytes())
    b[-5] ^= 1
    f.write_bytes(bytes(b))
    r = run("verify", str(s.root))
    assert r.returncode == 2 and "layer 'enc.0' chunk 1.0 failed its checksum" in r.stderr


def test_layers_command_lists_shapes():
    r = run("layers", "digits-mlp:0")
    assert r.returncode == 0, r.stderr
    assert "fc2" in r.stdout and "2×64" in r.stdout


@pytest.mark.parametrize("flag", ["--help"])
def test_root_help(flag):
    assert run(flag).returncode == 0


def test_zoo_train_mlp_saves_safetensors_that_extract_loads(tmp_path):
    w = tmp_path / "mlp_s3.safetensors"
    r = run("zoo", "train-mlp", "--seed", "3", "--epochs", "5", "-o", str(w))
    assert r.returncode == 0, r.stderr
    assert w.read_bytes()[8:9] == b"{"  # safetensors: 8-byte header length, then JSON (no pickle)
    r = run("extract", str(w), "digits@64", "-o", str(tmp_path / "s"), "--layers", "out")
    assert r.returncode == 0, r.stderr
    import torch

    from repscope.sources.datasets import load_sklearn
    from repscope.sources.zoo.mlp import load_mlp
    from repscope.store import RepStore

    with torch.no_grad():
        want = load_mlp(w)(load_sklearn("digits").x[:64])
    torch.testing.assert_close(RepStore.open(tmp_path / "s").get("out"), want)
