"""Layer selection by exact name or glob, old address kept for user code: it lives in `repscope.selection` (core),
so stores and model adapters share it without the storage layer importing sources."""

from repscope.selection import match_layers, split_patterns

__all__ = ["match_layers", "split_patterns"]
