"""Layer-wise extraction: hooks, pooling, the streaming batch loop."""

from repscope.extract.pooling import POOLINGS, pool, resolve_pooling
from repscope.extract.runner import extract

__all__ = ["POOLINGS", "extract", "pool", "resolve_pooling"]
