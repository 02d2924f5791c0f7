"""On-disk representation store (Zarr v3 arrays + Parquet samples + JSON manifest)."""

from repscope.store.lock import StoreLock
from repscope.store.repstore import RepStore, VerifyReport, layer_position, pooled_layers
from repscope.store.writer import StoreWriter, write_store

__all__ = ["RepStore", "StoreLock", "StoreWriter", "VerifyReport", "layer_position", "pooled_layers", "write_store"]
