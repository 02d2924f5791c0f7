"""An advisory writer lock on a store: `flock` on a file inside it, recording the holder's PID and host.

The kernel drops the lock when the holding process exits or is killed, so a crashed writer never leaves a store
locked; the PID/host text is only there to name the holder in the error a second writer gets.
"""

from __future__ import annotations

import fcntl
import os
import socket
from pathlib import Path

from repscope.errors import StoreError
from repscope.store.manifest import LOCK


class StoreLock:
    """An exclusive, non-blocking lock on `root/.writer.lock`; `release()` (or process exit) drops it."""

    def __init__(self, root: Path, fd: int):
        self.root = root
        self._fd: int | None = fd

    @classmethod
    def acquire(cls, root: Path) -> StoreLock:
        """Lock the store for writing, or raise a one-line StoreError naming the PID and host holding it."""
        path = root / LOCK
        try:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise StoreError(f"cannot write to store '{root}' ({err.strerror}); choose a writable --out") from None
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 200, 0).decode(errors="replace").split()
            os.close(fd)
            pid, host = (holder + ["?", "?"])[:2]
            raise StoreError(f"store '{root}' is being written by PID {pid} on {host}; wait for it to finish "
                             "(or stop that process), then rerun") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()} {socket.gethostname()}\n".encode(), 0)
        return cls(root, fd)

    def release(self) -> None:
        """Drop the lock (idempotent)."""
        if self._fd is not None:
            fd, self._fd = self._fd, None
            try:
                fcntl.flock(fd, fcntl.LOCK_UN)
            finally:
                os.close(fd)

    def __del__(self) -> None:
        self.release()
