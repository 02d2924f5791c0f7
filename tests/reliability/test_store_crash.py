"""Stores always resume or refuse cleanly: kills in the creation windows, 20 random SIGKILLs, a second writer,
any exception during extraction, stale temp files, and file modes that honour the umask."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import textwrap

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from repscope.extract import extract
from repscope.sources.datasets import ArrayDataset
from repscope.sources.models import TorchModuleAdapter
from repscope.store import RepStore
from repscope.store.lock import StoreLock
from repscope.store.manifest import read_manifest, write_manifest

from .conftest import cli_env, run_main

ARGS = ["--batch-size", "6", "--chunk-rows", "12", "--device", "cpu"]
DATA, ROWS = "digits@300", 300  # 25 chunk commits per run
KILLS = 20

# One Python process imports repscope once, then forks each `repscope extract` run (main(), as the console script
# calls it), so 20 kill/rerun cycles fit in seconds. Children log stderr to OUT.logN next to the store.
DRIVER = textwrap.dedent("""
    import json, os, random, signal, sys, time
    import repscope.extract, repscope.sources.load, repscope.sources.zoo.mlp, sklearn.datasets  # preload
    import repscope.store.writer as W
    from repscope.cli import main

    spec = json.loads(sys.argv[1])
    runs = {}

    def start(out, env=None, slow=0.0):
        n = runs[out] = runs.get(out, 0) + 1
        pid = os.fork()
        if pid == 0:
            code = 3
            try:
                fd = os.open(f"{out}.log{n}", os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
                os.dup2(fd, 2)
                os.environ.update(env or {})
                if slow:
                    flush = W.StoreWriter.flush
                    W.StoreWriter.flush = lambda self: (time.sleep(slow), flush(self))[1]
                sys.argv = ["repscope", *spec["argv"], "-o", out]
                main()
                code = 0
            except SystemExit as e:
                code = e.code if isinstance(e.code, int) else 1
            finally:
                os._exit(code)
        return pid

    def wait(pid):
        return os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1])

    def state(out):
        try:
            p = json.load(open(os.path.join(out, "manifest.json")))["progress"]
            return "complete" if p["complete"] else f"rows {p['rows_done']}"
        except (OSError, ValueError):
            return "no manifest" if os.path.isdir(out) else "no folder"

    d = spec["dir"]
    res = {}
    t0 = time.monotonic()
    res["clean_rc"] = wait(start(f"{d}/clean"))
    T = res["T"] = time.monotonic() - t0
    for fault in ("after-samples", "in-set-layers"):
        out = f"{d}/{fault}"
        rc = wait(start(out, {"REPSCOPE_FAULT": fault}))
        res[fault] = {"killed_rc": rc, "state": state(out), "files": sorted(os.listdir(out)),
                      "rerun_rc": wait(start(out))}
    # two writers on one folder: A (slowed down) holds the lock while B starts
    out = f"{d}/two"
    a = start(out, slow=0.05)
    while state(out) in ("no folder", "no manifest"):
        time.sleep(0.01)
    b = start(out)
    res["two"] = {"a_pid": a, "b_rc": wait(b), "a_rc": wait(a)}
    # even trials: kill at a random time in [0, T] (T: the slowest full run seen so far, the machine may be busy);
    # odd trials: kill at a random point of progress (a random committed row count, then a random 0-20 ms more)
    rng = random.Random(spec["seed"])
    trials = []
    for k in range(spec["kills"]):
        out = f"{d}/k{k}"
        pid, rc = start(out), None
        if k % 2 == 0:
            time.sleep(rng.uniform(0, T))
        else:
            target, deadline = rng.randrange(1, spec["rows"]), time.monotonic() + 60
            while rc is None and time.monotonic() < deadline:
                st = state(out)
                if st == "complete" or (st.startswith("rows") and int(st[5:]) >= target):
                    break
                done, status = os.waitpid(pid, os.WNOHANG)
                if done:
                    rc = os.waitstatus_to_exitcode(status)
                time.sleep(0.002)
            time.sleep(rng.uniform(0, 0.02))
        if rc is None:
            os.kill(pid, signal.SIGKILL)
            rc = wait(pid)
        at_kill = state(out)
        t1 = time.monotonic()
        rerun = wait(start(out)) if at_kill != "complete" else 0  # killed after the final commit: nothing to do
        if at_kill == "no folder":
            T = max(T, time.monotonic() - t1)
        trials.append({"killed_rc": rc, "at_kill": at_kill, "rerun_rc": rerun})
    res["trials"] = trials
    print(json.dumps(res))
""")


@pytest.fixture(scope="module")
def driven(tmp_path_factory, mlp_file):
    """Run the fork driver once: a clean run, two fault injections, two writers, and the random-kill series."""
    d = tmp_path_factory.mktemp("crash")
    (d / "driver.py").write_text(DRIVER)
    spec = {"dir": str(d), "argv": ["extract", str(mlp_file), DATA, *ARGS], "seed": 11, "kills": KILLS, "rows": ROWS}
    env = cli_env({"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"})
    p = subprocess.run([sys.executable, str(d / "driver.py"), json.dumps(spec)], env=env, capture_output=True,
                       text=True, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    return d, json.loads(p.stdout.strip().splitlines()[-1])


def assert_same_store(path, clean: RepStore) -> None:
    s = RepStore.open(path)
    assert s.layers == clean.layers and s.n_rows == clean.n_rows
    for layer in clean.layers:
        assert torch.equal(s.get(layer), clean.get(layer)), layer
    pd.testing.assert_frame_equal(s.samples, clean.samples)
    assert (s.root / "samples.parquet").read_bytes() == (clean.root / "samples.parquet").read_bytes()
    s.verify()


def log(d, name: str) -> str:
    return "\n".join(p.read_text() for p in sorted(d.glob(f"{name}.log*")))


@pytest.mark.parametrize("fault", ["after-samples", "in-set-layers"])
def test_kill_in_creation_window_then_rerun_completes(driven, fault):
    d, res = driven
    r = res[fault]
    assert res["clean_rc"] == 0, log(d, "clean")
    assert r["killed_rc"] == -9, f"the fault point was not reached: {r}"  # the kill really happened there
    assert r["state"] == "rows 0", r
    if fault == "in-set-layers":
        assert "arrays" in r["files"]
    assert r["rerun_rc"] == 0, log(d, fault)
    assert_same_store(d / fault, RepStore.open(d / "clean"))
    assert not list((d / fault).glob(".tmp-*"))


def test_random_sigkills_always_resume_to_identical_store(driven):
    d, res = driven
    clean = RepStore.open(d / "clean")
    trials = res["trials"]
    assert len(trials) == KILLS
    stuck = [(k, t) for k, t in enumerate(trials) if t["rerun_rc"] != 0]
    assert not stuck, (stuck, [log(d, f"k{k}") for k, _ in stuck])
    mid = [t for t in trials if t["killed_rc"] == -9 and t["at_kill"].startswith("rows")]
    assert len(mid) >= KILLS // 2, f"too few kills landed mid-extraction to mean anything: {trials}"
    for k in range(KILLS):
        assert_same_store(d / f"k{k}", clean)


def test_second_writer_gets_one_line_lock_error(driven):
    d, res = driven
    two = res["two"]
    assert two["a_rc"] == 0, log(d, "two")
    assert two["b_rc"] == 2, log(d, "two")
    err = [ln for ln in (d / "two.log2").read_text().splitlines() if ln.strip()]
    assert len(err) == 1 and f"is being written by PID {two['a_pid']} on {socket.gethostname()}" in err[0], err
    assert_same_store(d / "two", RepStore.open(d / "clean"))


def test_lock_is_checked_before_anything_is_written(tmp_path, mlp_file):
    out = tmp_path / "s"
    out.mkdir()
    lock = StoreLock.acquire(out)  # this process plays the first writer
    try:
        r = run_main("extract", mlp_file, "digits@50", "-o", out, *ARGS)
    finally:
        lock.release()
    assert r.returncode == 2 and f"being written by PID {os.getpid()}" in r.stderr, r.stderr
    assert sorted(p.name for p in out.iterdir()) == [".writer.lock"]
    assert run_main("extract", mlp_file, "digits@50", "-o", out, *ARGS).returncode == 0  # released: proceeds


def test_leftovers_of_an_older_interrupted_creation_are_completed(tmp_path, mlp_file):
    """What a kill between samples.parquet and the first manifest left before: the folder was refused forever."""
    out = tmp_path / "s"
    assert run_main("extract", mlp_file, "digits@60", "-o", out, *ARGS).returncode == 0
    clean = {k: v.clone() for k, v in ((layer, RepStore.open(out).get(layer)) for layer in RepStore.open(out).layers)}
    for p in out.iterdir():
        if p.name not in ("samples.parquet", "arrays"):
            p.unlink()
    for p in (out / "arrays").iterdir():
        if p.is_dir():
            shutil.rmtree(p)
        else:
            p.unlink()
    assert sorted(p.name for p in out.rglob("*")) == ["arrays", "samples.parquet"]
    r = run_main("extract", mlp_file, "digits@60", "-o", out, *ARGS)
    assert r.returncode == 0, r.stderr
    s = RepStore.open(out)
    assert all(torch.equal(s.get(k), v) for k, v in clean.items())


def test_stale_temp_files_are_removed_on_resume(tmp_path, mlp_file):
    out = tmp_path / "s"
    assert run_main("extract", mlp_file, "digits@60", "-o", out, *ARGS).returncode == 0
    want = {layer: RepStore.open(out).get(layer) for layer in RepStore.open(out).layers}
    man = read_manifest(out)
    man["progress"] = {"rows_done": 24, "complete": False}  # as if killed after two chunks
    write_manifest(out, man)
    stale = [out / ".tmp-abc123.json", out / ".tmp-samples.parquet", out / "arrays/L_fc1/c/3/0.9f8e7d.partial"]
    for p in stale:
        p.write_bytes(b"partial")
    r = run_main("extract", mlp_file, "digits@60", "-o", out, *ARGS)
    assert r.returncode == 0, r.stderr
    assert not any(p.exists() for p in stale)
    s = RepStore.open(out)
    assert all(torch.equal(s.get(k), v) for k, v in want.items())
    s.verify()


def test_model_data_mismatch_leaves_nothing_and_corrected_command_works(tmp_path, mlp_file):
    """A digits MLP on iris fails inside torch in the first batch: one-line DataError, no store left behind."""
    out = tmp_path / "s"
    r = run_main("extract", mlp_file, "iris", "-o", out, *ARGS)
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2 and len(lines) == 1 and "first batch of 'iris'" in lines[0], r.stderr
    assert not out.exists()
    r = run_main("extract", mlp_file, "digits@40", "-o", out, *ARGS)
    assert r.returncode == 0, r.stderr
    assert RepStore.open(out).n_rows == 40


class _FailsAt(nn.Module):
    """Identity that raises a non-repscope error once it has seen `limit` rows (a crash mid-run, e.g. a driver)."""

    def __init__(self, limit: int):
        super().__init__()
        self.limit, self.seen = limit, 0

    def forward(self, x):
        self.seen += len(x)
        if self.seen > self.limit:
            raise RuntimeError("CUDA error: an illegal memory access was encountered")
        return x


def test_any_exception_after_commits_leaves_a_resumable_store(tmp_path):
    torch.manual_seed(0)
    lin = nn.Linear(6, 5)
    x = torch.randn(80, 6)
    data = ArrayDataset(x, {"label": np.arange(80) % 3})
    broken = TorchModuleAdapter(nn.Sequential(lin, _FailsAt(40)), device="cpu")
    with pytest.raises(RuntimeError, match="illegal memory access"):
        extract(broken, data, tmp_path / "s", batch_size=8, chunk_rows=16, progress=False)
    assert read_manifest(tmp_path / "s")["progress"]["rows_done"] == 32  # two committed chunks kept
    fixed = TorchModuleAdapter(nn.Sequential(lin, _FailsAt(10**9)), device="cpu")
    s = extract(fixed, data, tmp_path / "s", batch_size=8, chunk_rows=16, progress=False)
    with torch.no_grad():
        torch.testing.assert_close(s.get("0"), lin(x), rtol=0, atol=0)
    s.verify()


@pytest.mark.parametrize("mask", [0o022, 0o007])
def test_store_files_honour_the_umask(tmp_path, mlp_file, mask):
    out = tmp_path / "s"
    old = os.umask(mask)
    try:
        assert run_main("extract", mlp_file, "digits@30", "-o", out, *ARGS).returncode == 0
    finally:
        os.umask(old)
    files = [p for p in out.rglob("*") if p.is_file()]
    assert {"manifest.json", "samples.parquet", "zarr.json", ".writer.lock"} <= {p.name for p in files}
    modes = {p.relative_to(out).as_posix(): oct(p.stat().st_mode & 0o777) for p in files}
    assert set(modes.values()) == {oct(0o666 & ~mask)}, modes


def test_failed_creation_step_leaves_nothing(tmp_path):
    """samples.parquet that pyarrow cannot write (mixed-type column): one-line StoreError, no 0-row store left."""
    from repscope.errors import StoreError
    from repscope.store import write_store

    with pytest.raises(StoreError, match=r"cannot write .*samples\.parquet \(ArrowInvalid"):
        write_store(tmp_path / "s", {"a": np.zeros((3, 2))}, samples=pd.DataFrame({"id": [1, "x", 2.5]}))
    assert not (tmp_path / "s").exists()
    write_store(tmp_path / "s", {"a": np.zeros((3, 2))}, overwrite=False).verify()  # the path is free again
