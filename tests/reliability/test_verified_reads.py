"""Reads are verified: a store whose chunks were swapped, copied within a layer or brought from another store, or
whose samples.parquet was edited, is refused by every analysis (exit 2, one line naming the chunk or file and
`repscope verify`, no row recorded), although each chunk still carries a valid zarr CRC32C."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from repscope.errors import CorruptChunkError, StoreError
from repscope.results.db import ResultsDB
from repscope.store import RepStore, write_store
from repscope.store import manifest as manifest_mod

from .conftest import run_main
from .test_store_verify import _one_line_error

N, CR = 240, 32  # 8 chunks per layer, the last one partial


def _layers(seed: int, labels: np.ndarray) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    means = rng.normal(scale=3.0, size=(3, 12))
    a = means[labels] + rng.normal(size=(N, 12))
    return {"a": a.astype(np.float32), "b": (a[:, :6] @ rng.normal(size=(6, 6))).astype(np.float32)}


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> tuple[Path, Path]:
    """A clean store (labels, two factors; pooled layers 'a' and 'b') and a foreign one with the same layout."""
    d = tmp_path_factory.mktemp("verified")
    labels = np.arange(N) % 3
    samples = pd.DataFrame({"id": np.arange(N), "label": labels, "f1": labels, "f2": (np.arange(N) // 3) % 2})
    write_store(d / "clean", _layers(0, labels), samples=samples, chunk_rows=CR)
    write_store(d / "foreign", _layers(1, labels), samples=samples, chunk_rows=CR)
    return d / "clean", d / "foreign"


def _chunk(root: Path, i: int, layer: str = "L_a") -> Path:
    return root / "arrays" / layer / "c" / str(i) / "0"


def _swap(root: Path, foreign: Path) -> set[str]:  # two chunks of a layer exchanged
    a, b = _chunk(root, 1), _chunk(root, 2)
    da, db = a.read_bytes(), b.read_bytes()
    a.write_bytes(db)
    b.write_bytes(da)
    return {"arrays/L_a/c/1/0", "arrays/L_a/c/2/0"}


def _copy_within(root: Path, foreign: Path) -> set[str]:  # a chunk copied over another one of the same layer
    shutil.copyfile(_chunk(root, 1), _chunk(root, 5))
    return {"arrays/L_a/c/5/0"}


def _copy_foreign(root: Path, foreign: Path) -> set[str]:  # the same chunk of another store with the same layout
    shutil.copyfile(_chunk(foreign, 3), _chunk(root, 3))
    return {"arrays/L_a/c/3/0"}


def _relabel(root: Path, foreign: Path) -> set[str]:  # one label changed in samples.parquet
    df = pd.read_parquet(root / "samples.parquet")
    df.loc[7, "label"] = (df.loc[7, "label"] + 1) % 3
    df.to_parquet(root / "samples.parquet", index=False)
    return {"samples.parquet"}


COMMANDS = {
    "probe": lambda s, t: ["probe", s, "--probe", "logistic", "--device", "cpu"],
    "compare": lambda s, t: ["compare", s, "--measure", "cka", "--device", "cpu"],
    "geometry": lambda s, t: ["geometry", s, "-m", "twonn,pca", "--target", "none", "--device", "cpu"],
    "sae": lambda s, t: ["sae", "train", s, "--layer", "a", "--k", "2", "--expansion", "2", "--steps", "5",
                         "--batch-size", "32", "--device", "cpu", "-o", t / "sae"],
    "disentangle": lambda s, t: ["disentangle", s, "-f", "f1,f2", "-m", "mig"],
}


def _rows(db: Path) -> int:
    if not db.exists():
        return 0
    return int(ResultsDB(db).query("SELECT count(*) AS n FROM results")["n"].iloc[0])


@pytest.mark.parametrize("command", list(COMMANDS))
def test_clean_store_runs(stores, tmp_path, command):
    """Control: each command works on the clean store and records rows (so the refusals below mean something)."""
    db = tmp_path / "r.duckdb"
    r = run_main(*COMMANDS[command](stores[0], tmp_path), "--db", db)
    assert r.returncode == 0, r.stderr
    assert _rows(db) > 0


@pytest.mark.parametrize("damage", [_swap, _copy_within, _copy_foreign, _relabel])
@pytest.mark.parametrize("command", list(COMMANDS))
def test_damaged_store_is_refused(stores, tmp_path, command, damage):
    clean, foreign = stores
    root = tmp_path / "s"
    shutil.copytree(clean, root)
    named = damage(root, foreign)
    unverified = RepStore.open(root, verify=False)  # still opens and reads unverified: zarr's CRC is valid
    assert unverified.get("a").shape[0] == unverified.get("b").shape[0] == len(unverified.samples) == N
    db = tmp_path / "r.duckdb"
    r = run_main(*COMMANDS[command](root, tmp_path), "--db", db)
    line = _one_line_error(r)
    assert any(p in line for p in named), line
    assert f"repscope verify {root}" in line and r.stdout.strip() == "", (line, r.stdout)
    assert _rows(db) == 0


def test_every_read_path_checks_chunks(stores, tmp_path):
    clean, foreign = stores
    root = tmp_path / "s"
    shutil.copytree(clean, root)
    expect = RepStore.open(root).get("a")
    _copy_foreign(root, foreign)
    s = RepStore.open(root)
    torch.testing.assert_close(s.get("a", slice(0, 3 * CR)), expect[: 3 * CR])  # chunks 0-2 are intact
    torch.testing.assert_close(s.get("b"), RepStore.open(clean).get("b"))  # other layers too
    msg = r"layer 'a' chunk 3\.0 failed its checksum \(arrays/L_a/c/3/0: .*content hash.*repscope verify"
    for read in (lambda: s.get("a"), lambda: s.get("a", [5, 3 * CR + 1]), lambda: s.get("a", slice(100, 110)),
                 lambda: list(s.iter_chunks("a")), lambda: s.get("a", torch.tensor([110, 2]))):
        with pytest.raises(CorruptChunkError, match=msg):
            read()
    # verify=False (the benchmark baseline) reads the foreign chunk: the check above is what refuses it
    torch.testing.assert_close(RepStore.open(root, verify=False).get("a")[3 * CR : 4 * CR],
                               RepStore.open(foreign).get("a")[3 * CR : 4 * CR])


def test_samples_and_manifest_checked_on_open(stores, tmp_path):
    root = tmp_path / "s"
    shutil.copytree(stores[0], root)
    _relabel(root, stores[1])
    with pytest.raises(StoreError, match=r"samples\.parquet does not match the sha256.*repscope verify"):
        RepStore.open(root)
    shutil.copyfile(stores[0] / "samples.parquet", root / "samples.parquet")
    RepStore.open(root)
    man = json.loads((root / "manifest.json").read_text())
    man["provenance"]["model"] = "other"  # valid JSON and schema, not what was written
    (root / "manifest.json").write_text(json.dumps(man))
    with pytest.raises(StoreError, match=r"manifest\.json is corrupt.*self-checksum"):
        RepStore.open(root)


def test_token_layers_and_offsets_verified(token_store):
    s, toks, _lengths = token_store
    torch.testing.assert_close(s.get("tok", [7, 2]), torch.cat([toks[7], toks[2]]))
    shutil.copyfile(s.root / "arrays/L_tok/c/0/0", s.root / "arrays/L_tok/c/1/0")
    fresh = RepStore.open(s.root)
    torch.testing.assert_close(fresh.get_tokens("tok", slice(0, 10)), torch.cat(toks)[:10])
    with pytest.raises(CorruptChunkError, match=r"layer 'tok' chunk 1\.0 failed its checksum"):
        fresh.get_tokens("tok", [3, 12])
    shutil.copyfile(s.root / "arrays/L_tok.offsets/c/0", s.root / "arrays/L_tok.offsets/c/2")
    with pytest.raises(CorruptChunkError, match=r"layer 'tok'\.offsets chunk 2 failed its checksum"):
        RepStore.open(s.root).offsets("tok")


def _strip(root: Path, keys: tuple[str, ...], top: tuple[str, ...] = ()) -> None:
    """Make `root` look like an older store: drop per-layer `keys` and top-level `top` (no manifest checksum)."""
    f = root / "manifest.json"
    man = json.loads(f.read_text())
    for k in ("checksum", *top):
        man.pop(k, None)
    for info in man["layers"].values():
        for k in keys:
            info.pop(k, None)
    f.write_text(json.dumps(man))


def test_store_without_crc_lists_checks_blake2b_once_per_chunk(stores, tmp_path, monkeypatch):
    """A store from before the CRC32C lists: reads check the blake2b of the bytes zarr read, once per chunk."""
    clean, foreign = stores
    root = tmp_path / "s"
    shutil.copytree(clean, root)
    _strip(root, ("chunk_crc32c",))
    calls: list[int] = []
    real = manifest_mod.bytes_hash
    monkeypatch.setattr("repscope.store.repstore.bytes_hash", lambda b: calls.append(1) or real(b))
    s = RepStore.open(root)
    torch.testing.assert_close(s.get("a"), RepStore.open(clean).get("a"))
    assert len(calls) == N // CR + 1  # 8 chunks, hashed once each
    s.get("a")
    s.get("a", [1, 200])
    assert len(calls) == N // CR + 1  # verified chunks are not rehashed
    _swap(root, foreign)
    with pytest.raises(CorruptChunkError, match=r"layer 'a' chunk [12]\.0 failed its checksum"):
        RepStore.open(root).get("a")


def test_store_without_hashes_reads_silently(stores, tmp_path, recwarn):
    """A store from before any content hash still reads (nothing to check against), without a word."""
    root = tmp_path / "s"
    shutil.copytree(stores[0], root)
    _strip(root, ("chunk_hashes", "chunk_crc32c"), ("samples",))
    torch.testing.assert_close(RepStore.open(root).get("a"), RepStore.open(stores[0]).get("a"))
    assert RepStore.open(root).labels("label").tolist() == (np.arange(N) % 3).tolist()
    assert not [w for w in recwarn if "repscope" in str(w.filename)]


def test_extracted_store_with_swapped_chunks_is_refused(tmp_path):
    """The same through a real extraction (digits MLP, 5 chunks of 64 rows per layer)."""
    out, db = tmp_path / "ex", tmp_path / "r.duckdb"
    r = run_main("extract", "digits-mlp:0", "digits@300", "--chunk-rows", "64", "-o", out)
    assert r.returncode == 0, r.stderr
    a, b = _chunk(out, 1, "L_fc2"), _chunk(out, 3, "L_fc2")
    da, db_ = a.read_bytes(), b.read_bytes()
    a.write_bytes(db_)
    b.write_bytes(da)
    line = _one_line_error(run_main("probe", out, "--layers", "fc2", "--device", "cpu", "--db", db))
    assert "layer 'fc2' chunk" in line and ("arrays/L_fc2/c/1/0" in line or "arrays/L_fc2/c/3/0" in line), line
    assert _rows(db) == 0
    assert _one_line_error(run_main("verify", out)).count("arrays/L_fc2/c/") == 1


def test_a_pickled_store_stays_verified(stores, tmp_path):
    """A store sent to another process (pickled after reads) reopens its arrays with their checks."""
    import pickle

    root = tmp_path / "s"
    shutil.copytree(stores[0], root)
    s = RepStore.open(root)
    expect = s.get("a")
    torch.testing.assert_close(pickle.loads(pickle.dumps(s)).get("a"), expect)
    _copy_within(root, stores[1])
    with pytest.raises(CorruptChunkError, match=r"layer 'a' chunk 5\.0 failed its checksum"):
        pickle.loads(pickle.dumps(s)).get("a")
