"""Paired inputs must pair (issue 24, part 3): every analysis over two stores checks that row i of each is the same
input, refuses with one line otherwise, and computes on mismatched rows only through an explicit opt-in
(`--pair-by COLUMN` aligns on a shared sample id, `--unpaired` takes the rows as they are), recorded in params.

Expected values of the opt-ins come from linear CKA written out in numpy on the aligned arrays."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from repscope.errors import StoreError
from repscope.results import Result, ResultsDB
from tests.reliability.conftest import run_main


def np_linear_cka(x: np.ndarray, y: np.ndarray) -> float:
    """Kornblith et al. 2019: ‖YcᵀXc‖²_F / (‖XcᵀXc‖_F ‖YcᵀYc‖_F), in float64 numpy."""
    x = np.asarray(x, np.float64).reshape(len(x), -1)
    y = np.asarray(y, np.float64).reshape(len(y), -1)
    x, y = x - x.mean(0), y - y.mean(0)
    return float(np.linalg.norm(y.T @ x) ** 2 / (np.linalg.norm(x.T @ x) * np.linalg.norm(y.T @ y)))


@pytest.fixture(scope="module")
def real(tmp_path_factory) -> dict[str, Path]:
    """digits@200 through two digits MLPs, templates:200 through MiniLM (HF) and MiniLM (sentence-transformers)."""
    from repscope.extract import extract
    from repscope.sources.load import load_dataset, load_model

    d = tmp_path_factory.mktemp("paired")
    out = {}
    for name, model, data, layers in (("d0", "digits-mlp:0", "digits@200", None),
                                      ("d1", "digits-mlp:1", "digits@200", None),
                                      ("t0", "minilm", "templates:200", "encoder.layer.1"),
                                      ("t1", "minilm-st", "templates:200", "encoder.layer.1")):
        extract(load_model(model, device="cpu"), load_dataset(data), d / name, layers=layers, progress=False)
        out[name] = d / name
    return out


@pytest.fixture(scope="module")
def planted(tmp_path_factory) -> dict[str, Path]:
    """Stores whose samples are known by id: A holds ids 0..79 in order, B holds ids 30..109 shuffled (80 rows too,
    so only the samples, not the row count, tell them apart). Each sample's features depend on its id only, plus a
    per-store map, so aligning by id gives a known pair of arrays."""
    from repscope.store import write_store

    d = tmp_path_factory.mktemp("planted")
    rng = np.random.default_rng(0)
    base = rng.normal(size=(110, 6))  # per-id latent
    ids_a = np.arange(80)
    ids_b = rng.permutation(np.arange(30, 110))
    wa, wb = rng.normal(size=(6, 5)), rng.normal(size=(6, 4))
    feats_a = np.tanh(base[ids_a] @ wa).astype(np.float32)
    feats_b = (base[ids_b] @ wb + 0.3 * rng.normal(size=(80, 4))).astype(np.float32)
    for name, ids, feats in (("A", ids_a, feats_a), ("B", ids_b, feats_b)):
        samples = pd.DataFrame({"id": ids, "label": ids % 3, "dup": ids % 2})
        write_store(d / name, {"h": feats}, samples)
    np.savez(d / "truth.npz", ids_a=ids_a, ids_b=ids_b, feats_a=feats_a, feats_b=feats_b)
    return {"A": d / "A", "B": d / "B", "truth": d / "truth.npz"}


def _aligned(truth: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Shared ids in A's order and the two stores' features of those ids, aligned by hand."""
    t = np.load(truth)
    pos_b = {int(i): k for k, i in enumerate(t["ids_b"])}
    shared = [int(i) for i in t["ids_a"] if int(i) in pos_b]
    ia = [int(np.nonzero(t["ids_a"] == i)[0][0]) for i in shared]
    return np.array(shared), t["feats_a"][ia], t["feats_b"][[pos_b[i] for i in shared]]


def _refused(r, *words: str) -> None:
    assert r.returncode == 2, (r.returncode, r.stdout, r.stderr)
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), r.stderr
    assert "Traceback" not in r.stderr
    for w in words:
        assert w in lines[0], (w, lines[0])


def _rows(db: Path, analysis: str | None = None) -> pd.DataFrame:
    return ResultsDB(db).frame(analysis=analysis) if db.exists() else pd.DataFrame()


# ---- refusals on real stores of different datasets ------------------------------------------------------------------
@pytest.mark.parametrize("args", [
    ("compare", "{d0}", "{t0}"),
    ("compare", "{d0}", "{t0}", "--streaming"),
    ("compat", "{d0}", "{t0}"),
    ("compat", "{t0}", "{d0}"),
    ("match", "{d0}", "{t0}", "--layer", "act1", "--layer-b", "encoder.layer.1"),
])
def test_different_datasets_are_refused_with_one_line_and_no_row(real, tmp_path, args):
    db = tmp_path / "r.duckdb"
    r = run_main(*[a.format(**{k: str(v) for k, v in real.items()}) for a in args], "--db", db)
    _refused(r, "'d0'", "'t0'", "digits@200", "templates:200", "--pair-by", "--unpaired")
    assert not len(_rows(db))


def test_same_dataset_from_different_models_pairs(real, tmp_path):
    db = tmp_path / "r.duckdb"
    r = run_main("compare", real["d0"], real["d1"], "--layers", "act1", "--layers-b", "act1", "--db", db,
                 "--format", "json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    from repscope.store import RepStore

    a, b = RepStore.open(real["d0"]), RepStore.open(real["d1"])
    assert row["value"] == pytest.approx(np_linear_cka(a.get("act1"), b.get("act1")), abs=1e-6)
    assert "pair_by" not in row["params"] and "unpaired" not in row["params"]
    r = run_main("compare", real["t0"], real["t1"], "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)) == 1
    r = run_main("compat", real["d0"], real["d1"], "--transforms", "none,procrustes", "--db", db)
    assert r.returncode == 0, r.stderr
    r = run_main("compat", real["t0"], real["t1"], "--target", "topic", "--transforms", "procrustes", "--db", db)
    assert r.returncode == 0, r.stderr
    assert len(_rows(db, "compat")) > 0


def test_unpaired_opt_in_takes_the_rows_as_they_are(real, tmp_path):
    from repscope.store import RepStore

    db = tmp_path / "r.duckdb"
    r = run_main("compare", real["d0"], real["t0"], "--layers", "act1", "--unpaired", "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    (row,) = json.loads(r.stdout)
    want = np_linear_cka(RepStore.open(real["d0"]).get("act1"), RepStore.open(real["t0"]).get("encoder.layer.1"))
    assert row["value"] == pytest.approx(want, abs=1e-6)
    assert row["params"]["unpaired"] is True
    r = run_main("compat", real["d0"], real["t0"], "--unpaired", "--transforms", "procrustes", "--db", db,
                 "--format", "json")
    assert r.returncode == 0, r.stderr
    assert all(x["params"]["unpaired"] is True for x in json.loads(r.stdout))


# ---- the opt-in by id, against numpy on arrays aligned by hand -----------------------------------------------------
def test_pair_by_aligns_on_shared_ids_and_matches_numpy(planted, tmp_path):
    db = tmp_path / "r.duckdb"
    r = run_main("compare", planted["A"], planted["B"], "--db", db)
    _refused(r, "'A'", "'B'", "--pair-by")
    assert not db.exists()
    shared, xa, xb = _aligned(planted["truth"])
    assert len(shared) == 50
    want = np_linear_cka(xa, xb)
    assert abs(want - np_linear_cka(xa, xb[::-1])) > 0.05  # the alignment matters to the number
    for extra in ((), ("--streaming",)):
        r = run_main("compare", planted["A"], planted["B"], "--pair-by", "id", *extra, "--db", db,
                     "--format", "json")
        assert r.returncode == 0, r.stderr
        (row,) = json.loads(r.stdout)
        assert row["value"] == pytest.approx(want, abs=1e-6)
        assert row["params"]["pair_by"] == "id" and row["params"]["rows_paired"] == 50 and row["params"]["n"] == 50
    # compat on the aligned views equals compat_arrays on the hand-aligned arrays
    from repscope.compat.store import compat_arrays

    r = run_main("compat", planted["A"], planted["B"], "--pair-by", "id", "--transforms", "procrustes",
                 "--db", db, "--format", "json")
    assert r.returncode == 0, r.stderr
    got = {(x["params"]["query"], x["params"]["gallery"], x["metric"]): x["value"] for x in json.loads(r.stdout)}
    table, _ = compat_arrays(xa, xb, shared % 3, transforms=["procrustes"], device="cpu")
    for rec in table.to_dict(orient="records"):
        for metric in ("recall@1", "mAP"):
            if rec.get(metric) is not None and rec[metric] == rec[metric]:  # the chance row has no mAP
                assert got[(rec["query"], rec["gallery"], metric)] == pytest.approx(rec[metric], abs=1e-9)


def test_compare_units_read_the_aligned_rows_of_each_store(planted):
    """The compare plan hands each unit the on-disk stores and their aligned rows (views do not pickle), so a unit
    that travels to a worker reads the rows a local run reads; here each unit goes through pickle, as to Ray."""
    import pickle

    from repscope.similarity.plan import plan_compare
    from repscope.store import RepStore
    from repscope.store.pairing import pair_stores

    a, b = pair_stores([RepStore.open(planted["A"]), RepStore.open(planted["B"])], pair_by="id")
    plan = plan_compare(a, b, "linear_cka", max_rows=None, device="cpu")
    res = plan.combine([pickle.loads(pickle.dumps(unit)).run() for unit in plan.units])
    _, xa, xb = _aligned(planted["truth"])
    (row,) = res.rows
    assert row.value == pytest.approx(np_linear_cka(xa, xb), abs=1e-6) and row.params["pair_by"] == "id"
    with pytest.raises(StoreError, match="do not hold the same samples"):
        plan_compare(RepStore.open(planted["A"]), RepStore.open(planted["B"]), "linear_cka")


def test_stitching_relative_and_concat_check_pairing(planted):
    from repscope.probe.protocols import concat_stores
    from repscope.similarity.layer_pairs import stitch_layer_pair
    from repscope.similarity.stitching import stitching_score
    from repscope.store import RepStore
    from repscope.store.pairing import pair_stores

    a, b = RepStore.open(planted["A"]), RepStore.open(planted["B"])
    with pytest.raises(StoreError, match="'A'.*'B'.*--pair-by"):
        stitch_layer_pair(a, b, "h", n_anchors=8, device="cpu")
    with pytest.raises(StoreError, match="do not hold the same samples"):
        concat_stores([a, b], "h", device="cpu")
    va, vb = pair_stores([a, b], pair_by="id")
    res = stitch_layer_pair(va, vb, "h", kinds=("affine",), n_anchors=8, device="cpu").frame()
    assert set(res["analysis"]) == {"stitching", "relative_stitching"}
    assert all(p["pair_by"] == "id" for p in res["params"])
    shared, xa, xb = _aligned(planted["truth"])
    want = stitching_score(xa, xb, shared % 3, kind="affine", device="cpu")["r2"]
    got = res[(res["analysis"] == "stitching") & (res["metric"] == "r2")]["value"].item()
    assert got == pytest.approx(want, abs=1e-9)
    res = concat_stores([va, vb], "h", device="cpu").frame()
    assert len(res) and all(p["rows_paired"] == 50 for p in res["params"])


def test_study_steps_refuse_and_accept_the_opt_in(planted):
    from repscope.analyses import study_steps
    from repscope.compat.study import run as compat_step
    from repscope.similarity.study import CompareParams
    from repscope.store import RepStore

    def compare_step(stores, measures, **params):
        return study_steps()["compare"].run(stores, CompareParams(measures=measures, **params))

    a, b = RepStore.open(planted["A"]), RepStore.open(planted["B"])
    with pytest.raises(StoreError, match="do not hold the same samples"):
        compare_step([a, b], ["linear_cka"])
    with pytest.raises(StoreError, match="do not hold the same samples"):
        compat_step([a, b], transforms=["none"])
    (row,) = compare_step([a, b], ["linear_cka"], max_rows=None, device="cpu", pair_by="id").rows
    _, xa, xb = _aligned(planted["truth"])
    assert row.value == pytest.approx(np_linear_cka(xa, xb), abs=1e-6)
    assert all(r.params["unpaired"] is True for r in compat_step([a, b], transforms=["procrustes"], max_rows=None,
                                                                  unpaired=True).rows)


@pytest.mark.parametrize("args, words", [
    (("--pair-by", "colour"), ("--pair-by 'colour'", "no such samples column")),
    (("--pair-by", "dup"), ("--pair-by 'dup'", "repeated values")),
    (("--pair-by", "id", "--unpaired"), ("--pair-by and --unpaired",)),
])
def test_bad_opt_ins_are_one_line(planted, tmp_path, args, words):
    db = tmp_path / "r.duckdb"
    _refused(run_main("compare", planted["A"], planted["B"], *args, "--db", db), *words)
    assert not db.exists()


def test_unpaired_needs_equal_row_counts_and_disjoint_ids_share_nothing(tmp_path):
    from repscope.store import write_store

    x = np.random.default_rng(1).normal(size=(20, 3))
    write_store(tmp_path / "P", {"h": x}, pd.DataFrame({"id": np.arange(20)}))
    write_store(tmp_path / "Q", {"h": x[:15]}, pd.DataFrame({"id": np.arange(100, 115)}))
    db = tmp_path / "r.duckdb"
    _refused(run_main("compare", tmp_path / "P", tmp_path / "Q", "--unpaired", "--db", db), "[15, 20] rows")
    _refused(run_main("compare", tmp_path / "P", tmp_path / "Q", "--pair-by", "id", "--db", db), "share no value")
    _refused(run_main("compare", tmp_path / "P", "--pair-by", "id", "--db", db), "second store")
    assert not db.exists()


def test_array_data_with_equal_tables_but_different_inputs_does_not_pair(tmp_path):
    """Two stores of array data whose samples tables agree but whose recorded content hashes (which cover the raw
    inputs) differ hold different inputs: refused. A table-only hash (text data, write_store) is trusted."""
    from repscope.store import RepStore, write_store
    from repscope.store.pairing import same_samples

    x = np.random.default_rng(2).normal(size=(12, 3))
    table = pd.DataFrame({"id": np.arange(12), "label": np.arange(12) % 2})
    write_store(tmp_path / "U", {"h": x}, table, provenance={"dataset_hash": "aaaa000011112222"})
    write_store(tmp_path / "V", {"h": x}, table, provenance={"dataset_hash": "bbbb000011112222"})
    write_store(tmp_path / "W", {"h": x}, table)  # hash of the table only
    u, v, w = (RepStore.open(tmp_path / n) for n in "UVW")
    assert not same_samples(u, v)
    assert same_samples(u, w) and same_samples(w, v)


# ---- report --compare over two results DBs ---------------------------------------------------------------------------
def test_report_compare_refuses_a_store_extracted_from_different_data(planted, tmp_path):
    """Run A and run B both have a store named 's', but B's was extracted from other samples."""
    import shutil

    from repscope.report.provenance import record_store_provenance
    from repscope.store import RepStore

    dbs = []
    for run, src in (("a", planted["A"]), ("b", planted["B"])):
        store_dir = tmp_path / run / "s"
        shutil.copytree(src, store_dir)
        store = RepStore.open(store_dir)
        db = ResultsDB(tmp_path / f"{run}.duckdb", study=run)
        res = Result()
        res.add("probe", "accuracy", 0.5 if run == "a" else 0.7, layer="h", store="s", params={"probe": "logistic"})
        db.record_result(res)
        record_store_provenance(db, store)
        dbs.append(db.path)
    out = tmp_path / "c.html"
    r = run_main("report", "--compare", dbs[0], dbs[1], "-o", out)
    _refused(r, "store 's'", "different samples", "--unpaired")
    assert not out.exists()
    r = run_main("report", "--compare", dbs[0], dbs[1], "-o", out, "--unpaired")
    assert r.returncode == 0, r.stderr
    assert out.exists()
    # the same store in both runs compares as before
    r = run_main("report", "--compare", dbs[0], dbs[0], "-o", tmp_path / "same.html")
    assert r.returncode == 0, r.stderr
