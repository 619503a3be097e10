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

from interlink.cli._run_summary import COLUMNS, run_summary

if TYPE_CHECKING:
    from interlink.cli._demo import DemoResult, WebhookStep
    from interlink.config import ConnectionConfig, InterlinkConfig
    from interlink.sync import AccountRun, RunResult

__all__ = [
    "mask_url",
    "show_config",
    "show_conflict",
    "show_conflicts",
    "show_demo",
    "show_account_runs",
    "run_reason",
    "show_interrupted",
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
    parts = []
    if limit.rate is not None:
        text = f"{limit.rate:g}/{_duration(limit.per)}"
        parts.append(text + (f" (burst {limit.burst})" if limit.burst is not None else ""))
    if limit.warn_below is not None:
        parts.append(f"warn below {limit.warn_below}")
    return ", ".join(parts) or "-"


def _duration(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:g}ms"
    if seconds >= 3600 and seconds % 3600 == 0:
        return f"{seconds / 3600:g}h"
    if seconds >= 60 and seconds % 60 == 0:
        return f"{seconds / 60:g}m"
    return f"{seconds:g}s"


def show_demo(result: DemoResult, console: Console | None = None) -> None:
    """Each run's summary, the edits made between the runs, and what was verified."""
    console = console or Console(highlight=False)
    for run in result.runs:
        show_run(run, console)
    if result.changes:
        console.print(Text("Between the runs:", "bold"))
        for change in result.changes:
            console.print(Text(f"  {change}"))
    if result.webhook is not None:
        _show_demo_webhook(result.webhook, console)
    table = Table(title="What the demo verified against the sandbox", title_justify="left")
    table.add_column("check")
    table.add_column("expected")
    table.add_column("found")
    table.add_column("")
    for check in result.checks:
        mark = Text("ok", "green") if check.ok else Text("MISMATCH", "bold red")
        table.add_row(Text(check.what), Text(check.expected), Text(check.found), mark)
    console.print(table)
    if result.ok:
        console.print(
            Text(
                f"Done in {result.elapsed:.1f} s: only the changed records moved, the "
                "two-sided changes went to the newer edit, and the webhook's change landed "
                "in commerce.",
                "bold green",
            )
        )
    else:
        console.print(Text("The demo found a problem (see above).", "bold red"))


def _show_demo_webhook(step: WebhookStep, console: Console) -> None:
    """The demo's webhook step: the change, what the shop sent, what interlink stored."""
    stats = step.stats
    sent = stats.get("sent", 0)
    console.print(Text("By webhook, after the runs:", "bold"))
    console.print(Text(f"  {step.change}"))
    console.print(
        Text(
            f"  the shop sent {sent} signed event{'' if sent == 1 else 's'} "
            f"({stats.get('retried', 0)} retried, {stats.get('failed', 0)} failed), "
            f"settled in {step.waited:.1f} s, to"
        )
    )
    console.print(Text(f"  {step.url}"))
    if not step.deliveries:
        console.print(Text("  interlink stored no delivery for it", "bold red"))
        return
    table = Table(title="Deliveries interlink stored and processed", title_justify="left")
    table.add_column("id", justify="right")
    table.add_column("delivery id")
    table.add_column("event")
    table.add_column("status")
    for delivery in step.deliveries:
        status = Text(delivery.status, "green" if delivery.status == "processed" else "red")
        run = (delivery.result or {}).get("run_id")
        if run is not None:
            status.append(f" (run {run})")
        table.add_row(
            Text(str(delivery.id)),
            Text(delivery.delivery_id),
            Text(delivery.event_type or "-"),
            status,
        )
    console.print(table)
    for delivery in step.deliveries:
        if delivery.last_error:
            console.print(Text(f"  {delivery.id}: {delivery.last_error}", "red"))


def _cell(value: Any) -> str:
    import orjson

    if isinstance(value, dict | list):
        return orjson.dumps(value, default=str).decode()[:200]
    return "" if value is None else str(value)[:200]


_CELL_MIN = 10
"""Narrowest a record column is drawn (its header's width when that is wider)."""
_CELL_MAX = 32
_COLUMNS_MAX = 12


def _fitting(
    columns: list[str], records: list[dict[str, Any]], width: int
) -> list[tuple[str, int]]:
    """The first columns that fit `width` side by side, each with the width it is drawn
    at: at least its whole header and up to `_CELL_MIN` of its values, then what room is
    left shared out up to its longest value (`_CELL_MAX` at most). The other columns are
    left out (and named as left out), never squeezed to nothing."""
    chosen: list[tuple[str, int, int]] = []
    used = 1  # the table's left border
    for column in columns[:_COLUMNS_MAX]:
        longest = max((len(_cell(record.get(column))) for record in records[:50]), default=0)
        narrowest = max(len(column), min(longest, _CELL_MIN), 1)
        if chosen and used + narrowest + 3 > width:
            break
        chosen.append((column, narrowest, max(narrowest, min(longest, _CELL_MAX))))
        used += narrowest + 3
    room = max(width - used, 0)
    widths = [narrowest for _, narrowest, _ in chosen]
    while room > 0:
        grown = False
        for index, (_, _, natural) in enumerate(chosen):
            if room > 0 and widths[index] < natural:
                widths[index] += 1
                room -= 1
                grown = True
        if not grown:
            break
    return [(column, widths[index]) for index, (column, _, _) in enumerate(chosen)]


def show_records(title: str, records: list[dict[str, Any]], console: Console | None = None) -> None:
    """Records as a table: the top-level fields of the first records, nested values as
    JSON, as many fields as fit the terminal whole (the rest: `--output jsonl`)."""
    console = console or Console(highlight=False)
    if not records:
        console.print(Text(f"{title}: no records"))
        return
    columns: list[str] = []
    for record in records[:50]:
        for key in record:
            if key not in columns:
                columns.append(key)
    shown = _fitting(columns, records, console.width)
    table = Table(title=title, title_justify="left")
    for column, drawn in shown:
        table.add_column(column, overflow="ellipsis", no_wrap=True, width=drawn)
    for record in records:
        table.add_row(*(Text(_cell(record.get(column))) for column, _ in shown))
    console.print(table)
    if len(columns) > len(shown):
        left = [column for column in columns if column not in dict(shown)]
        console.print(
            Text(f"({len(left)} more fields: {', '.join(left)}; use --output jsonl to see all)"),
            overflow="fold",
        )


def show_run(result: RunResult, console: Console | None = None) -> None:
    """The summary of one run (its content: `cli/_run_summary.run_summary`)."""
    console = console or Console(highlight=False)
    summary = run_summary(result)
    table = Table(title=Text(summary.title), title_justify="left")
    for column in COLUMNS:
        table.add_column(column, justify="right")
    table.add_row(*summary.counts[:-1], Text(summary.counts[-1], "red" if summary.failed else ""))
    console.print(table)
    for text, style in summary.lines:
        console.print(Text(text, style), overflow="fold")


def show_interrupted(
    run: dict[str, Any] | None, pipeline: str, console: Console | None = None
) -> None:
    """After Ctrl-C: the run as it was recorded (`cancelled`, with the reason)."""
    console = console or Console(highlight=False, stderr=True)
    if run is None:
        console.print(Text(f"{pipeline}: interrupted before its run started", "yellow"))
        return
    reason = run.get("message") or "interrupted"
    console.print(
        Text(
            f"run {run['id']} of {run['pipeline']}: {run['status']}, {reason}; "
            f"{run['read']:,} read, {run['created'] + run['updated']:,} written. "
            "The next run resumes from its last checkpoint.",
            "yellow",
        ),
        overflow="fold",
    )


def run_reason(run: dict[str, Any]) -> str | None:
    """Why a run in the runs table did not succeed: its message, else its first record
    error; None for a run that succeeded or is still running."""
    status = str(run["status"])
    if status in ("succeeded", "running"):
        return None
    message = run.get("message")
    if message:
        return str(message)
    errors = run.get("errors") or []
    if errors and isinstance(errors[0], dict):
        first = errors[0]
        failed = int(run.get("failed") or 0)
        noun = "record" if failed == 1 else "records"
        return (
            f"{failed:,} {noun} failed; first: record {first.get('key')} "
            f"({first.get('step')}): {first.get('error')}"
        )
    return "no reason was recorded"


def show_account_runs(
    pipeline: str, runs: list[AccountRun], console: Console | None = None
) -> None:
    """The summary of a run for every account: one row per account, then why each
    failed or was skipped."""
    console = console or Console(highlight=False)
    failed = sum(1 for run in runs if not run.ok and run.status != "skipped")
    title = f"{pipeline}: {len(runs)} accounts, {failed} failed"
    table = Table(title=title, title_justify="left")
    table.add_column("account", overflow="fold")
    table.add_column("run", justify="right")
    table.add_column("status")
    for column in ("read", "created", "updated", "deleted", "failed"):
        table.add_column(column, justify="right")
    styles = {"succeeded": "green", "skipped": "yellow"}
    for run in runs:
        counts = run.result.counts if run.result is not None else None
        run_id = run.result.run_id if run.result is not None else None
        table.add_row(
            Text(run.account),
            "-" if run_id is None else str(run_id),
            Text(run.status, styles.get(run.status, "red")),
            *(
                "-" if counts is None else f"{counts[c]:,}"
                for c in ("read", "created", "updated", "deleted")
            ),
            Text(
                "-" if counts is None else f"{counts['failed']:,}",
                "red" if counts and counts["failed"] else "",
            ),
        )
    console.print(table)
    for run in runs:
        if run.message:
            style = "yellow" if run.status == "skipped" else "red"
            console.print(Text(f"{run.account}: {run.message}", style), overflow="fold")


def show_runs(runs: list[dict[str, Any]], console: Console | None = None) -> None:
    """Recent runs, newest first. A connected account's run shows its account under the
    pipeline's name (`customers` / `@acct_1001`). In 80 columns the counts are read,
    written (created and updated) and failed; 150 columns show each count and the time
    taken."""
    import datetime as dt

    console = console or Console(highlight=False)
    if not runs:
        console.print("No runs yet.")
        return
    wide = console.width >= 150
    counts = ("read", "created", "updated", "unchanged", "skipped") if wide else ("read",)
    table = Table(title="Runs", title_justify="left")
    columns = ["id", "pipeline", "status", "started", *(["time"] if wide else []), *counts]
    for column in [*columns, *([] if wide else ["written"]), "failed"]:
        flexible = column in ("pipeline", "status")
        table.add_column(
            column,
            justify="left" if flexible else "right",
            overflow="fold",
            no_wrap=not flexible,
        )
    for run in runs:
        when = dt.datetime.fromtimestamp(run["started_at"])
        started = when.strftime("%Y-%m-%d %H:%M:%S" if wide else "%m-%d %H:%M")
        took = (run["finished_at"] - run["started_at"]) if run["finished_at"] else None
        name, _, account = str(run["pipeline"]).partition("@")
        status = str(run["status"])
        cells: list[Any] = [
            str(run["id"]),
            Text(name + (f"\n@{account}" if account else "")),
            Text(
                status if wide else status.replace("_", " "),
                "green" if status == "succeeded" else "yellow",
            ),
            started,
        ]
        if wide:
            cells.append(f"{took:.1f} s" if took is not None else "-")
        cells += [f"{run[c]:,}" for c in counts]
        if not wide:
            cells.append(f"{run['created'] + run['updated']:,}")
        cells.append(Text(f"{run['failed']:,}", "red" if run["failed"] else ""))
        table.add_row(*cells)
    console.print(table)
    for run in runs:
        reason = run_reason(run)
        if reason is not None:
            style = "red" if run["status"] in ("failed", "crashed") else "yellow"
            console.print(
                Text(f"run {run['id']} {str(run['status']).replace('_', ' ')}: {reason}", style),
                overflow="fold",
            )


def show_conflicts(rows: list[dict[str, Any]], console: Console | None = None) -> None:
    """Conflicts as a table."""
    import datetime as dt

    console = console or Console(highlight=False)
    if not rows:
        console.print("No conflicts.")
        return
    table = Table(title="Conflicts", title_justify="left")
    for column in ("id", "pipeline", "source", "target", "differs", "status", "at"):
        table.add_column(column, min_width=len(column), overflow="fold")
    for row in rows:
        source, target = row["source_record"], row["target_record"]
        differ = [k for k in source if source.get(k) != target.get(k)]
        status = row["status"] + (f" ({row['resolution']})" if row["resolution"] else "")
        at = dt.datetime.fromtimestamp(row["created_at"]).strftime("%m-%d %H:%M")
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
