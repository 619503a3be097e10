"""The live progress bars of `interlink run` (one run) and of several runs in a row (the
demo, a run for every account), drawn with rich on stderr or stdout.

Imported inside the command functions only; `rich.progress` itself only when a bar is
drawn.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.text import Text

if TYPE_CHECKING:
    from interlink.sync import RunResult

__all__ = ["RunProgress", "RunsProgress"]


class RunProgress:
    """A live bar for `interlink run`: records and pages so far, rate, elapsed time.

    Only on a terminal: written to a file or a pipe (cron, CI, a benchmark) the bar would
    be one line repeating the summary's counts, and building it (rich's live display and
    its refresh thread) costs a run about 10 ms.
    """

    def __init__(self, pipeline: str, console: Console | None = None) -> None:
        console = console or Console(highlight=False, stderr=True)
        self._progress: Any = None
        if not console.is_terminal:
            return
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[records]:>10,} records"),
            TextColumn("{task.fields[pages]:>6,} pages"),
            TextColumn("{task.fields[rate]:>10}"),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            console=console,
            transient=False,
        )
        self._task = self._progress.add_task(
            pipeline, total=None, records=0, pages=0, rate="", failed=""
        )

    def __enter__(self) -> RunProgress:
        if self._progress is not None:
            self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        if self._progress is not None:
            self._progress.__exit__(None, None, None)

    def update(self, result: RunResult) -> None:
        if self._progress is None:
            return
        import time

        counts = result.counts
        elapsed = time.perf_counter() - result.started
        rate = f"{counts['read'] / elapsed:,.0f}/s" if elapsed > 0 else ""
        failed = f"[red]{counts['failed']:,} failed" if counts["failed"] else ""
        self._progress.update(
            self._task, records=counts["read"], pages=counts["pages"], rate=rate, failed=failed
        )


class RunsProgress:
    """Live bars for several runs in a row (the demo, a run for every account): one line
    per run."""

    def __init__(self, console: Console | None = None, *, stderr: bool = False) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description:<12}"),
            TextColumn("{task.fields[records]:>8,} read"),
            TextColumn("{task.fields[written]:>8,} written"),
            TextColumn("{task.fields[pages]:>5,} pages"),
            TextColumn("{task.fields[rate]:>9}"),
            TimeElapsedColumn(),
            console=console or Console(highlight=False, stderr=stderr),
        )
        self._tasks: dict[int | None, Any] = {}

    def __enter__(self) -> RunsProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        for task in self._progress.tasks:
            self._progress.update(task.id, completed=1, total=1)
        self._progress.__exit__(None, None, None)

    def say(self, text: str) -> None:
        self._progress.console.print(Text(text))

    def update(self, result: RunResult) -> None:
        import time

        task = self._tasks.get(result.run_id)
        if task is None:
            label = f"{result.pipeline}@{result.account}" if result.account else result.pipeline
            task = self._tasks[result.run_id] = self._progress.add_task(
                label, total=None, records=0, written=0, pages=0, rate=""
            )
        counts = result.counts
        elapsed = time.perf_counter() - result.started
        self._progress.update(
            task,
            records=counts["read"],
            written=counts["created"] + counts["updated"],
            pages=counts["pages"],
            rate=f"{counts['read'] / elapsed:,.0f}/s" if elapsed > 0 else "",
        )
