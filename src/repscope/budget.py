"""Memory budget for analyses: parse sizes ("512MB", "4G", "0.5GiB"), a default from available RAM, and whether a
layer fits.

An analysis that would hold `rows × width` float32 values `copies` times (its working copies: the loaded layer, a
float64 copy, centred/standardized data …) loads the layer only when that fits the budget; otherwise it streams
sufficient statistics chunk by chunk or subsamples explicitly (`rows_that_fit`) and records the rows it used.

Units: K/KB, M/MB, G/GB, T/TB are powers of 1000; KiB, MiB, GiB, TiB (or Ki, Mi, Gi, Ti) powers of 1024; a plain
number is bytes.
"""

from __future__ import annotations

import math
import os
import re
import sys
from pathlib import Path
from typing import Annotated

import numpy as np
from pydantic import AfterValidator

from repscope.errors import ConfigError

DEFAULT_FRACTION = 0.25  # share of the available RAM one analysis may fill with a layer's working copies
FALLBACK_AVAILABLE = 4 << 30  # when neither /proc/meminfo nor sysconf answers
DEFAULT_HELP = f"{int(DEFAULT_FRACTION * 100)}% of the available RAM"

_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9, "gb": 10**9,
          "t": 10**12, "tb": 10**12, "ki": 2**10, "kib": 2**10, "mi": 2**20, "mib": 2**20, "gi": 2**30,
          "gib": 2**30, "ti": 2**40, "tib": 2**40}
_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:[eE][+-]?[0-9]+)?)\s*([a-zA-Z]*)\s*$")


def parse_size(value: int | float | str) -> int:
    """Bytes for a size: an int/float number of bytes or a string like "512MB", "4G", "0.5GiB", "1e9"."""
    if isinstance(value, bool):
        raise ConfigError(f"memory size {value!r} is not a size; write e.g. 2GB, 512MiB or a number of bytes")
    if isinstance(value, int | float):
        number, factor = float(value), 1
    else:
        m = _SIZE.match(str(value))
        unit = m.group(2).lower() if m else None
        if m is None or unit not in _UNITS:
            raise ConfigError(f"memory size '{value}' is not understood; write e.g. 2GB, 512MiB, 0.5GiB or a number "
                              "of bytes")
        number, factor = float(m.group(1)), _UNITS[unit]
    size = number * factor
    if not math.isfinite(size) or size < 1:
        raise ConfigError(f"memory size '{value}' must be at least 1 byte; write e.g. 2GB")
    return int(size)


def _meminfo_available(path: Path = Path("/proc/meminfo")) -> int | None:
    try:
        for line in path.read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        return None
    return None


def _sysconf_available() -> int | None:
    try:
        pages, size = os.sysconf("SC_AVPHYS_PAGES"), os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return int(pages) * int(size) if pages > 0 and size > 0 else None


def _inactive_file(stat_file: Path, key: str) -> int:
    """Reclaimable page cache (`inactive_file`) from a cgroup memory.stat, 0 when unknown."""
    try:
        for line in stat_file.read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == key:
                return int(value)
    except (OSError, ValueError):
        pass
    return 0


def _cgroup_headroom(root: Path = Path("/sys/fs/cgroup")) -> int | None:
    """Limit minus usage of this container's memory cgroup (v2 memory.max, else v1 memory.limit_in_bytes), the
    usage net of reclaimable page cache (inactive_file, as `docker stats` counts it); None when unlimited or unknown."""
    for limit_file, usage_file, stat_file, key in (
            ("memory.max", "memory.current", "memory.stat", "inactive_file"),
            ("memory/memory.limit_in_bytes", "memory/memory.usage_in_bytes", "memory/memory.stat",
             "total_inactive_file")):
        try:
            limit = (root / limit_file).read_text().strip()
            if limit == "max" or int(limit) >= 1 << 60:  # unlimited (v1 writes a huge page-rounded number)
                return None
            used = int((root / usage_file).read_text().strip()) - _inactive_file(root / stat_file, key)
            return max(0, int(limit) - max(0, used))
        except (OSError, ValueError):
            continue
    return None


def available_memory() -> int:
    """Bytes of RAM available now: MemAvailable from /proc/meminfo (else sysconf's available pages), capped by the
    cgroup v2 limit when one is set."""
    avail = _meminfo_available() or _sysconf_available() or FALLBACK_AVAILABLE
    head = _cgroup_headroom()
    return avail if head is None else min(avail, head)  # a full container (headroom 0) is a limit too


def default_budget(fraction: float = DEFAULT_FRACTION) -> int:
    """The default budget: `fraction` (25%) of `available_memory()`, at least 64 MiB."""
    return max(64 << 20, int(available_memory() * fraction))


def check_size(value: int | float | str | None) -> int | float | str | None:
    """Pydantic after-validator of a `max_memory` study param: None, or a size `parse_size` accepts (kept as given)."""
    if value is not None:
        parse_size(value)
    return value


MaxMemory = Annotated[int | str | None, AfterValidator(check_size)]
"""The `max_memory` field of every study step's params: bytes or a size string, checked when the study loads."""


def resolve_budget(max_memory: int | float | str | None) -> int:
    """Budget in bytes: `max_memory` parsed (bytes or a size string), or `default_budget()` when None."""
    return default_budget() if max_memory is None else parse_size(max_memory)


def layer_width(store, layer: str) -> int:
    """Values per row of a pooled layer (product of its per-sample shape; conv maps flattened)."""
    return int(math.prod(store.layer_info(layer).get("shape", [1])))


def layer_bytes(rows: int, width: int, copies: float = 1.0, itemsize: int = 4) -> int:
    """Bytes of `copies` working copies of a (rows × width) layer of `itemsize`-byte values."""
    return int(math.ceil(rows * width * itemsize * copies))


def fits(rows: int, width: int, budget: int, copies: float = 1.0, itemsize: int = 4) -> bool:
    """Whether `copies` copies of a (rows × width) layer fit the budget."""
    return layer_bytes(rows, width, copies, itemsize) <= budget


def rows_that_fit(width: int, budget: int, copies: float = 1.0, itemsize: int = 4) -> int:
    """The most rows whose `copies` working copies of `width` values fit the budget (at least 1)."""
    return max(1, int(budget // max(1.0, width * itemsize * copies)))


def fitting_rows(rows: int | np.ndarray, width: int, budget: int, copies: float, seed: int,
                 groups: np.ndarray | None = None) -> np.ndarray:
    """The seeded subsample (`selection.subset_rows`, whole groups with `groups`) of `rows` (an int n or row
    indices) with as many rows as `copies` working copies of `width` values fit in `budget` — what an analysis over
    the budget uses instead of the whole layer."""
    from repscope.selection import subset_rows

    return subset_rows(rows, rows_that_fit(width, budget, copies), seed, groups=groups)


def stream_fits(width: int, budget: int, chunk_rows: int = 1024, matrices: float = 4.0) -> bool:
    """Whether streaming fits: `matrices` float64 (width × width) accumulators plus one float64 chunk."""
    return width * width * 8 * matrices + chunk_rows * width * 8 * 2 <= budget


def format_size(n: int) -> str:
    """Human size in binary units, e.g. '1.5 GiB'."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024:
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} TiB"


def warn(message: str) -> None:
    """One warning line on stderr (subsampling or streaming because a layer does not fit the budget)."""
    print(f"warning: {message}", file=sys.stderr, flush=True)


__all__ = ["DEFAULT_FRACTION", "DEFAULT_HELP", "MaxMemory", "available_memory", "check_size", "default_budget", "fits",
           "fitting_rows", "format_size", "layer_bytes", "layer_width", "parse_size", "resolve_budget",
           "rows_that_fit", "stream_fits", "warn"]
