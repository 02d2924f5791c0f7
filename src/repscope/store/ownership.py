"""What repscope deletes or replaces: only what it can prove it wrote. Every command that writes goes through here.

Proof of authorship, per kind of output:

- a store folder: a valid repscope manifest in it (or only what an interrupted creation leaves). Only the entries
  the store format owns (`STORE_ENTRIES`: manifest.json, samples.parquet, arrays/, zarr.json, the writer lock, and
  the writer's own temp files `.tmp-*` and `*.partial`) are ever removed, never other files in that folder;
- a checkpoint file: a safetensors header whose metadata carries `tensorfile.MARKER` (or the metadata of an older
  repscope learner or adapter), or a file of a repscope SAE folder;
- an SAE checkpoint folder: its config.json says format repscope-dictionary; only its own files are written;
- an HTML report: `<meta name="generator" content="repscope …">` (or the header line of an older repscope report);
- a Parquet export: `repscope` in its schema metadata.

Anything else at an output path is refused with a one-line `OutputError` (exit 2), with --overwrite or without. A
new path or an empty folder is free to write. Replacing a complete store or checkpoint needs `overwrite`
(--overwrite); an interrupted store is resumed. The current folder, its parents, an input store and the folders
holding it are never outputs. The one exception to the marker rule is a CSV export, which has no place for a marker:
an existing CSV file is replaced only with --overwrite.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from repscope.errors import OutputError, StoreError
from repscope.store.manifest import LOCK, MANIFEST, SAMPLES, read_manifest
from repscope.store.repstore import GROUP_META

# checkpoint files prove their authorship where they are written (`repscope.tensorfile`); their guard is re-exported
# here, beside the guards of every other output
from repscope.tensorfile import SAE_FILES, is_repscope_checkpoint, is_sae_folder
from repscope.tensorfile import require_replaceable_checkpoint as require_replaceable_checkpoint
from repscope.tensorfile import safetensors_metadata as safetensors_metadata

STORE_ENTRIES = frozenset({MANIFEST, SAMPLES, "arrays", GROUP_META, LOCK})
# what an interrupted creation by an older repscope (samples written, no manifest yet) can leave behind
CREATION_LEFTOVERS = frozenset({SAMPLES, "arrays", GROUP_META})
REPORT_GENERATOR = '<meta name="generator" content="repscope'
_LEGACY_REPORT = re.compile(rb"<header><h1>.*?</h1>\s*<small>repscope ", re.S)

StoreState = Literal["new", "empty", "resume", "replace", "leftovers"]


# ---- shared ------------------------------------------------------------------------------------------------------
def check_not_protected(out: str | Path, inputs: Iterable[str | Path] = (), option: str = "--out") -> None:
    """Refuse `out` when it is the current folder or one of its parents, or an input (store) or a folder holding
    one: an output there could only be written by removing or mixing with what is already there."""
    p = Path(out).resolve()
    cwd = Path.cwd().resolve()
    if p == cwd or p in cwd.parents:
        raise OutputError(f"{option} '{out}' is the current folder or a folder holding it; repscope never writes an "
                          f"output there: give a new folder, e.g. {option} runs/NAME")
    for src in inputs:
        s = Path(src).resolve()
        if p == s or p in s.parents:
            raise OutputError(f"{option} '{out}' is the input '{src}' or a folder holding it; give a new folder "
                              "for the output")


def _existing_folder(path: Path, inputs: Iterable[str | Path], option: str, what: str) -> bool:
    """Refuse a file or a protected path (cwd, its parents, an input store or its parents) as a `what` folder;
    True when the folder already exists."""
    if path.exists() and not path.is_dir():
        raise OutputError(f"{option} '{path}' is an existing file, not a folder; give a new or empty folder for the "
                          f"{what}")
    check_not_protected(path, inputs, option)
    return path.exists()


def remove_entry(p: Path) -> None:
    """Delete one entry (a symlink itself, never what it points to)."""
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p)
    else:
        p.unlink(missing_ok=True)


# ---- stores ------------------------------------------------------------------------------------------------------
def is_store_temp(name: str) -> bool:
    """True for the temp files a store writer leaves when killed (`.tmp-*` renames, zarr's `*.partial` chunks)."""
    return name.startswith(".tmp-") or name.endswith(".partial")


def store_manifest(root: str | Path) -> dict[str, Any] | None:
    """The manifest of `root` when it is a readable repscope manifest (any schema version), else None."""
    try:
        man = read_manifest(Path(root))
    except StoreError:
        return None
    keys = {"provenance": dict, "layers": dict, "progress": dict, "schema_version": int}
    return man if all(isinstance(man.get(k), t) for k, t in keys.items()) else None


def abandoned_creation(root: Path, entries: list[Path]) -> bool:
    """True when `entries` are only what an interrupted store creation leaves (no manifest, no layer data)."""
    if not entries or any(p.name not in CREATION_LEFTOVERS for p in entries):
        return False
    arrays = root / "arrays"
    return not arrays.exists() or (arrays.is_dir() and not arrays.is_symlink() and all(
        p.name == GROUP_META or (p.is_dir() and p.name.startswith("L_")) for p in arrays.iterdir()))


def check_store_output(out: str | Path, *, overwrite: bool = False, inputs: Iterable[str | Path] = (),
                       option: str = "--out") -> StoreState:
    """Classify a store output path, or refuse it with a one-line OutputError.

    Returns 'new' (absent), 'empty' (an empty folder), 'resume' (an interrupted store; the writer checks that its
    settings match), 'replace' (a store, with `overwrite`) or 'leftovers' (an older interrupted creation). Refused:
    a file, a folder holding anything but a repscope store (with `overwrite` too), a complete store without
    `overwrite`, the current folder or its parents, an input store or a folder holding one."""
    root = Path(out)
    if not _existing_folder(root, inputs, option, "store"):
        return "new"
    entries = sorted(p for p in root.iterdir() if p.name != LOCK and not is_store_temp(p.name))
    if not entries:
        return "empty"
    if (root / MANIFEST).exists() or (root / MANIFEST).is_symlink():
        man = store_manifest(root)
        if man is None:
            raise OutputError(f"{option} '{root}' holds a {MANIFEST} that is not a readable repscope manifest; "
                              "repscope replaces only stores it can recognise: repair or remove that folder "
                              "yourself, or choose another one")
        if man["progress"].get("complete"):
            if not overwrite:
                raise OutputError(f"store '{root}' already exists and is complete; pass --overwrite to replace it")
            return "replace"
        return "replace" if overwrite else "resume"
    if abandoned_creation(root, entries):
        return "leftovers"
    raise OutputError(f"{option} '{root}' is not empty and holds no repscope store (it has '{entries[0].name}'); "
                      "repscope writes a store only into a new or empty folder or over a store it wrote "
                      "(--overwrite too): choose another folder")


def remove_store_files(root: str | Path, *, lock: bool = False) -> None:
    """Remove from `root` only the entries the store format owns (`STORE_ENTRIES` and the writer's temp files); the
    writer lock too when `lock`. Every other file or folder in `root` is left alone."""
    root = Path(root)
    for p in list(root.iterdir()):
        if (p.name in STORE_ENTRIES and p.name != LOCK) or is_store_temp(p.name) or (lock and p.name == LOCK):
            remove_entry(p)


def clean_store_temp(root: str | Path) -> None:
    """Remove the temp files a killed writer left: `.tmp-*` and `*.partial` in the store root, `*.partial` chunk
    files under arrays/."""
    root = Path(root)
    for p in root.iterdir():
        if is_store_temp(p.name):
            remove_entry(p)
    arrays = root / "arrays"
    if arrays.is_dir() and not arrays.is_symlink():
        for dirpath, _dirs, files in os.walk(arrays):
            for f in files:
                if f.endswith(".partial"):
                    os.unlink(os.path.join(dirpath, f))


# ---- checkpoints -------------------------------------------------------------------------------------------------
def check_checkpoint_output(out: str | Path, *, overwrite: bool = False, option: str = "--out",
                            hint: str = "") -> Path:
    """Refuse, before training, a checkpoint path that is a folder or a file repscope did not write (always), or
    an existing repscope checkpoint without `overwrite` (`hint` is added to that message, e.g. "or --resume")."""
    p = Path(out)
    if p.is_dir():
        raise OutputError(f"{option} '{p}' is a folder; give a .safetensors file path")
    if p.exists():
        require_replaceable_checkpoint(p, option)
        if not overwrite:
            raise OutputError(f"checkpoint '{p}' already exists; pass --overwrite to replace it{hint}")
    return p


def check_sae_output(out: str | Path, *, inputs: Iterable[str | Path] = (), option: str = "--out") -> str:
    """Classify an SAE checkpoint folder ('new', 'empty', 'checkpoint' to resume or retrain) or refuse it: a file,
    a folder holding anything but a repscope SAE checkpoint, the current folder or its parents, an input store or
    a folder holding one."""
    d = Path(out)
    if not _existing_folder(d, inputs, option, "SAE checkpoint"):
        return "new"
    entries = sorted(p for p in d.iterdir() if not (p.name.endswith(".tmp") and any(f in p.name for f in SAE_FILES)))
    if not entries:
        return "empty"
    if is_sae_folder(d):
        return "checkpoint"
    foreign = [p for p in entries if p.name not in SAE_FILES or p.name == "config.json"
               or (p.suffix == ".safetensors" and not is_repscope_checkpoint(p))]
    if foreign:
        raise OutputError(f"{option} '{d}' is not empty and holds no repscope SAE checkpoint (it has "
                          f"'{foreign[0].name}'); give a new or empty folder")
    return "checkpoint"  # the weights of a first save killed before its config.json


# ---- single files: reports, exports, results DBs -------------------------------------------------------------------
def is_repscope_report(path: str | Path) -> bool:
    """True when `path` is an HTML report repscope wrote (its generator meta tag, or an older report's header)."""
    try:
        with open(path, "rb") as f:
            head = f.read(1 << 16)
    except OSError:
        return False
    return REPORT_GENERATOR.encode() in head[:4096] or (
        head.startswith(b"<!DOCTYPE html>") and _LEGACY_REPORT.search(head) is not None)


def check_report_output(out: str | Path, option: str = "--out") -> Path:
    """Refuse a report path that is a folder or an existing file that is not a repscope report; a repscope report
    there is replaced (a report is a view of the results DB, rewritten on every run)."""
    p = Path(out)
    if p.is_dir():
        raise OutputError(f"{option} '{p}' is a folder; give an .html file path")
    if p.exists() and not is_repscope_report(p):
        raise OutputError(f"{option} '{p}' exists and is not a report repscope wrote; repscope never replaces it: "
                          "choose another file name")
    return p


def is_repscope_parquet(path: str | Path) -> bool:
    """True when `path` is a Parquet file whose schema metadata carries repscope's marker."""
    try:
        import pyarrow.parquet as pq

        meta = pq.read_schema(str(path)).metadata or {}
    except Exception:  # not Parquet, unreadable: not ours
        return False
    return b"repscope" in meta


def check_export_output(out: str | Path, *, overwrite: bool = False, option: str = "--out") -> Path:
    """Refuse an export path that is a folder, an existing Parquet file repscope did not write (always), or any
    existing file without `overwrite` (a CSV carries no marker, so --overwrite is the user's word for it)."""
    p = Path(out)
    if p.is_dir():
        raise OutputError(f"{option} '{p}' is a folder; give a .csv or .parquet file path")
    if p.exists():
        if p.suffix == ".parquet" and not is_repscope_parquet(p):
            raise OutputError(f"{option} '{p}' exists and is not a Parquet export repscope wrote; repscope never "
                              "replaces it (--overwrite too): choose another file name")
        if not overwrite:
            raise OutputError(f"{option} '{p}' already exists; pass --overwrite to replace it")
    return p
