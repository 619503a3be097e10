"""How `interlink jobs ...` draws jobs with rich: panels, tables and the wait spinner.

Imported inside the command functions only. Everything the server sends goes into `Text`
objects, never into markup, so a `[` in a pipeline name or an error prints as itself.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

__all__ = [
    "JobWait",
    "describe_progress",
    "show_job",
    "show_jobs",
    "show_submitted",
]

STATUS_STYLE = {
    "queued": "yellow",
    "running": "cyan",
    "completed": "green",
    "failed": "bold red",
    "cancelled": "magenta",
}


def _console(console: Console | None) -> Console:
    return console or Console(highlight=False)


def _status(status: Any) -> Text:
    text = str(status or "-")
    return Text(text, style=STATUS_STYLE.get(text, ""))


def _when(value: Any) -> str:
    """A job time (epoch seconds, or an ISO-8601 string) in local time, to the second."""
    if value is None or value == "":
        return "-"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M:%S")
    text = str(value)
    try:
        return (
            datetime.fromisoformat(text.replace("Z", "+00:00"))
            .astimezone()
            .strftime("%Y-%m-%d %H:%M:%S")
        )
    except ValueError:
        return text


def _seconds(job: Mapping[str, Any]) -> float | None:
    started, finished = job.get("started_at"), job.get("finished_at")
    if isinstance(started, int | float) and isinstance(finished, int | float):
        return max(0.0, float(finished) - float(started))
    return None


def describe_progress(progress: Any) -> str:
    """A job's `progress` on one line: `read 120 · created 3 · updated 7`.

    A pipeline job reports `{"run_id", "counts": {...}, "cursor"}`; the non-zero counts are
    shown. Any other mapping is shown as `key value` pairs.
    """
    if not isinstance(progress, Mapping) or not progress:
        return ""
    counts = progress.get("counts")
    source = counts if isinstance(counts, Mapping) else progress
    parts = [
        f"{key} {value:,}" if isinstance(value, int) else f"{key} {value}"
        for key, value in source.items()
        if isinstance(value, int | float | str) and not isinstance(value, bool) and value != 0
    ]
    return " · ".join(parts)


def show_submitted(data: Mapping[str, Any], *, console: Console | None = None) -> None:
    """One line for a submitted job: its id, status and where to watch it."""
    _console(console).print(
        Text.assemble(
            ("Job ", "bold"),
            (str(data.get("job_id")), "bold"),
            " ",
            _status(data.get("status")),
            "  ",
            (str(data.get("status_url") or ""), "cyan"),
        )
    )


def show_job(
    job: Mapping[str, Any], *, title: str | None = None, console: Console | None = None
) -> None:
    """A job as a panel: what it runs, its status and attempts, times, progress, outcome."""
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("status", _status(job.get("status")))
    grid.add_row("kind", Text(str(job.get("kind") or "-")))
    if job.get("pipeline"):
        grid.add_row("pipeline", Text(str(job["pipeline"])))
    args = job.get("args")
    if isinstance(args, Mapping):
        extra = {k: v for k, v in args.items() if k != "pipeline"}
        if extra:
            grid.add_row("args", Text(", ".join(f"{k}={v}" for k, v in extra.items())))
    grid.add_row("attempts", Text(f"{job.get('attempts', 0)} of {job.get('max_attempts', '?')}"))
    grid.add_row("created", Text(_when(job.get("created_at"))))
    if job.get("started_at") is not None:
        grid.add_row("started", Text(_when(job.get("started_at"))))
    if job.get("finished_at") is not None:
        took = _seconds(job)
        suffix = f"  ({took:.1f} s)" if took is not None else ""
        grid.add_row("finished", Text(_when(job.get("finished_at")) + suffix))
    if job.get("cancel_requested") and job.get("status") != "cancelled":
        grid.add_row("cancel", Text("requested; it stops at its next batch", style="magenta"))
    progress = describe_progress(job.get("progress"))
    if progress:
        grid.add_row("progress", Text(progress))
    result = job.get("result")
    if isinstance(result, Mapping) and result:
        counts = describe_progress(result)
        line = str(result.get("status", "")) + (f"  {counts}" if counts else "")
        grid.add_row("result", Text(line.strip() or str(dict(result))))
    if job.get("error"):
        grid.add_row("error", Text(str(job["error"]), style="red"))
    heading = title or f"Job {job.get('id')}"
    _console(console).print(
        Panel(grid, title=Text(heading, style="bold"), title_align="left", expand=False)
    )


def show_jobs(
    jobs: list[dict[str, Any]],
    *,
    next_before: int | None = None,
    console: Console | None = None,
) -> None:
    """Jobs as a table, newest first, with a hint for the next page when there is one."""
    out = _console(console)
    if not jobs:
        out.print("No jobs.")
        return
    # 80 columns: what ran (the pipeline, else the kind), short times, and each error on
    # its own line under the table rather than squeezed into a column.
    wide = out.width >= 120
    table = Table(title_justify="left")
    table.add_column("id", justify="right", style="bold", no_wrap=True)
    table.add_column("status", no_wrap=True)
    if wide:
        table.add_column("kind", no_wrap=True)
    table.add_column("pipeline" if wide else "job", overflow="fold", min_width=5)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("took", justify="right", no_wrap=True)
    table.add_column("progress / error" if wide else "progress", overflow="fold", min_width=8)
    errors: list[Text] = []
    for job in jobs:
        took = _seconds(job)
        progress = Text(describe_progress(job.get("progress")))
        if job.get("error"):
            if wide:
                progress = Text(str(job["error"]), style="red")
            else:
                errors.append(Text(f"job {job.get('id')}: {job['error']}", style="red"))
        created = _when(job.get("created_at"))
        what = [Text(str(job.get("kind") or "-"))] if wide else []
        name = job.get("pipeline") or ("-" if wide else job.get("kind") or "-")
        table.add_row(
            Text(str(job.get("id"))),
            _status(job.get("status")),
            *what,
            Text(str(name)),
            Text(f"{job.get('attempts', 0)}/{job.get('max_attempts', '?')}"),
            Text(created if wide else created[5:16]),
            Text(f"{took:.1f} s" if took is not None else "-"),
            progress,
        )
    parts: list[Any] = [table, *errors]
    if next_before is not None:
        parts.append(Text(f"More jobs: --before {next_before}", style="dim"))
    out.print(Group(*parts))


class JobWait:
    """A spinner while `wait_for_job` polls: the job's status, progress counts and time.

    ```python
    with JobWait(job_id) as display:
        job = client.wait_for_job(job_id, on_update=display.update)
    ```
    """

    def __init__(self, job_id: int, *, console: Console | None = None) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[status]}"),
            TextColumn("{task.fields[counts]}"),
            TimeElapsedColumn(),
            console=_console(console),
            transient=True,
        )
        self._task = self._progress.add_task(f"job {job_id}", total=None, status="", counts="")
        self.last: dict[str, Any] | None = None
        """The job as the last poll saw it."""

    def __enter__(self) -> JobWait:
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def update(self, job: dict[str, Any]) -> None:
        self.last = job
        # Plain strings go through `Text` so markup in them is not interpreted.
        status = str(job.get("status", ""))
        self._progress.update(
            self._task,
            status=Text(status, style=STATUS_STYLE.get(status, "")).markup,
            counts=Text(describe_progress(job.get("progress"))).markup,
        )
