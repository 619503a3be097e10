"""Everything the CLI draws with rich; the one module that imports rich at module level.

Commands import this module inside their functions, so `interlink --help` never pays for
rich. Text from the config goes into `Text` objects, never into markup, so a `[` in a URL
prints as itself.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from interlink.config import ConnectionConfig, InterlinkConfig

__all__ = ["mask_url", "show_config"]

MASK = "***"

# `scheme://user:password@`, and `?name=value` / `&name=value` pairs in a query string.
_USERINFO = re.compile(r"^(?P<head>[A-Za-z][A-Za-z0-9+.-]*://[^:/@?#]*):[^@/?#]*@")
_PARAM = re.compile(r"(?P<head>[?&](?P<name>[^=&#]+)=)(?P<value>[^&#]*)")
# Query parameters whose values are credentials, compared in lower case.
_SECRET_PARAM = re.compile(
    r"token|secret|password|passwd|api[_-]?key|^key$|^sig$|signature|^code$|^auth$"
)


def mask_url(url: str) -> str:
    """Hide the password of a URL's userinfo and the values of secret query parameters.

    Everything else is left exactly as written.

    ```python
    mask_url("postgresql://app:hunter2@db/interlink")  # 'postgresql://app:***@db/interlink'
    ```
    """
    url = _USERINFO.sub(lambda m: f"{m['head']}:{MASK}@", url, count=1)
    return _PARAM.sub(_mask_param, url)


def _mask_param(match: re.Match[str]) -> str:
    if match["value"] and _SECRET_PARAM.search(match["name"].lower()):
        return match["head"] + MASK
    return match[0]


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
