"""Layer selection by exact name or glob, shared by model adapters and stores."""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from repscope.errors import LayerNotFoundError, format_choices


def split_patterns(patterns: Sequence[str] | str | None) -> list[str] | None:
    """Turn 'a,b*' or ['a', 'b*'] into a list of patterns; None/''/'all' means everything."""
    if patterns is None:
        return None
    if isinstance(patterns, str):
        patterns = [p for p in patterns.split(",")]
    pats = [p.strip() for p in patterns if p and p.strip()]
    return None if not pats or pats == ["all"] else pats


def match_layers(available: Sequence[str], patterns: Sequence[str] | str | None, where: str = "model") -> list[str]:
    """Expand names/globs against `available`, keeping model order; unknown names raise with the list of choices."""
    pats = split_patterns(patterns)
    if pats is None:
        return list(available)
    chosen: set[str] = set()
    for p in pats:
        hits = [a for a in available if a == p or fnmatch.fnmatchcase(a, p)]
        if not hits:
            raise LayerNotFoundError(f"layer '{p}' not found in {where}; available: {format_choices(list(available))}")
        chosen.update(hits)
    return [a for a in available if a in chosen]
