"""Everything the CLI draws with rich; the one module that imports rich at module level.

Commands import this module inside their functions, so `interlink --help` never pays for
rich. Text from the config goes into `Text` objects, never into markup, so a `[` in a URL
prints as itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from rich.progress import TaskID

    from interlink.cli._demo import DemoResult
    from interlink.config import ConnectionConfig, InterlinkConfig
    from interlink.sync import RunResult

__all__ = [
    "DemoProgress",
    "RunProgress",
    "mask_url",
    "show_config",
    "show_conflict",
    "show_conflicts",
    "show_demo",
    "show_records",
    "show_run",
    "show_runs",
]


def mask_url(url: str) -> str:
    """Hide the password of a URL's userinfo and the values of secret query parameters.

    ```python
    mask_url("postgresql://app:hunter2@db/interlink")  # 'postgresql://app:***@db/interlink'
    ```
    """
    from interlink.http import Redactor

    return Redactor().url(url)


def show_config(config: InterlinkConfig, *, file: str, console: Console | None = None) -> None:
    """Print what a valid config defines: its connections as a table, then its database."""
    console = console or Console(highlight=False)
    count = len(config.connections)
    noun = "connection" if count == 1 else "connections"
    console.print(Text.assemble((file, "bold"), f" is valid: {count} {noun}."))
    if config.connections:
        console.print(_connections_table(config.connections))
    else:
        console.print("No connections defined yet; add one under [bold]connections:[/bold].")
    if config.resources:
        console.print(_resources_table(config))
    console.print(
        Text.assemble(
            ("Database: ", "bold"),
            f"{config.database.backend}  ",
            (mask_url(config.database.url), "cyan"),
        ),
        overflow="fold",
    )


def _connections_table(connections: dict[str, ConnectionConfig]) -> Table:
    table = Table(title="Connections", title_justify="left", show_lines=False)
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("base_url", style="cyan", overflow="fold")
    table.add_column("auth")
    table.add_column("rate limit")
    table.add_column("retry attempts", justify="right")
    table.add_column("transport")
    for name, connection in connections.items():
        table.add_row(
            Text(name),
            Text(mask_url(connection.base_url)),
            Text(connection.auth.type),
            Text(_rate_limit(connection)),
            Text(str(connection.retry.max_attempts)),
            Text(connection.transport),
        )
    return table


def _resources_table(config: InterlinkConfig) -> Table:
    table = Table(title="Resources", title_justify="left")
    table.add_column("name", style="bold", no_wrap=True)
    table.add_column("type")
    table.add_column("endpoint", style="cyan", overflow="fold")
    table.add_column("records")
    table.add_column("paginate")
    table.add_column("incremental")
    for name in config.resource_names():
        _, _, resource = config.resource(name)
        endpoint = str(getattr(resource, "path", None) or getattr(resource, "operation", ""))
        parent = getattr(resource, "parent", None)
        if parent:
            endpoint += f"  (per {parent})"
        incremental = resource.incremental
        since = f"{incremental.field} -> {incremental.param or '(client)'}" if incremental else "-"
        table.add_row(
            Text(name),
            Text(resource.type),
            Text(str(endpoint)),
            Text(resource.records or "-"),
            Text(resource.paginate.type),
            Text(since),
        )
    return table


def _rate_limit(connection: ConnectionConfig) -> str:
    limit = connection.rate_limit
    if limit is None:
        return "-"
    text = f"{limit.rate:g}/{_duration(limit.per)}"
    if limit.burst is not None:
        text += f" (burst {limit.burst})"
    return text


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


class DemoProgress:
    """The demo's progress bars: customer pages read and customers created."""

    def __init__(self, console: Console | None = None) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
        )

        self._progress = Progress(
            TextColumn("{task.description:<22}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TimeElapsedColumn(),
            console=console or Console(highlight=False),
            transient=False,
        )
        self._tasks: dict[str, TaskID] = {}
        self._labels = {"read": "reading customer pages", "create": "creating customers"}

    def __enter__(self) -> DemoProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def advance(self, kind: str, steps: int, *, total: int | None = None) -> None:
        task = self._tasks.get(kind)
        if task is None:
            task = self._tasks[kind] = self._progress.add_task(
                self._labels.get(kind, kind), total=total, rate=""
            )
        elif total is not None:
            self._progress.update(task, total=total)
        self._progress.advance(task, steps)
        speed = self._progress.tasks[task].speed
        self._progress.update(task, rate=f"{speed:6.1f}/s" if speed else "")


def show_demo(result: DemoResult, console: Console | None = None) -> None:
    """The demo's summary table and its verdict."""
    console = console or Console(highlight=False)
    stats = result.client
    server = result.server
    table = Table(title="interlink demo: shop sandbox through ApiClient", title_justify="left")
    table.add_column("what")
    table.add_column("value", justify="right")
    table.add_column("check")
    ok, bad = Text("ok", "green"), Text("MISMATCH", "bold red")
    read = len(result.ids_read)
    table.add_row(
        "customers read",
        f"{read:,} in {result.pages} pages",
        ok if result.read_exactly_once else bad,
    )
    table.add_row(
        "customers created",
        f"{result.creates_sent:,} (sandbox ledger: {server.get('creates', '?')}, "
        f"idempotent replays: {server.get('idempotent_replays', 0)})",
        ok if result.created_exactly_once else bad,
    )
    if stats is not None:
        table.add_row("requests / attempts", f"{stats.requests:,} / {stats.attempts:,}", "")
        statuses = ", ".join(f"{code}: {n}" for code, n in sorted(stats.statuses.items()))
        table.add_row("responses by status", statuses or "-", "")
        errors = ", ".join(f"{kind}: {n}" for kind, n in sorted(stats.errors.items()))
        table.add_row("connection errors", errors or "none", "")
        table.add_row("retries", f"{stats.retries:,} ({stats.retry_wait_s:.2f} s waited)", "")
        table.add_row("rate-limit wait", f"{stats.rate_limit_wait_s:.2f} s", "")
    faults = server.get("faults", {})
    injected = ", ".join(f"{k}: {v}" for k, v in sorted(faults.items()) if v) or "none"
    table.add_row("faults the sandbox injected", injected, "")
    table.add_row("429s the sandbox sent", str(server.get("rate_limited", 0)), "")
    rate = (stats.attempts / result.elapsed) if stats and result.elapsed else 0.0
    table.add_row("elapsed", f"{result.elapsed:.2f} s ({rate:.1f} requests/s)", "")
    console.print(table)
    if result.read_exactly_once and result.created_exactly_once:
        console.print(
            Text(
                "Every record was read exactly once and every create applied exactly once.",
                "bold green",
            )
        )
    else:
        console.print(Text("The demo found a mismatch (see the table above).", "bold red"))


def show_records(title: str, records: list[dict[str, Any]], console: Console | None = None) -> None:
    """Records as a table: the top-level fields of the first records, nested values as JSON."""
    import orjson

    console = console or Console(highlight=False)
    if not records:
        console.print(Text(f"{title}: no records"))
        return
    columns: list[str] = []
    for record in records[:50]:
        for key in record:
            if key not in columns:
                columns.append(key)
    table = Table(title=title, title_justify="left")
    for column in columns[:12]:
        table.add_column(column, overflow="ellipsis", no_wrap=True, max_width=32)
    for record in records:
        cells = []
        for column in columns[:12]:
            value = record.get(column)
            if isinstance(value, dict | list):
                text = orjson.dumps(value, default=str).decode()
            else:
                text = "" if value is None else str(value)
            cells.append(Text(text[:200]))
        table.add_row(*cells)
    console.print(table)
    if len(columns) > 12:
        console.print(Text(f"({len(columns) - 12} more fields; use --output jsonl to see all)"))


class RunProgress:
    """A live bar for `interlink run`: records and pages so far, rate, elapsed time."""

    def __init__(self, pipeline: str, console: Console | None = None) -> None:
        from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

        self._progress = Progress(
            SpinnerColumn(),
            TextColumn("[bold]{task.description}"),
            TextColumn("{task.fields[records]:>10,} records"),
            TextColumn("{task.fields[pages]:>6,} pages"),
            TextColumn("{task.fields[rate]:>10}"),
            TextColumn("{task.fields[failed]}"),
            TimeElapsedColumn(),
            console=console or Console(highlight=False, stderr=True),
            transient=False,
        )
        self._task = self._progress.add_task(
            pipeline, total=None, records=0, pages=0, rate="", failed=""
        )

    def __enter__(self) -> RunProgress:
        self._progress.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.__exit__(None, None, None)

    def update(self, result: RunResult) -> None:
        import time

        counts = result.counts
        elapsed = time.perf_counter() - result.started
        rate = f"{counts['read'] / elapsed:,.0f}/s" if elapsed > 0 else ""
        failed = f"[red]{counts['failed']:,} failed" if counts["failed"] else ""
        self._progress.update(
            self._task, records=counts["read"], pages=counts["pages"], rate=rate, failed=failed
        )


def show_run(result: RunResult, console: Console | None = None) -> None:
    """The summary of one run."""
    console = console or Console(highlight=False)
    counts = result.counts
    title = f"run {result.run_id} of {result.pipeline}: {result.status}"
    if result.dry_run:
        title += " (dry run)"
    if result.resumed:
        title += " (resumed an interrupted read)"
    table = Table(title=title, title_justify="left")
    for column in ("read", "created", "updated", "unchanged", "skipped", "failed", "pages"):
        table.add_column(column, justify="right")
    table.add_column("time", justify="right")
    table.add_column("records/s", justify="right")
    rate = counts["read"] / result.elapsed if result.elapsed > 0 else 0.0
    table.add_row(
        *(f"{counts[c]:,}" for c in ("read", "created", "updated", "unchanged", "skipped")),
        Text(f"{counts['failed']:,}", "red" if counts["failed"] else ""),
        f"{counts['pages']:,}",
        f"{result.elapsed:.2f} s",
        f"{rate:,.0f}",
    )
    console.print(table)
    if result.dry_run:
        console.print(Text(f"{result.would_write:,} records would be written."))
    for error in result.errors[:10]:
        console.print(
            Text(f"  record {error['key']} ({error['step']}): {error['error']}", "red"),
            overflow="fold",
        )
    if counts["failed"] > len(result.errors[:10]):
        console.print(Text(f"  ... {counts['failed'] - 10:,} more failed records"))
    if result.message:
        console.print(Text(result.message, "red"))


def show_runs(runs: list[dict[str, Any]], console: Console | None = None) -> None:
    """Recent runs, newest first."""
    import datetime as dt

    console = console or Console(highlight=False)
    if not runs:
        console.print("No runs yet.")
        return
    table = Table(title="Runs", title_justify="left")
    for column in (
        "id",
        "pipeline",
        "status",
        "started",
        "time",
        "read",
        "created",
        "updated",
        "unchanged",
        "skipped",
        "failed",
    ):
        table.add_column(
            column, justify="right" if column not in ("pipeline", "status") else "left"
        )
    for run in runs:
        started = dt.datetime.fromtimestamp(run["started_at"]).strftime("%Y-%m-%d %H:%M:%S")
        took = (run["finished_at"] - run["started_at"]) if run["finished_at"] else None
        table.add_row(
            str(run["id"]),
            Text(run["pipeline"]),
            Text(run["status"], "green" if run["status"] == "succeeded" else "yellow"),
            started,
            f"{took:.1f} s" if took is not None else "-",
            *(f"{run[c]:,}" for c in ("read", "created", "updated", "unchanged", "skipped")),
            Text(f"{run['failed']:,}", "red" if run["failed"] else ""),
        )
    console.print(table)


def show_conflicts(rows: list[dict[str, Any]], console: Console | None = None) -> None:
    """Conflicts as a table."""
    import datetime as dt

    console = console or Console(highlight=False)
    if not rows:
        console.print("No conflicts.")
        return
    table = Table(title="Conflicts", title_justify="left")
    for column in ("id", "pipeline", "source", "target", "fields that differ", "status", "at"):
        table.add_column(column)
    for row in rows:
        source, target = row["source_record"], row["target_record"]
        differ = [k for k in source if source.get(k) != target.get(k)]
        status = row["status"] + (f" ({row['resolution']})" if row["resolution"] else "")
        at = dt.datetime.fromtimestamp(row["created_at"]).strftime("%Y-%m-%d %H:%M")
        table.add_row(
            str(row["id"]),
            Text(row["pipeline"]),
            Text(row["source_key"]),
            Text(row["target_key"]),
            Text(", ".join(differ) or "-"),
            Text(status),
            at,
        )
    console.print(table)


def show_conflict(row: dict[str, Any], console: Console | None = None) -> None:
    """One conflict, both sides field by field."""
    console = console or Console(highlight=False)
    source, target = row["source_record"], row["target_record"]
    table = Table(
        title=f"conflict {row['id']} of {row['pipeline']}: source {row['source_key']} <-> "
        f"target {row['target_key']} ({row['status']})",
        title_justify="left",
    )
    table.add_column("field")
    table.add_column("source")
    table.add_column("target")
    for key in source:
        a, b = source.get(key), target.get(key)
        style = "yellow" if a != b else ""
        table.add_row(Text(key, style), Text(str(a), style), Text(str(b), style))
    console.print(table)
    if row["status"] == "open":
        console.print(f"interlink conflicts resolve {row['id']} --take source|target")
