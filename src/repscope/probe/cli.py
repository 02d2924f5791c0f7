"""CLI commands of repscope.probe (registered onto the main Typer app by repscope.cli)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add this package's commands to the main app."""
