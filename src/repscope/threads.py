"""Thread-count changes that never leak: a context manager that restores torch's and BLAS's thread counts."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from threadpoolctl import threadpool_limits


@contextmanager
def limit_threads(n: int | None, *, blas: bool = True) -> Iterator[None]:
    """Run the block with at most `n` torch intra-op threads (and BLAS/OpenMP threads when `blas`), then restore.

    `n=None` changes nothing. Library code must use this instead of calling `torch.set_num_threads` directly.
    """
    if n is None:
        yield
        return
    prev = torch.get_num_threads()
    torch.set_num_threads(max(1, int(n)))
    try:
        if blas:
            with threadpool_limits(limits=max(1, int(n))):
                yield
        else:
            yield
    finally:
        torch.set_num_threads(prev)
