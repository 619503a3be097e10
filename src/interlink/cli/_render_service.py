"""Rich output of `interlink apikeys` and `interlink serve`."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from rich.console import Console
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:
    from interlink.store import ApiKey

__all__ = ["show_api_keys"]


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    # Without the year: the table keeps to 80 columns (`apikeys list` shows the id first).
    return dt.datetime.fromtimestamp(epoch).strftime("%m-%d %H:%M")


def show_api_keys(keys: list[ApiKey], console: Console | None = None) -> None:
    """Every key: id, name, prefix, scope, created, last used, revoked (never the secret)."""
    console = console or Console(highlight=False)
    if not keys:
        console.print("No API keys yet; create one with: interlink apikeys create NAME")
        return
    table = Table(title="API keys", title_justify="left")
    table.add_column("id", justify="right", no_wrap=True)
    table.add_column("name", style="bold", overflow="fold", min_width=4)
    table.add_column("prefix", style="cyan", no_wrap=True)
    table.add_column("scope", no_wrap=True)
    table.add_column("created", no_wrap=True)
    table.add_column("last used", no_wrap=True)
    table.add_column("revoked", no_wrap=True)
    for key in keys:
        table.add_row(
            str(key.id),
            Text(key.name),
            Text(key.prefix),
            Text(key.scope),
            _when(key.created_at),
            _when(key.last_used_at),
            Text(_when(key.revoked_at), "red" if key.revoked else ""),
        )
    console.print(table)
