"""One atomic file writer for everything repscope writes: manifests, samples, checkpoints, exports, reports.

`atomic_write(path)` yields a fresh temporary path in the destination's folder; the caller (or a library such as
pyarrow or safetensors) writes the whole file there. When the block ends normally the temp file is flushed to disk
(fsync), renamed over `path` in one step (`os.replace`, atomic on POSIX and Windows within one file system), and the
folder is fsynced so the rename itself survives a power cut (best effort: not every OS or file system allows it).
When the block raises, the temp file is removed and `path` is left exactly as it was. A reader therefore sees the
old file or the new one, never half of one.

The temp file is created with mode 0o666 masked by the umask, like a file `open()` creates (mkstemp would make it
0600; reading the umask means setting it, a race with other threads creating files). This module decides nothing
about *whether* a path may be replaced: callers check ownership first (`repscope.store.ownership`).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Iterator
from pathlib import Path


def _fsync_file(path: Path) -> None:
    """Flush a written file's data and metadata to the device."""
    flags = os.O_RDONLY if os.name == "posix" else os.O_RDWR  # Windows fsyncs only writable handles
    fd = os.open(path, flags | getattr(os, "O_BINARY", 0))
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def fsync_dir(folder: str | os.PathLike) -> None:
    """Make a rename in `folder` durable by fsyncing the folder; a no-op where the OS cannot open folders."""
    if os.name != "posix":
        return
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (and macOS for folders, in places) refuse; the rename has happened anyway
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, *, prefix: str | None = None, suffix: str = ".tmp") -> Iterator[Path]:
    """Yield a new empty temp file beside `path`; on success fsync it, rename it over `path` and fsync the folder.

    The temp name is `<prefix><random hex><suffix>` (default prefix `.<name>.`), unique, created exclusively with
    mode 0o666 & ~umask. If the block raises (or the rename fails) the temp file is removed and `path` is untouched.
    The folder must exist."""
    dest = Path(path)
    folder = dest.parent
    tmp = folder / f"{f'.{dest.name}.' if prefix is None else prefix}{uuid.uuid4().hex[:16]}{suffix}"
    os.close(os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0), 0o666))
    try:
        yield tmp
        _fsync_file(tmp)
        os.replace(tmp, dest)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    fsync_dir(folder)


def atomic_write_bytes(path: str | os.PathLike, data: bytes, **kw: str) -> Path:
    """Write `data` to `path` atomically (`atomic_write`); returns the path."""
    with atomic_write(path, **kw) as tmp, open(tmp, "wb") as f:
        f.write(data)
    return Path(path)


def atomic_write_text(path: str | os.PathLike, text: str, encoding: str = "utf-8", **kw: str) -> Path:
    """Write `text` to `path` atomically (`atomic_write`), encoded with `encoding`; returns the path."""
    with atomic_write(path, **kw) as tmp, open(tmp, "w", encoding=encoding) as f:
        f.write(text)
    return Path(path)


__all__ = ["atomic_write", "atomic_write_bytes", "atomic_write_text", "fsync_dir"]
