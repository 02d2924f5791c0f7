"""The disentangle plugin on the declared contract: CLI command, study step (params checked on load), report section.

Planted structure: layer `clean` holds the factors themselves (one latent per factor, shuffled order, plus noise
latents), layer `rotated` a random rotation of them; the CLI and the study must rank `clean` above `rotated`."""

from __future__ import annotations

import io
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repscope.errors import ConfigError
from repscope.report.build import build_report
from repscope.results import ResultsDB
from repscope.store import write_store
from repscope.study import load_study, run_study


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> Path:
    rng = np.random.default_rng(0)
    n = 600
    f = rng.integers(0, 4, size=(n, 3))
    clean = np.concatenate([f[:, [2, 0, 1]] + 0.05 * rng.standard_normal((n, 3)),
                            0.05 * rng.standard_normal((n, 2))], 1)
    q, _ = np.linalg.qr(rng.standard_normal((5, 5)))
    rotated = clean @ q
    samples = pd.DataFrame({"id": np.arange(n), "a": f[:, 0], "b": f[:, 1], "c": f[:, 2]})
    path = tmp_path_factory.mktemp("dis") / "planted"
    write_store(path, {"clean": clean.astype(np.float32), "rotated": rotated.astype(np.float32)}, samples=samples,
                chunk_rows=200)
    return path


def test_cli_ranks_planted_layer_first(planted, tmp_path):
    from tests.reliability.conftest import run_main

    db = tmp_path / "r.duckdb"
    r = run_main("disentangle", str(planted), "--factors", "a,b,c", "--metrics", "mig,infomec", "--db", str(db),
                 "--format", "csv")
    assert r.returncode == 0, r.stderr
    df = pd.read_csv(io.StringIO(r.stdout))
    mig = df[df["metric"] == "mig"].set_index("layer")["value"]
    assert mig["clean"] > 0.9 and mig["clean"] - mig["rotated"] > 0.3
    assert list(df.drop_duplicates("layer")["layer_index"]) == [0, 1]
    stored = ResultsDB(db).frame(analysis="disentangle")
    assert len(stored) == len(df)


def test_cli_bad_factor_is_one_line(planted, tmp_path):
    from tests.reliability.conftest import run_main

    r = run_main("disentangle", str(planted), "--factors", "a,nope", "--db", str(tmp_path / "x.duckdb"))
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "nope" in r.stderr
    assert not (tmp_path / "x.duckdb").exists()
    r = run_main("disentangle", str(planted), "--factors", "a", "--importance", "forest")
    assert r.returncode == 2 and "forest" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def _study(tmp_path: Path, store: Path, params: dict) -> Path:
    y = tmp_path / "s.yaml"
    y.write_text(json.dumps({"name": "dis", "workdir": "w", "stores": [
        {"name": "planted", "model": "digits-mlp:0", "data": "digits"}],
        "analyses": [{"run": "disentangle", "stores": ["planted"], "params": params}]}))
    (tmp_path / "w").mkdir(exist_ok=True)
    link = tmp_path / "w" / "planted"
    if not link.exists():
        link.symlink_to(store, target_is_directory=True)
    return y


def test_study_step_validates_params_before_work(planted, tmp_path):
    y = _study(tmp_path, planted, {"factors": ["a"], "metric": ["mig"]})
    with pytest.raises(ConfigError, match=r"analyses\.0 \(run: disentangle\): unknown param 'metric'"):
        load_study(y)
    y = _study(tmp_path, planted, {"factors": ["a"], "metrics": ["migg"]})
    with pytest.raises(ConfigError, match="unknown disentanglement metric 'migg'"):
        load_study(y)


def test_study_runs_and_report_has_section(planted, tmp_path):
    y = _study(tmp_path, planted, {"factors": "a,b,c", "metrics": ["mig", "dci"], "max_rows": 400})
    report = run_study(y)
    html = report.read_text()
    assert "Disentanglement: known factors per layer" in html
    df = ResultsDB(tmp_path / "w" / "repscope.duckdb").frame(analysis="disentangle")
    assert set(df["metric"]) >= {"mig", "dci_disentanglement", "dci_completeness"}
    assert {p["n_rows"] for p in df["params"]} == {400}
    # the section follows geometry/dictionaries in pipeline order, and the planted layer wins DCI disentanglement
    d = df[df["metric"] == "dci_disentanglement"].set_index("layer")["value"]
    assert d["clean"] > d["rotated"]
    assert build_report(ResultsDB(tmp_path / "w" / "repscope.duckdb"), tmp_path / "r2.html").exists()
