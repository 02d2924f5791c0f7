"""Opening the results DuckDB file safely: file-kind check, lock retry with backoff, a sandboxed SQL console.

DuckDB lets one process write a file at a time (readers share a lock that writers exclude). Another process that
connects meanwhile gets `IOException: Could not set lock`. Every connection here first takes an advisory lock on
`<db>.lock` (shared to read, exclusive to write), then retries DuckDB's lock error, both with bounded exponential
backoff plus jitter, until `REPSCOPE_DB_TIMEOUT` seconds (default 60) have passed.
"""

from __future__ import annotations

import fcntl
import os
import random
import re
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import duckdb

from repscope.errors import ConfigError, RepscopeError

DEFAULT_TIMEOUT = 60.0
# a DuckDB file starts with an 8-byte checksum, then the magic bytes b"DUCK"
_MAGIC, _MAGIC_AT = b"DUCK", 8
_FIRST_DELAY, _MAX_DELAY = 0.002, 0.25
# the SQL console without --write: nothing outside the DB file can be read or written, settings cannot be changed
SANDBOX = {"enable_external_access": False, "autoload_known_extensions": False, "autoinstall_known_extensions": False,
           "lock_configuration": True}


class ResultsDBError(RepscopeError):
    """The results DB could not be opened or written."""


class ResultsLockedError(ResultsDBError):
    """The results DB stayed locked by another process past the timeout; `side_file` holds any unsaved rows."""

    def __init__(self, message: str, side_file: Path | None = None, brief: str | None = None):
        super().__init__(message)
        self.side_file = side_file
        self.brief = brief or message  # what was locked, by whom, for how long (without advice)


def db_timeout() -> float:
    """Seconds to wait for the DB lock: $REPSCOPE_DB_TIMEOUT, else 60."""
    raw = os.environ.get("REPSCOPE_DB_TIMEOUT")
    if raw is None or raw.strip() == "":
        return DEFAULT_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = -1.0
    if not value >= 0:  # also rejects NaN
        raise ConfigError(f"REPSCOPE_DB_TIMEOUT='{raw}' is not a number of seconds >= 0; unset it or use e.g. 60")
    return value


def check_db_file(path: Path) -> None:
    """Refuse a path that exists but is not a DuckDB database (a CSV, a text file, a directory) before any work."""
    if path.is_dir():
        raise ConfigError(f"--db '{path}' is a directory; give a .duckdb file path (a new one is created)")
    if not path.exists():
        if path.parent.exists() and not path.parent.is_dir():
            raise ConfigError(f"--db '{path}': '{path.parent}' is not a directory; give a .duckdb file path")
        return
    try:
        with open(path, "rb") as fh:
            head = fh.read(_MAGIC_AT + len(_MAGIC))
    except OSError as err:
        raise ConfigError(f"--db '{path}' cannot be read ({err.strerror}); check its permissions") from err
    # an empty file may be one another process is creating right now: connect() waits for its lock, then decides
    if head and head[_MAGIC_AT:] != _MAGIC:
        raise ConfigError(f"--db '{path}' is not a DuckDB database file; give a .duckdb file path (a new one is "
                          "created) and export tables with `repscope results -o FILE.csv`")


def _is_lock_error(err: Exception) -> bool:
    msg = str(err)
    return isinstance(err, duckdb.IOException) and ("Could not set lock" in msg or "Conflicting lock" in msg)


def _holder(err: Exception) -> str:
    m = re.search(r"PID (\d+)", str(err))
    return f" by PID {m.group(1)}" if m else ""


def _sleep(deadline: float, delay: float) -> float:
    """Sleep a random fraction of `delay` (full jitter), never past `deadline`; return the next, doubled delay."""
    time.sleep(max(0.0, min(deadline - time.monotonic(), random.uniform(0, delay))))
    return min(delay * 2, _MAX_DELAY)


def _wait_flock(lock_path: Path, op: int, deadline: float) -> int | None:
    """Block in `flock(op)` on a fresh descriptor of `lock_path` until `deadline`; the locked fd, or None on timeout.

    The blocking call runs in a daemon thread so the kernel queues us fairly behind the holder (polling with
    backoff let a writer that had just released win again and again, starving readers). A waiter that gets the
    lock after we gave up releases it at once.
    """
    fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access
    got, gate = threading.Event(), threading.Lock()
    state = {"abandoned": False}

    def wait() -> None:
        try:
            fcntl.flock(fd, op)
        except OSError:
            os.close(fd)
            return
        with gate:
            if state["abandoned"]:
                os.close(fd)
                return
            got.set()

    threading.Thread(target=wait, daemon=True, name="repscope-db-lock").start()
    got.wait(max(0.0, deadline - time.monotonic()))
    with gate:
        if got.is_set():
            return fd
        state["abandoned"] = True
    return None


@contextmanager
def _file_lock(path: Path, *, exclusive: bool, deadline: float, timeout: float) -> Iterator[None]:
    """`flock` on `<db>.lock`: shared for readers, exclusive for writers, waited for until `deadline`.

    DuckDB's own lock is not enough: with one connection per call, concurrent writer processes were measured to
    lose an occasional committed row (299 of 300). Holding this lock for the whole life of the DuckDB connection —
    open, transaction, checkpoint, close — serialises writers completely.
    """
    lock_path = path.with_name(path.name + ".lock")
    op = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
    fd: int | None = None
    try:
        fd = os.open(lock_path, os.O_RDONLY | os.O_CREAT, 0o666)  # flock needs no write access
    except OSError as err:
        if exclusive:  # (a reader in a read-only folder goes on unlocked: nobody can be writing there either)
            raise ResultsDBError(f"cannot create lock file '{lock_path}' ({err.strerror}); check the folder's "
                                 "permissions") from err
    if fd is not None:
        try:
            fcntl.flock(fd, op | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            fd = _wait_flock(lock_path, op, deadline)
            if fd is None:
                brief = f"results DB '{path}' stayed locked by another repscope process for {timeout:g}s"
                raise ResultsLockedError(f"{brief}; retry when it is done, or raise REPSCOPE_DB_TIMEOUT",
                                         brief=brief) from None
    try:
        yield
    finally:
        if fd is not None:
            os.close(fd)  # releases the flock


def _connect_retrying(path: Path, read_only: bool, config: dict[str, Any] | None, deadline: float,
                      timeout: float) -> duckdb.DuckDBPyConnection:
    """`duckdb.connect`, retrying DuckDB's own lock (held by a process outside repscope) until `deadline`."""
    delay = _FIRST_DELAY
    while True:
        try:
            return duckdb.connect(str(path), read_only=read_only, config=config or {})
        except duckdb.Error as err:
            if not _is_lock_error(err):
                first = str(err).splitlines()[0] if str(err) else type(err).__name__
                if "not a valid DuckDB database" in first:
                    raise ConfigError(f"--db '{path}' is not a DuckDB database file; give a .duckdb file path "
                                      "(a new one is created)") from err
                raise ResultsDBError(f"cannot open results DB '{path}': {first}") from err
            if time.monotonic() >= deadline:
                brief = f"results DB '{path}' stayed locked{_holder(err)} for {timeout:g}s"
                raise ResultsLockedError(f"{brief}; retry when that process is done, or raise REPSCOPE_DB_TIMEOUT",
                                         brief=brief) from err
            delay = _sleep(deadline, delay)


@contextmanager
def connection(path: Path, *, read_only: bool, timeout: float | None = None,
               config: dict[str, Any] | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A DuckDB connection held for one `with` block, safe against other processes using the same file.

    Takes `<db>.lock` (shared to read, exclusive to write), then connects, retrying DuckDB's single-writer lock
    with exponential backoff and full jitter; both waits share one `timeout` (default $REPSCOPE_DB_TIMEOUT, else
    60 s). Raises `ResultsLockedError` when still locked after that, and a one-line `ResultsDBError` naming the file
    for any other open failure. Do not nest a write inside a read of the same file in one thread.
    """
    timeout = db_timeout() if timeout is None else timeout
    deadline = time.monotonic() + timeout
    with _file_lock(path, exclusive=not read_only, deadline=deadline, timeout=timeout):
        con = _connect_retrying(path, read_only, config, deadline, timeout)
        try:
            yield con
        finally:
            con.close()


def is_results_db(path: str | Path) -> bool:
    """True when `path` is a DuckDB file holding repscope's `results` and `artifacts` tables (the proof of authorship
    `repscope demo` needs before it replaces a results DB; see `repscope.store.ownership`)."""
    try:
        with connection(Path(path), read_only=True, timeout=5) as con:
            names = {r[0] for r in con.execute("SELECT table_name FROM information_schema.tables").fetchall()}
    except Exception:  # not DuckDB, locked, unreadable: not a DB repscope can vouch for
        return False
    return {"results", "artifacts"} <= names


def sql_error_line(err: Exception) -> str:
    """One line from a DuckDB error: the message and any 'Did you mean' hint, without the caret diagram."""
    lines = [ln.strip() for ln in str(err).splitlines()]
    keep = [ln for ln in lines if ln and not ln.startswith("LINE ") and set(ln) != {"^"}]
    return " ".join(keep) or type(err).__name__


def is_sandbox_refusal(err: Exception) -> bool:
    """True for DuckDB errors raised because the console connection is read-only or has no file access."""
    msg = str(err)
    return isinstance(err, duckdb.PermissionException) or "read-only mode" in msg or "disabled by configuration" \
        in msg or "lock_configuration" in msg or "configuration has been locked" in msg.lower()
