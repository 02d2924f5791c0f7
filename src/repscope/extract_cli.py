"""CLI commands for sources and extraction: layers, extract, zoo, demo, study."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the spine's extraction commands."""
