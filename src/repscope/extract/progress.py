"""A Rich progress bar with samples/s and ETA, shared by extraction and training loops."""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.text import Text


class RateColumn(ProgressColumn):
    """Items per second, e.g. '812 samples/s'."""

    def __init__(self, unit: str = "samples"):
        super().__init__()
        self.unit = unit

    def render(self, task: Task) -> Text:
        """Render the current speed."""
        speed = task.finished_speed or task.speed
        return Text(f"{speed:,.0f} {self.unit}/s" if speed else f"– {self.unit}/s", style="cyan")


class _Progress(Progress):
    """A Progress that, off a terminal, prints no stale final frame when the block fails (so an error stays the
    only line on stderr); on success it prints the final frame as usual."""

    def __exit__(self, exc_type: type[BaseException] | None, exc_val: BaseException | None,
                 exc_tb: TracebackType | None) -> None:
        if exc_type is not None and not self.console.is_terminal:
            self.live.transient = True
        super().__exit__(exc_type, exc_val, exc_tb)


def make_progress(unit: str = "samples", console: Console | None = None, disable: bool = False,
                  extra: str = "") -> Progress:
    """Progress(description, bar, M/N, rate, elapsed, ETA[, extra fields like '{task.fields[loss]}'])."""
    cols = [TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), RateColumn(unit),
            TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn()]
    if extra:
        cols.append(TextColumn(extra))
    return _Progress(*cols, console=console or Console(stderr=True), disable=disable, transient=False,
                    refresh_per_second=4)
