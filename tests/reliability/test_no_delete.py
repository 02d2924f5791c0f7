"""repscope deletes or replaces only what it can prove it wrote (`repscope.store.ownership`).

Every writing command is pointed at a folder holding the user's own files (thesis.txt, sub/data.csv), with and
without --overwrite and as `-o .`: it must exit 2 with one `error:` line and leave every file byte-identical.
Replacing a complete store or checkpoint needs --overwrite, and then leaves unrelated files in the folder alone.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from repscope.errors import OutputError
from repscope.store import RepStore
from repscope.store.ownership import is_repscope_checkpoint, is_repscope_report
from repscope.tensorfile import save_tensors

from .conftest import run_main

ARGS = ["--batch-size", "16", "--chunk-rows", "16", "--device", "cpu"]
SAE = ["--layer", "fc1", "--steps", "3", "--batch-size", "16", "--expansion", "1", "--k", "4", "--device", "cpu"]


def user_folder(root: Path) -> dict[Path, bytes]:
    """A folder of the user's own files; returns {path: bytes} to compare against afterwards."""
    (root / "sub").mkdir(parents=True)
    files = {root / "thesis.txt": b"chapter 1\n", root / "sub" / "data.csv": b"a,b\n1,2\n"}
    for p, b in files.items():
        p.write_bytes(b)
    return files


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` (relative path -> bytes)."""
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def assert_refused(r, *pattern: str) -> str:
    """Exit 2, exactly one `error:` line on stderr (matching every `pattern`), no traceback; returns the line."""
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in r.stderr, r.stderr
    for pat in pattern:
        assert re.search(pat, lines[0]), (pat, lines[0])
    return lines[0]


@pytest.fixture(autouse=True)
def _db(tmp_path, monkeypatch):
    monkeypatch.setenv("REPSCOPE_DB", str(tmp_path / "results.duckdb"))  # never ./repscope.duckdb in a user folder


@pytest.fixture(scope="module")
def made(tmp_path_factory, mlp_file):
    """A complete store and an adapter trained on it (module-wide; tests only read them)."""
    d = tmp_path_factory.mktemp("made")
    r = run_main("extract", mlp_file, "digits@48", "-o", d / "store", *ARGS)
    assert r.returncode == 0, r.stderr
    r = run_main("adapter", "train", d / "store", "--layer", "fc1", "--epochs", "1", "-o", d / "a.safetensors",
                 "--db", d / "r.duckdb", "--format", "json")
    assert r.returncode == 0, r.stderr
    return {"store": d / "store", "adapter": d / "a.safetensors", "mlp": mlp_file}


def folder_commands(made: dict[str, Path], out: str | Path) -> dict[str, list]:
    """Every command that writes a folder (store or SAE checkpoint), pointed at `out`."""
    s = made["store"]
    return {
        "extract": ["extract", made["mlp"], "digits@32", "-o", out, *ARGS],
        "adapter apply": ["adapter", "apply", s, made["adapter"], "--layer", "fc1", "-o", out],
        "adapter train --apply-out": ["adapter", "train", s, "--layer", "fc1", "--epochs", "1", "--format", "json",
                                      "-o", Path(made["adapter"]).parent / "new_adapter.safetensors",
                                      "--apply-out", out],
        "sae train": ["sae", "train", s, *SAE, "-o", out],
    }


COMMANDS = ["extract", "adapter apply", "adapter train --apply-out", "sae train"]


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("cmd", COMMANDS)
def test_folder_of_user_files_is_never_touched(tmp_path, made, cmd, overwrite):
    files = user_folder(tmp_path / "D")
    before = snapshot(tmp_path / "D")
    argv = folder_commands(made, tmp_path / "D")[cmd]
    if overwrite:
        argv = [*argv, "--fresh" if cmd == "sae train" else "--overwrite"]
    assert_refused(run_main(*argv), "not empty|holds no repscope")
    assert snapshot(tmp_path / "D") == before and all(p.read_bytes() == b for p, b in files.items())
    assert not (made["adapter"].parent / "new_adapter.safetensors").exists()  # refused before training


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("cmd", COMMANDS)
def test_dot_and_parents_of_the_current_folder_are_refused(tmp_path, made, cmd, overwrite, monkeypatch):
    user_folder(tmp_path / "D")
    before = snapshot(tmp_path / "D")
    flag = ["--fresh" if cmd == "sae train" else "--overwrite"] if overwrite else []
    monkeypatch.chdir(tmp_path / "D")
    assert_refused(run_main(*folder_commands(made, ".")[cmd], *flag), "current folder")
    monkeypatch.chdir(tmp_path / "D" / "sub")
    assert_refused(run_main(*folder_commands(made, "..")[cmd], *flag), "current folder")
    assert snapshot(tmp_path / "D") == before


def test_an_empty_current_folder_is_refused_too(tmp_path, made, monkeypatch):
    """`-o .` is refused even where nothing could be lost: the rule does not depend on what is there today."""
    (tmp_path / "E").mkdir()
    monkeypatch.chdir(tmp_path / "E")
    assert_refused(run_main("extract", made["mlp"], "digits@32", "-o", ".", *ARGS), "current folder")
    assert list((tmp_path / "E").iterdir()) == []


@pytest.mark.parametrize("cmd", ["adapter apply", "adapter train --apply-out", "sae train"])
def test_the_input_store_and_its_parents_are_refused(made, cmd):
    store = made["store"]
    before = snapshot(store.parent)
    for out in (store, store.parent):
        argv = folder_commands(made, out)[cmd]
        assert_refused(run_main(*argv, "--fresh" if cmd == "sae train" else "--overwrite"), "is the input")
    assert snapshot(store.parent) == before
    RepStore.open(store).verify()


def test_an_empty_folder_is_written_into(tmp_path, made):
    (tmp_path / "E").mkdir()
    r = run_main("extract", made["mlp"], "digits@32", "-o", tmp_path / "E", *ARGS)
    assert r.returncode == 0, r.stderr
    assert RepStore.open(tmp_path / "E").n_rows == 32


def test_complete_store_needs_overwrite_and_keeps_unrelated_files(tmp_path, made):
    out = tmp_path / "S"
    assert run_main("extract", made["mlp"], "digits@32", "-o", out, *ARGS).returncode == 0
    (out / "notes.txt").write_bytes(b"my notes")
    (out / "mine").mkdir()
    (out / "mine" / "x.bin").write_bytes(b"\x00\x01")
    before = snapshot(out)
    assert_refused(run_main("extract", made["mlp"], "digits@40", "-o", out, *ARGS), "already exists and is complete",
                   "--overwrite")
    assert snapshot(out) == before
    r = run_main("extract", made["mlp"], "digits@40", "-o", out, *ARGS, "--overwrite")
    assert r.returncode == 0, r.stderr
    s = RepStore.open(out)
    assert s.n_rows == 40
    s.verify()
    assert (out / "notes.txt").read_bytes() == b"my notes" and (out / "mine" / "x.bin").read_bytes() == b"\x00\x01"


def test_failed_overwrite_removes_only_store_files(tmp_path, made):
    """A replacement that fails on bad input (a digits MLP on iris) removes the store it started, nothing else."""
    out = tmp_path / "S"
    assert run_main("extract", made["mlp"], "digits@32", "-o", out, *ARGS).returncode == 0
    (out / "notes.txt").write_bytes(b"my notes")
    assert_refused(run_main("extract", made["mlp"], "iris", "-o", out, *ARGS, "--overwrite"), "first batch")
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert (out / "notes.txt").read_bytes() == b"my notes"


def test_abort_removes_only_what_the_writer_wrote(tmp_path):
    """A folder the writer made, where a file appeared meanwhile: abort removes the store files, keeps the file."""
    import pandas as pd

    from repscope.store import StoreWriter

    out = tmp_path / "new"
    w = StoreWriter.create_or_resume(out, pd.DataFrame({"id": range(4)}), {"model": "m", "pooling": "none"},
                                     chunk_rows=2)
    (out / "later.txt").write_bytes(b"x")
    w.abort(force=True)
    assert sorted(p.name for p in out.iterdir()) == ["later.txt"]
    w = StoreWriter.create_or_resume(tmp_path / "fresh", pd.DataFrame({"id": range(4)}), {"model": "m"},
                                     chunk_rows=2)
    w.abort(force=True)
    assert not (tmp_path / "fresh").exists()  # made by the writer and left empty: removed


def test_adapter_train_apply_out_respects_overwrite(tmp_path, made):
    """--apply-out used to replace a complete store without being asked."""
    out = tmp_path / "adapted"
    argv = ["adapter", "train", made["store"], "--layer", "fc1", "--epochs", "1", "--format", "json"]
    r = run_main(*argv, "-o", tmp_path / "a1.safetensors", "--apply-out", out)
    assert r.returncode == 0, r.stderr
    before = snapshot(out)
    assert_refused(run_main(*argv, "-o", tmp_path / "a2.safetensors", "--apply-out", out), "already exists",
                   "--overwrite")
    assert snapshot(out) == before and not (tmp_path / "a2.safetensors").exists()
    r = run_main(*argv, "-o", tmp_path / "a2.safetensors", "--apply-out", out, "--overwrite")
    assert r.returncode == 0, r.stderr
    assert RepStore.open(out).provenance["adapter"] == str((tmp_path / "a2.safetensors").resolve())


def foreign_safetensors(path: Path) -> bytes:
    """A valid safetensors file written by someone else (no repscope marker); returns its bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    save_file({"w": torch.ones(2)}, str(path), metadata={"author": "me"})
    return path.read_bytes()


CHECKPOINT_COMMANDS = {
    "learn train": lambda out: ["learn", "train", "ae", "iris", "--epochs", "1", "--device", "cpu", "-o", out],
    "zoo train-mlp": lambda out: ["zoo", "train-mlp", "--epochs", "1", "-o", out],
    "adapter train": lambda out, s=None: ["adapter", "train", s, "--layer", "fc1", "--epochs", "1", "--format",
                                          "json", "-o", out],
}


def checkpoint_argv(made: dict[str, Path], cmd: str, out: Path) -> list:
    f = CHECKPOINT_COMMANDS[cmd]
    return f(out, made["store"]) if cmd == "adapter train" else f(out)


@pytest.mark.parametrize("overwrite", [False, True], ids=["plain", "overwrite"])
@pytest.mark.parametrize("cmd", list(CHECKPOINT_COMMANDS))
def test_checkpoint_files_repscope_did_not_write_are_never_replaced(tmp_path, made, cmd, overwrite):
    user_folder(tmp_path / "D")
    theirs = tmp_path / "D" / "model.safetensors"
    foreign_safetensors(theirs)
    before = snapshot(tmp_path / "D")
    flag = ["--overwrite"] if overwrite else []
    assert_refused(run_main(*checkpoint_argv(made, cmd, theirs), *flag), "not a checkpoint repscope wrote")
    assert_refused(run_main(*checkpoint_argv(made, cmd, tmp_path / "D"), *flag), "is a folder|must end in")
    assert snapshot(tmp_path / "D") == before


@pytest.mark.parametrize("cmd", list(CHECKPOINT_COMMANDS))
def test_replacing_a_repscope_checkpoint_needs_overwrite(tmp_path, made, cmd):
    out = tmp_path / "ck" / "m.safetensors"
    r = run_main(*checkpoint_argv(made, cmd, out))
    assert r.returncode == 0, r.stderr
    assert is_repscope_checkpoint(out)
    (tmp_path / "ck" / "notes.txt").write_bytes(b"n")
    first = out.read_bytes()
    assert_refused(run_main(*checkpoint_argv(made, cmd, out)), "already exists", "--overwrite")
    assert out.read_bytes() == first
    r = run_main(*checkpoint_argv(made, cmd, out), "--overwrite")
    assert r.returncode == 0, r.stderr
    assert is_repscope_checkpoint(out) and (tmp_path / "ck" / "notes.txt").read_bytes() == b"n"


def test_learn_resume_refuses_a_foreign_file(tmp_path):
    theirs = tmp_path / "m.safetensors"
    before = foreign_safetensors(theirs)
    assert_refused(run_main("learn", "train", "ae", "iris", "--epochs", "1", "-o", theirs, "--resume"),
                   "not a checkpoint repscope wrote")
    assert theirs.read_bytes() == before


def test_save_tensors_guards_every_checkpoint_write(tmp_path):
    """The library guard under every checkpoint (learners, adapters, SAEs, zoo weights): a file repscope did not
    write is never replaced; one it wrote is (the CLI asks for --overwrite before that)."""
    theirs = tmp_path / "x.safetensors"
    before = foreign_safetensors(theirs)
    assert not is_repscope_checkpoint(theirs)
    with pytest.raises(OutputError, match="not a checkpoint repscope wrote"):
        save_tensors(theirs, {"a": torch.zeros(2)})
    assert theirs.read_bytes() == before
    (tmp_path / "t.txt").write_bytes(b"text")
    with pytest.raises(OutputError):
        save_tensors(tmp_path / "t.txt", {"a": torch.zeros(2)})
    assert (tmp_path / "t.txt").read_bytes() == b"text"
    ours = save_tensors(tmp_path / "ours.safetensors", {"a": torch.zeros(2)})
    assert is_repscope_checkpoint(ours)
    save_tensors(ours, {"a": torch.ones(2)})


def test_sae_folder_rules(tmp_path, made):
    """An SAE folder is written when new, empty or a repscope SAE checkpoint; a foreign config.json is refused."""
    out = tmp_path / "sae"
    r = run_main("sae", "train", made["store"], *SAE, "-o", out, "--format", "json")
    assert r.returncode == 0, r.stderr
    (out / "notes.txt").write_bytes(b"n")
    r = run_main("sae", "train", made["store"], *SAE, "-o", out, "--fresh", "--format", "json")
    assert r.returncode == 0, r.stderr
    assert (out / "notes.txt").read_bytes() == b"n"
    other = tmp_path / "other"
    other.mkdir()
    (other / "config.json").write_text('{"name": "my app"}')
    assert_refused(run_main("sae", "train", made["store"], *SAE, "-o", other), "holds no repscope SAE")
    assert sorted(p.name for p in other.iterdir()) == ["config.json"]


def test_report_replaces_only_repscope_reports(tmp_path):
    mine = tmp_path / "D" / "index.html"
    user_folder(tmp_path / "D")
    mine.write_bytes(b"<html>my page</html>")
    before = snapshot(tmp_path / "D")
    assert_refused(run_main("report", "-o", mine), "not a report repscope wrote")
    assert_refused(run_main("report", "-o", tmp_path / "D"), "is a folder")
    from repscope.results import ResultsDB

    for name in ("a", "b"):
        ResultsDB(tmp_path / f"{name}.duckdb").record("probe", "accuracy", 0.5, store="s", layer="fc1")
    assert_refused(run_main("report", "--compare", tmp_path / "a.duckdb", tmp_path / "b.duckdb", "-o", mine),
                   "not a report repscope wrote")
    assert snapshot(tmp_path / "D") == before
    ours = tmp_path / "r.html"
    for _ in range(2):  # a report is a view of the DB: rerunning rewrites it
        r = run_main("report", "-o", ours)
        assert r.returncode == 0, r.stderr
    assert is_repscope_report(ours)
    assert not any(p.name.endswith(".tmp") for p in tmp_path.iterdir())


def test_reports_from_before_the_generator_tag_are_recognised(tmp_path):
    ours = tmp_path / "r.html"
    assert run_main("report", "-o", ours).returncode == 0
    old = tmp_path / "old.html"
    old.write_text("\n".join(ln for ln in ours.read_text().splitlines() if 'name="generator"' not in ln))
    assert is_repscope_report(old)
    fake = tmp_path / "fake.html"
    fake.write_text("<!DOCTYPE html><html><body><p>repscope is a tool</p></body></html>")
    assert not is_repscope_report(fake)


def test_results_export_rules(tmp_path):
    d = tmp_path / "D"
    user_folder(d)
    (d / "t.parquet").write_bytes(b"PAR1 not really")
    before = snapshot(d)
    sql = "SELECT 1 AS a"
    assert_refused(run_main("results", sql, "-o", d / "sub" / "data.csv"), "already exists", "--overwrite")
    for flag in ([], ["--overwrite"]):
        assert_refused(run_main("results", sql, "-o", d / "t.parquet", *flag), "not a Parquet export repscope wrote")
    assert_refused(run_main("results", sql, "-o", d, "--overwrite"), "is a folder")
    assert snapshot(d) == before
    out = tmp_path / "x.parquet"
    assert run_main("results", sql, "-o", out).returncode == 0
    assert_refused(run_main("results", "SELECT 2 AS a", "-o", out), "already exists")
    assert run_main("results", "SELECT 2 AS a", "-o", out, "--overwrite").returncode == 0
    import pandas as pd

    assert pd.read_parquet(out)["a"].tolist() == [2]
    r = run_main("results", "SELECT 3 AS a", "-o", d / "sub" / "data.csv", "--overwrite")  # the user's word for it
    assert r.returncode == 0 and (d / "sub" / "data.csv").read_text().split() == ["a", "3"]


def test_study_refuses_a_store_folder_of_user_files_and_a_foreign_report(tmp_path):
    (tmp_path / "study.yaml").write_text(
        "name: t\nworkdir: runs\nstores:\n  - {name: s0, model: \"digits-mlp:0\", data: \"digits@32\"}\n")
    files = user_folder(tmp_path / "runs" / "s0")
    r = run_main("study", tmp_path / "study.yaml")
    assert_refused(r, "holds no repscope store")
    assert all(p.read_bytes() == b for p, b in files.items())
    (tmp_path / "study.yaml").write_text(
        "name: t\nworkdir: runs\nreport: mine.html\nstores:\n  - {name: s1, model: \"digits-mlp:0\", data: "
        "\"digits@32\"}\n")
    (tmp_path / "runs" / "mine.html").write_bytes(b"<p>mine</p>")
    assert_refused(run_main("study", tmp_path / "study.yaml"), "not a report repscope wrote")
    assert not (tmp_path / "runs" / "s1").exists()  # refused before any extraction
    assert (tmp_path / "runs" / "mine.html").read_bytes() == b"<p>mine</p>"


def test_demo_refuses_foreign_report_and_db(tmp_path):
    import duckdb

    d = tmp_path / "demo"
    d.mkdir()
    (d / "report.html").write_bytes(b"<p>mine</p>")
    assert_refused(run_main("demo", "-o", d), "not a report repscope wrote")
    (d / "report.html").unlink()
    con = duckdb.connect(str(d / "repscope.duckdb"))
    con.execute("CREATE TABLE mine AS SELECT 42 AS x")
    con.close()
    before = (d / "repscope.duckdb").read_bytes()
    assert_refused(run_main("demo", "-o", d), "not a repscope results DB")
    assert (d / "repscope.duckdb").read_bytes() == before
    assert sorted(p.name for p in d.iterdir() if not p.name.endswith(".lock")) == ["repscope.duckdb"]

