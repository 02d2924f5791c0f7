"""Error types. Every user-facing failure is a `RepscopeError` whose message is one line: what was wrong, what to do."""

from __future__ import annotations

import tempfile
from collections.abc import Sequence
from pathlib import Path


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


class UnpairedStoresError(StoreError, DataError):
    """Two stores an analysis pairs row by row do not hold the same samples in the same order
    (the rule lives in `repscope.store.pairing`)."""


class ConfigError(RepscopeError, ValueError):
    """Invalid parameters or study configuration."""


class OutputError(RepscopeError):
    """An output path repscope will not write: it holds files repscope cannot prove it wrote, it is the current
    folder, an input or a folder holding one, or it holds a complete result that only --overwrite may replace
    (the rule lives in `repscope.store.ownership`)."""


def format_choices(names: list[str], limit: int = 8) -> str:
    """Render a list of names for an error message, eliding the middle of long lists."""
    names = list(names)
    if len(names) <= limit:
        return ", ".join(names)
    head, tail = names[: limit // 2], names[-(limit // 2) :]
    return ", ".join(head) + " … " + ", ".join(tail)


def check_output_dir(path: str | Path, option: str = "--out") -> Path:
    """Refuse, before any work, an output folder that cannot be created or written: an existing file in its place
    (or among its parents) or a folder without write permission. Probes by creating and removing a temporary
    folder in the nearest existing ancestor (so it holds for root and read-only mounts too); leaves nothing behind."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise ConfigError(f"{option} '{p}' is an existing file, not a folder; give a folder path (new or existing)")
    anc = p if p.exists() else next((a for a in p.absolute().parents if a.exists()), Path("/"))
    if not anc.is_dir():
        raise ConfigError(f"{option} '{p}': '{anc}' is a file, so no folder can be made under it; give another path")
    try:
        tempfile.TemporaryDirectory(dir=anc, prefix=".repscope-probe-").cleanup()
    except OSError as err:
        raise ConfigError(f"{option} '{p}': cannot write in folder '{anc}' ({err.strerror or err}); choose a "
                          "writable location or fix its permissions") from None
    return p


def check_choice(value: str, choices: Sequence[str], what: str) -> str:
    """`value` when it is one of `choices`, else ConfigError "unknown {what} '{value}'; choose one of …"."""
    if value not in choices:
        raise ConfigError(f"unknown {what} '{value}'; choose one of {format_choices(list(choices))}")
    return value
