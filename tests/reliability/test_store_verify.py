"""`repscope verify` and store reads cannot be fooled: deleted, swapped and truncated chunks, a truncated
samples.parquet and a damaged manifest are each reported naming the exact file (exit 2, one line)."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pandas as pd
import pytest
import torch

from repscope.errors import CorruptChunkError, StoreError
from repscope.store import RepStore, write_store

from .conftest import run_cli, run_main

N, CR = 64, 16  # 4 chunks per layer


@pytest.fixture
def store(tmp_path) -> RepStore:
    rng = np.random.default_rng(0)
    samples = pd.DataFrame({"id": np.arange(N), "label": rng.integers(0, 3, N), "text": [f"s{i}" for i in range(N)]})
    return write_store(tmp_path / "s", {"a": rng.normal(size=(N, 8)), "b.c": rng.normal(size=(N, 3, 2))},
                       samples=samples, chunk_rows=CR)


def chunk(s: RepStore, key: str, i: int) -> str:
    """Relative path of row-chunk i of an array (zarr v3 default keys: one '/0' per non-row axis)."""
    layer = {"L_a": "a", "L_b.c": "b.c"}[key]
    return f"arrays/{key}/c/{i}" + "/0" * len(s.manifest["layers"][layer]["shape"])


def _one_line_error(r) -> str:
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def test_clean_store_verifies(store):
    r = run_cli("verify", store.root)  # once through a real subprocess; the rest in-process (same main())
    assert r.returncode == 0 and "8 chunks in 2 arrays verified" in r.stderr, r.stderr
    assert store.verify() == {"a": 4, "b.c": 4}


def _delete(s):
    (s.root / chunk(s, "L_a", 2)).unlink()
    return chunk(s, "L_a", 2), "is missing"


def _swap(s):  # a valid chunk (good CRC) copied over another one
    shutil.copyfile(s.root / chunk(s, "L_a", 1), s.root / chunk(s, "L_a", 2))
    return chunk(s, "L_a", 2), "failed its checksum"


def _truncate(s):
    f = s.root / chunk(s, "L_b.c", 3)
    f.write_bytes(f.read_bytes()[:20])
    return chunk(s, "L_b.c", 3), "failed its checksum"


def _truncate_samples(s):
    f = s.root / "samples.parquet"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return "samples.parquet", "sha256"


def _truncate_manifest(s):
    f = s.root / "manifest.json"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    return "manifest.json", "not valid JSON"


def _edit_manifest(s):  # still valid JSON, but not what was written (here: a chunk hash swapped for another)
    f = s.root / "manifest.json"
    man = json.loads(f.read_text())
    h = man["layers"]["a"]["chunk_hashes"]
    h[1], h[2] = h[2], h[1]
    f.write_text(json.dumps(man))
    return "manifest.json", "self-checksum"


@pytest.mark.parametrize("damage", [_delete, _swap, _truncate, _truncate_samples, _truncate_manifest, _edit_manifest])
def test_verify_names_the_damaged_file(store, damage):
    rel, why = damage(store)
    line = _one_line_error(run_main("verify", store.root))
    assert str(store.root / rel) in line or f"({rel}" in line, line
    assert why in line, line


def test_info_validates_samples_before_printing(store):
    _truncate_samples(store)
    r = run_main("info", store.root)
    line = _one_line_error(r)
    assert "samples.parquet" in line and "repscope verify" in line
    assert r.stdout.strip() == "" and "provenance" not in r.stderr and "shape" not in r.stderr  # nothing half-printed


def test_reads_name_layer_and_chunk(store):
    expect = torch.as_tensor(np.asarray(store.get("a")))
    _delete(store)
    s = RepStore.open(store.root)
    torch.testing.assert_close(s.get("a", slice(0, CR)), expect[:CR])  # untouched chunks still read
    for read in (lambda: s.get("a"), lambda: s.get("a", [3, 40]), lambda: list(s.iter_chunks("a"))):
        with pytest.raises(CorruptChunkError, match=r"layer 'a' chunk 2\.0 is missing \(arrays/L_a/c/2/0\).*"
                                                    r"repscope verify"):
            read()
    f = store.root / chunk(store, "L_b.c", 1)
    b = bytearray(f.read_bytes())
    b[5] ^= 0xFF
    f.write_bytes(bytes(b))
    s = RepStore.open(store.root)
    with pytest.raises(CorruptChunkError,
                       match=r"layer .b.c. chunk 1\.0\.0 failed its checksum \(arrays/L_b.c/c/1/0/0\).*verify"):
        s.get("b.c")
    _truncate_samples(store)
    with pytest.raises(StoreError, match=r"samples\.parquet does not match the sha256.*repscope verify"):
        RepStore.open(store.root)  # reads are verified: caught on open
    with pytest.raises(StoreError, match=r"samples\.parquet cannot be read"):
        RepStore.open(store.root, verify=False).labels("label")


def test_manifest_damage_is_reported_on_open(store):
    f = store.root / "manifest.json"
    f.write_text("{\"schema_version\": 1, \"layers\": ")
    with pytest.raises(StoreError, match=r"manifest\.json is corrupt \(not valid JSON"):
        RepStore.open(store.root)
    f.write_text(json.dumps({"schema_version": 1, "layers": {}}))
    with pytest.raises(StoreError, match=r"manifest\.json is corrupt \(field 'provenance'"):
        RepStore.open(store.root)


def test_token_layer_chunks_and_offsets_are_checked(token_store):
    s, toks, lengths = token_store
    n_tok = int(lengths.sum())
    assert s.verify() == {"tok.offsets": -(-31 // 8), "tok": -(-n_tok // 10)}
    torch.testing.assert_close(s.get("tok", [7, 2]), torch.cat([toks[7], toks[2]]))
    shutil.copyfile(s.root / "arrays/L_tok/c/0/0", s.root / "arrays/L_tok/c/1/0")
    with pytest.raises(CorruptChunkError, match=r"layer 'tok' chunk 1\.0 failed its checksum \(arrays/L_tok/c/1/0"):
        RepStore.open(s.root).verify()
    (s.root / "arrays/L_tok.offsets/c/2").unlink()
    with pytest.raises(CorruptChunkError, match=r"layer 'tok'\.offsets chunk 2 is missing"):
        RepStore.open(s.root).get("tok")


def test_older_store_without_hashes_still_checked(store):
    """A store from before content hashes: a deleted chunk and a flipped byte are still caught; a note says so."""
    f = store.root / "manifest.json"
    man = json.loads(f.read_text())
    for k in ("checksum", "samples"):
        man.pop(k)
    for info in man["layers"].values():
        info.pop("chunk_hashes")
    f.write_text(json.dumps(man))
    rep = RepStore.open(store.root).check()
    assert rep.checked == {"a": 4, "b.c": 4} and len(rep.notes) == 3
    r = run_main("verify", store.root)
    assert r.returncode == 0 and "older" in r.stderr
    _delete(store)
    with pytest.raises(CorruptChunkError, match=r"layer 'a' chunk 2\.0 is missing"):
        RepStore.open(store.root).verify()
