"""Rich output of `interlink worker`: a live status line and the closing summary."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from interlink.jobs import WorkerStats

__all__ = ["WorkerStatus", "show_worker_stats"]

_STYLES = {
    "queued": "yellow",
    "running": "cyan",
    "completed": "green",
    "failed": "red",
    "cancelled": "magenta",
}


class WorkerStatus:
    """One live line: the backend, the slots, and the jobs in each status."""

    def __init__(
        self, backend: str, concurrency: int, kinds: list[str], console: Console | None = None
    ) -> None:
        self.console = console or Console(stderr=True)
        self.header = (
            f"worker on {backend}, {concurrency} at once, kinds: {', '.join(kinds)} "
            "(Ctrl-C stops; running pipelines stop at their next batch)"
        )
        self.live = Live(
            self._line({}), console=self.console, refresh_per_second=2, transient=False
        )

    def _line(self, counts: dict[str, int]) -> Text:
        line = Text("jobs ")
        for status, style in _STYLES.items():
            line.append(f"{status} ", style="dim")
            line.append(f"{counts.get(status, 0):,}  ", style=style)
        return line

    def __enter__(self) -> WorkerStatus:
        self.console.print(self.header)
        self.live.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self.live.__exit__(None, None, None)

    def update(self, counts: dict[str, int]) -> None:
        self.live.update(self._line(counts))


def show_worker_stats(stats: WorkerStats, console: Console | None = None) -> None:
    """What this worker did, as a table."""
    console = console or Console()
    table = Table(title="worker summary")
    for column in ("completed", "retried", "failed", "cancelled", "reclaimed", "waited", "lost"):
        table.add_column(column, justify="right")
    values: list[Any] = [
        stats.completed,
        stats.retried,
        stats.failed,
        stats.cancelled,
        stats.reclaimed,
        stats.waited,
        stats.lost,
    ]
    table.add_row(*(f"{value:,}" for value in values))
    console.print(table)
    if stats.by_kind:
        console.print(
            "completed by kind: "
            + ", ".join(f"{kind} {count:,}" for kind, count in sorted(stats.by_kind.items()))
        )
