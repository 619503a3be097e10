"""How `interlink webhooks ...` draws deliveries and rejections with rich, in 80 columns.

Imported inside the command functions only. Everything a sender sent (event types, ids,
headers, bodies) goes into `Text` objects, never into markup, so a `[` prints as itself.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from interlink.store import Delivery, Rejection

__all__ = ["pretty_body", "show_deliveries", "show_delivery", "show_rejections"]

STATUS_STYLE = {
    "pending": "yellow",
    "processing": "cyan",
    "processed": "green",
    "failed": "bold red",
    "ignored": "dim",
    "held": "magenta",
}


def _console(console: Console | None) -> Console:
    return console or Console(highlight=False)


def _when(epoch: float | None, *, seconds: bool = False) -> str:
    if epoch is None:
        return "-"
    shape = "%Y-%m-%d %H:%M:%S" if seconds else "%m-%d %H:%M"
    return dt.datetime.fromtimestamp(epoch).strftime(shape)


def _start(error: str, length: int = 300) -> str:
    """The start of an error, for a table; `interlink webhooks show ID` has all of it."""
    line = " ".join(error.split())
    return line if len(line) <= length else line[: length - 1] + "…"


def _status(status: str) -> Text:
    return Text(status, style=STATUS_STYLE.get(status, ""))


def pretty_body(text: str) -> str:
    """The body indented when it is JSON; as it is otherwise."""
    try:
        parsed = json.loads(text)
    except ValueError:
        return text
    return json.dumps(parsed, indent=2, ensure_ascii=False)


def _table(title: str) -> Table:
    return Table(
        title=title,
        title_justify="left",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )


def show_deliveries(
    deliveries: Sequence[Delivery],
    *,
    next_before: int | None = None,
    console: Console | None = None,
) -> None:
    """Deliveries as a table, newest first; under it, the last error of each that has one."""
    out = _console(console)
    if not deliveries:
        out.print("No webhook deliveries.")
        return
    table = _table("Webhook deliveries")
    table.add_column("id", justify="right", style="bold", no_wrap=True)
    table.add_column("source", overflow="fold")
    table.add_column("event", overflow="fold")
    table.add_column("status", no_wrap=True)
    table.add_column("tries", justify="right", no_wrap=True)
    table.add_column("received", no_wrap=True)
    errors = _table("Last errors")
    errors.add_column("id", justify="right", style="bold", no_wrap=True)
    errors.add_column("error", overflow="fold", style="red")
    for delivery in deliveries:
        table.add_row(
            Text(str(delivery.id)),
            Text(delivery.source),
            Text(delivery.event_type or "-"),
            _status(delivery.status),
            Text(str(delivery.attempts)),
            Text(_when(delivery.received_at)),
        )
        if delivery.last_error:
            errors.add_row(Text(str(delivery.id)), Text(_start(delivery.last_error)))
    parts: list[Any] = [table]
    if errors.row_count:
        parts.append(errors)
    if next_before is not None:
        parts.append(Text(f"More deliveries: --before {next_before}", style="dim"))
    out.print(Group(*parts))


def show_delivery(shown: Mapping[str, Any], *, console: Console | None = None) -> None:
    """One delivery (as `interlink.webhooks.delivery_details` gives it): a panel with its
    status and history, then its headers, then its body (indented when it is JSON)."""
    out = _console(console)
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold", no_wrap=True)
    grid.add_column(overflow="fold")
    grid.add_row("source", Text(str(shown["source"])))
    grid.add_row("delivery id", Text(str(shown["delivery_id"])))
    grid.add_row("event type", Text(str(shown.get("event_type") or "-")))
    grid.add_row("status", _status(str(shown["status"])))
    grid.add_row("received", Text(_when(shown["received_at"], seconds=True)))
    grid.add_row("attempts", Text(str(shown["attempts"])))
    if shown.get("processed_at") is not None:
        grid.add_row("finished", Text(_when(shown["processed_at"], seconds=True)))
    if shown.get("job_id") is not None:
        grid.add_row("job", Text(str(shown["job_id"])))
    if shown.get("result"):
        grid.add_row("result", Text(json.dumps(shown["result"], sort_keys=True)))
    if shown.get("last_error"):
        grid.add_row("last error", Text(str(shown["last_error"]), style="red"))
    title = Text(f"Webhook delivery {shown['id']}", style="bold")
    out.print(Panel(grid, title=title, title_align="left", expand=False))

    headers = shown.get("headers") or {}
    out.print(Text("Headers", style="bold"))
    if headers:
        table = Table.grid(padding=(0, 2))
        table.add_column(style="cyan", overflow="fold")
        table.add_column(overflow="fold")
        for name, value in headers.items():
            table.add_row(Text(str(name)), Text(str(value)))
        out.print(table)
    else:
        out.print(Text("(none stored)", style="dim"))

    if shown.get("body") is not None:
        out.print(Text("Body", style="bold"))
        out.print(Text(pretty_body(str(shown["body"]))), soft_wrap=False, overflow="fold")
    elif shown.get("body_base64") is not None:
        out.print(Text("Body (not UTF-8; base64)", style="bold"))
        out.print(Text(str(shown["body_base64"])), overflow="fold")


def show_rejections(rejections: Sequence[Rejection], *, console: Console | None = None) -> None:
    """Refused deliveries, newest first: why, when, from where; then each one's message."""
    out = _console(console)
    if not rejections:
        out.print("No rejected deliveries.")
        return
    table = _table("Rejected webhook deliveries")
    table.add_column("id", justify="right", style="bold", no_wrap=True)
    table.add_column("source", overflow="fold")
    table.add_column("reason", overflow="fold")
    table.add_column("http", justify="right", no_wrap=True)
    table.add_column("from", overflow="fold")
    table.add_column("at", no_wrap=True)
    messages = _table("Messages")
    messages.add_column("id", justify="right", style="bold", no_wrap=True)
    messages.add_column("message", overflow="fold")
    for rejection in rejections:
        table.add_row(
            Text(str(rejection.id)),
            Text(rejection.source),
            Text(rejection.reason),
            Text(str(rejection.status)),
            Text(rejection.address or "-"),
            Text(_when(rejection.received_at)),
        )
        messages.add_row(Text(str(rejection.id)), Text(_start(rejection.message)))
    out.print(Group(table, messages))
