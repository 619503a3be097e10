"""What `interlink inspect` and `interlink init --from` print about a detected list."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from interlink.connectors.detect import Detection, Finding, Secrets

__all__ = ["show_detection", "show_variables"]

_STYLE = {"sure": "green", "likely": "yellow", "guess": "red"}


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return " ".join(f"{k}={_shown(v)}" for k, v in value.items())
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _paging(value: dict[str, Any]) -> str:
    kind = value.get("type", "single")
    details = [f"{k}: {_shown(v)}" for k, v in value.items() if k != "type" and v is not None]
    return f"{kind} ({', '.join(details)})" if details else str(kind)


def _row(table: Table, what: str, shown: str, finding: Finding) -> None:
    table.add_row(
        what,
        Text(shown),
        Text(finding.confidence, style=_STYLE.get(finding.confidence, "")),
        Text(finding.evidence),
    )


def show_detection(detection: Detection, console: Console | None = None) -> None:
    """A short table (fits 80 columns): each decision, how sure, and why."""
    console = console or Console(highlight=False, width=80)
    table = Table(title=f"{detection.url} ({detection.requests} requests)", title_justify="left")
    table.add_column("", no_wrap=True)
    table.add_column("detected", max_width=24, overflow="fold")
    table.add_column("sure", no_wrap=True)
    table.add_column("why", ratio=1, overflow="fold")
    records = detection.records
    where = "JSON:API data" if detection.format == "jsonapi" else records.value or "the body"
    _row(table, "records", str(where), records)
    _row(table, "pages", _paging(detection.paginate.value), detection.paginate)
    _row(table, "key", str(detection.primary_key.value or "none"), detection.primary_key)
    incremental = detection.incremental
    if incremental.value is None:
        shown = "none"
    else:
        param = incremental.value.get("param")
        shown = incremental.value["field"] + (f" via {param}" if param else " (client-side)")
    _row(table, "changes", shown, incremental)
    console.print(table)


def show_variables(secrets: Secrets, console: Console | None = None) -> None:
    """Which environment variables the written file reads, and which are not set yet."""
    console = console or Console(highlight=False, width=80)
    missing = [name for name, known in secrets.variables.items() if not known]
    present = [name for name, known in secrets.variables.items() if known]
    if missing:
        names = ", ".join(missing)
        console.print(
            Text(f"Set {names} to the credential you gave (the file holds only ${{...}}).")
        )
    if present:
        console.print(Text(f"The file reads {', '.join(present)} from the environment."))
