"""The one atomic writer (`repscope.atomic`): content, cleanup on failure, fsync before the rename, umask, and that no
other module renames files into place itself."""

from __future__ import annotations

import ast
import os
import stat
from pathlib import Path

import pytest

import repscope.atomic as atomic
from repscope.atomic import atomic_write, atomic_write_bytes, atomic_write_text

SRC = Path(atomic.__file__).resolve().parent


def test_content_written_and_no_temp_left(tmp_path):
    p = atomic_write_text(tmp_path / "a.txt", "héllo\n")
    assert p.read_text(encoding="utf-8") == "héllo\n"
    atomic_write_bytes(tmp_path / "a.txt", b"\x00\x01new")  # replaces the existing file
    assert (tmp_path / "a.txt").read_bytes() == b"\x00\x01new"
    with atomic_write(tmp_path / "b.bin") as tmp:
        assert tmp.parent == tmp_path and tmp.exists() and tmp.stat().st_size == 0  # beside the target, empty
        tmp.write_bytes(b"xyz")
        assert not (tmp_path / "b.bin").exists()  # nothing at the target until the block ends
    assert (tmp_path / "b.bin").read_bytes() == b"xyz"
    assert sorted(x.name for x in tmp_path.iterdir()) == ["a.txt", "b.bin"]


def test_writer_that_raises_leaves_the_old_file_and_no_temp(tmp_path):
    p = tmp_path / "keep.json"
    p.write_text("old", encoding="utf-8")
    seen = []
    with pytest.raises(RuntimeError, match="boom"), atomic_write(p) as tmp:
        seen.append(tmp)
        tmp.write_text("half of the new", encoding="utf-8")
        raise RuntimeError("boom")
    assert p.read_text(encoding="utf-8") == "old"
    assert not seen[0].exists() and sorted(x.name for x in tmp_path.iterdir()) == ["keep.json"]


def test_failed_rename_removes_the_temp(tmp_path):
    target = tmp_path / "occupied"
    target.mkdir()
    (target / "x").write_text("a folder cannot be replaced by a file", encoding="utf-8")
    with pytest.raises(OSError):
        atomic_write_text(target, "data")
    assert sorted(x.name for x in tmp_path.iterdir()) == ["occupied"] and (target / "x").exists()


def test_temp_names_are_unique_and_prefix_is_honoured(tmp_path):
    with atomic_write(tmp_path / "m.json") as t1, atomic_write(tmp_path / "m.json") as t2, \
            atomic_write(tmp_path / "s.json", prefix=".tmp-", suffix=".json") as t3:
        assert t1 != t2 and t1.name.startswith(".m.json.") and t1.name.endswith(".tmp")
        assert t3.name.startswith(".tmp-") and t3.name.endswith(".json")
        for t in (t1, t2, t3):
            t.write_text(t.name, encoding="utf-8")
    assert (tmp_path / "m.json").read_text(encoding="utf-8") == t1.name  # t1's block exits last: its rename wins
    assert sorted(x.name for x in tmp_path.iterdir()) == ["m.json", "s.json"]


def test_fsync_of_the_file_comes_before_the_rename(tmp_path, monkeypatch):
    events = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append(("fsync", stat.S_ISDIR(os.fstat(fd).st_mode)))
        real_fsync(fd)

    def replace(a, b):
        events.append(("replace", None))
        real_replace(a, b)

    monkeypatch.setattr(atomic.os, "fsync", fsync)
    monkeypatch.setattr(atomic.os, "replace", replace)
    atomic_write_text(tmp_path / "d.txt", "durable")
    assert events[:2] == [("fsync", False), ("replace", None)]  # the file's data is on disk before it is renamed
    if os.name == "posix":
        assert events[2:] == [("fsync", True)]  # then the folder, so the rename itself is durable


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_mode_follows_the_umask_like_open(tmp_path):
    old = os.umask(0o027)
    try:
        with open(tmp_path / "reference", "w") as f:  # what a plain open() creates under this umask
            f.write("x")
        atomic_write_text(tmp_path / "atomic", "x")
    finally:
        os.umask(old)
    mode = stat.S_IMODE((tmp_path / "atomic").stat().st_mode)
    assert mode == stat.S_IMODE((tmp_path / "reference").stat().st_mode) == 0o640


def _rename_sites(path: Path, root: Path = SRC) -> list[str]:
    """Calls that rename a file into place: `os.replace`/`os.rename` and one-argument `<path>.replace(x)` /
    `<path>.rename(x)` (str.replace takes two arguments; pandas' rename/replace here take keywords or literals)."""
    out = []
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        f = node.func
        if f.attr not in ("replace", "rename", "move"):
            continue
        on_module = isinstance(f.value, ast.Name) and f.value.id in ("os", "shutil")
        one_path_arg = (len(node.args) == 1 and not node.keywords and f.attr != "move"
                        and not isinstance(node.args[0], ast.Constant | ast.Dict))
        if on_module or one_path_arg:
            out.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node)[:80]}")
    return out


def test_only_the_atomic_module_renames_files_into_place():
    sites = [s for p in sorted(SRC.rglob("*.py")) for s in _rename_sites(p)]
    assert sites and all(s.startswith("atomic.py:") for s in sites), sites  # found in atomic.py, nowhere else


def test_the_rename_detector_sees_hand_rolled_writers(tmp_path):
    """The grep above would catch the writers it replaced (the detector is not vacuous)."""
    sample = tmp_path / "w.py"
    sample.write_text("import os\nos.replace(a, b)\ntmp.replace(out)\np.rename(q)\n's'.replace('a', 'b')\n"
                      "df.rename(columns={})\nx.rename('score')\nt.replace(tzinfo=None)\n", encoding="utf-8")
    assert [s.split(":")[1] for s in _rename_sites(sample, tmp_path)] == ["2", "3", "4"]
