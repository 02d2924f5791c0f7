"""On-disk representation store (Zarr v3 arrays + Parquet samples + JSON manifest)."""

from repscope.store.repstore import RepStore
from repscope.store.writer import StoreWriter, write_store

__all__ = ["RepStore", "StoreWriter", "write_store"]
