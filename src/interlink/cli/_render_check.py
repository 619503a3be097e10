"""What `interlink check` prints: everything it validated, one block per item.

Connections (base URL, auth, rate limit, retries, transport), resources (endpoint, where
the records are, pagination, incremental reads), pipelines (source -> destination, write
mode, schedule and its next run) and the database. A two-column list, not a wide table:
it fits an 80-column terminal, and long values (URLs) fold instead of being cut.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from interlink.config import ConnectionConfig, InterlinkConfig, PipelineConfig

__all__ = ["next_run", "pagination", "show_config"]


def _plural(count: int, noun: str) -> str:
    return f"{count} {noun}" + ("" if count == 1 else "s")


def _listing() -> Table:
    table = Table(box=None, show_header=False, padding=(0, 2, 0, 2), expand=False)
    table.add_column("name", style="bold", no_wrap=True, max_width=28, overflow="fold")
    table.add_column("what", overflow="fold")
    return table


def _masker(config: InterlinkConfig) -> Callable[[str], str]:
    """Masks URLs and paths as `mask_url` does, and the config's secret values (a
    `${SHOP_API_KEY}` written into a base URL's query, say) wherever they are."""
    from interlink.http import Redactor

    redactor = Redactor()
    for connection in config.connections.values():
        for value in connection.secret_values:
            redactor.add_masked(value)
    return redactor.url


def show_config(config: InterlinkConfig, *, file: str, console: Console | None = None) -> None:
    """Print what a valid config defines and what `check` verified about it."""
    mask_url = _masker(config)
    console = console or Console(highlight=False)
    counts = [
        _plural(len(config.connections), "connection"),
        _plural(len(config.resource_names()), "resource"),
        _plural(len(config.pipelines), "pipeline"),
    ]
    console.print(Text.assemble((file, "bold"), f" is valid: {', '.join(counts)}."))
    if config.connections:
        console.print(Text("Connections", "bold underline"))
        table = _listing()
        for name, connection in config.connections.items():
            table.add_row(Text(name), _connection(connection, mask_url))
        console.print(table)
    else:
        console.print("No connections defined yet; add one under [bold]connections:[/bold].")
    if config.resource_names():
        console.print(Text("Resources", "bold underline"))
        table = _listing()
        for name in config.resource_names():
            table.add_row(Text(name), _resource(config, name, mask_url))
        console.print(table)
    if config.pipelines:
        console.print(Text("Pipelines", "bold underline"))
        table = _listing()
        for name, pipeline in config.pipelines.items():
            table.add_row(Text(name), _pipeline(config, name, pipeline))
        console.print(table)
    console.print(
        Text.assemble(
            ("Database: ", "bold"),
            f"{config.database.backend}  ",
            (mask_url(config.database.url), "cyan"),
        ),
        overflow="fold",
    )


def _connection(connection: ConnectionConfig, mask_url: Callable[[str], str]) -> Text:
    from interlink.cli._render import _rate_limit

    text = Text(mask_url(connection.base_url), "cyan")
    attempts = connection.retry.max_attempts
    text.append(
        f"\nauth {connection.auth.type}, rate limit {_rate_limit(connection)}, "
        f"{_plural(attempts, 'attempt')} a request, {connection.transport}"
    )
    return text


def pagination(paginate: Any) -> str:
    """A resource's pagination in a few words: its type and the settings it changes.

    ```python
    pagination(OffsetPaginateConfig(type="offset", page_size=200))  # 'offset, page_size 200'
    ```
    """
    kind = str(getattr(paginate, "type", "single"))
    if kind == "single":
        return "one page (no pagination)"
    changed = paginate.model_dump(exclude_defaults=True, exclude={"type"}, mode="json")
    parts = [f"{key} {_value(value)}" for key, value in changed.items()]
    return ", ".join([kind, *parts]) if parts else f"{kind} (its defaults)"


def _value(value: Any) -> str:
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}: {_value(v)}" for k, v in value.items()) + "}"
    return str(value)


def _resource(config: InterlinkConfig, name: str, mask_url: Callable[[str], str]) -> Text:
    _, _, resource = config.resource(name)
    path = getattr(resource, "path", None)
    if path is not None:
        endpoint = f"{getattr(resource, 'method', 'GET')} {mask_url(path)}"
    else:
        endpoint = f"{resource.type} {getattr(resource, 'operation', '') or ''}".strip()
    parent = getattr(resource, "parent", None)
    if parent:
        endpoint += f" (for each record of {parent})"
    lines = [endpoint]
    jsonapi = getattr(resource, "format", "json") == "jsonapi"
    if resource.records:
        shape = f"records at {resource.records}" + (" (JSON:API)" if jsonapi else "")
    else:
        shape = "records: JSON:API data" if jsonapi else "records: the body (or its data)"
    lines.append(f"{shape}, key {resource.primary_key}")
    lines.append(f"pages: {pagination(resource.paginate)}")
    incremental = resource.incremental
    if incremental is not None:
        sent = (
            f"sent as {incremental.param}"
            if incremental.param
            else "filtered by interlink (the API cannot filter)"
        )
        lines.append(f"incremental: {incremental.field}, {sent}")
    return Text("\n".join(lines))


def next_run(cron: str, now: float | None = None) -> str:
    """When `cron` (UTC) fires next, and how long until then: `2026-05-01 14:15 UTC (in
    12 min)`. Seconds, when given, are the sixth field, as the scheduler reads them."""
    import datetime as dt

    from croniter import croniter

    now = time.time() if now is None else now
    try:
        at = float(croniter(cron, now, second_at_beginning=False).get_next(float))
    except (ValueError, KeyError) as exc:
        return f"cannot be computed ({exc})"
    when = dt.datetime.fromtimestamp(at, dt.UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
    return f"{when.replace(':00 UTC', ' UTC')} (in {_until(at - now)})"


def _until(seconds: float) -> str:
    if seconds < 90:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 90 * 60:
        return f"{seconds / 60:.0f} min"
    if seconds < 36 * 3600:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"


def _pipeline(config: InterlinkConfig, name: str, pipeline: PipelineConfig) -> Text:
    destination = pipeline.destination
    if destination.sql is not None:
        _, _, source = config.resource(pipeline.source)
        key = destination.primary_key or source.primary_key
        keys = ", ".join(key) if isinstance(key, list) else key
        written = f"table {destination.sql}, write {pipeline.write}"
        if pipeline.write == "merge":
            written += f" by {keys}"
    else:
        written = f"{destination.resource} (API: create or update)"
        if pipeline.match:
            written += f", match {', '.join(pipeline.match)}"
        written += f", conflict {pipeline.conflict}"
    lines = [f"{pipeline.source} -> {written}"]
    extras = []
    if pipeline.account:
        extras.append(f"account {pipeline.account}")
    if pipeline.deletes:
        extras.append(f"deletes {pipeline.deletes}")
    if not pipeline.incremental:
        extras.append("reads everything each run")
    if extras:
        lines.append(", ".join(extras))
    if pipeline.schedule:
        lines.append(f"schedule {pipeline.schedule} (UTC): next run {next_run(pipeline.schedule)}")
    else:
        lines.append(f"no schedule: runs with `interlink run {name}` or a job")
    return Text("\n".join(lines))
