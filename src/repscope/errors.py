"""Error types. Every user-facing failure is a `RepscopeError` whose message is one line: what was wrong, what to do."""

from __future__ import annotations


class RepscopeError(Exception):
    """Base class; the CLI prints `str(err)` on one line without a traceback (unless --debug)."""


class LayerNotFoundError(RepscopeError, KeyError):
    """A requested layer does not exist in the model or store."""

    def __str__(self) -> str:  # KeyError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class DataError(RepscopeError, ValueError):
    """Bad input data: empty dataset, malformed rows, wrong modality for the model."""


class NonFiniteError(RepscopeError, ValueError):
    """NaN or Inf found in activations."""


class StoreError(RepscopeError):
    """Base for problems with an on-disk RepStore."""


class SchemaVersionError(StoreError):
    """The store was written by an incompatible schema version."""


class IncompleteStoreError(StoreError):
    """The store was left incomplete by an interrupted extraction."""


class CorruptChunkError(StoreError):
    """A chunk failed its checksum."""


class ConfigError(RepscopeError, ValueError):
    """Invalid parameters or study configuration."""


def format_choices(names: list[str], limit: int = 8) -> str:
    """Render a list of names for an error message, eliding the middle of long lists."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    head, tail = names[: limit // 2], names[-(limit // 2) :]
    return ", ".join(head) + " … " + ", ".join(tail)
