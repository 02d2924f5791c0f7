"""Demo step of repscope.dictionary."""

from __future__ import annotations

from repscope.demo_context import DemoContext


def run(ctx: DemoContext) -> None:
    """Run this package's analyses on the demo stores and record them in ctx.db."""
