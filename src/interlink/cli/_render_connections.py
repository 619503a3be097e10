"""The table of `interlink connections list` (80 columns)."""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["show_connections"]


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


def show_connections(connections: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    if not connections:
        console.print("No connections in interlink.yaml.")
        return
    table = Table(title="Connections", title_justify="left")
    for column in ("connection", "auth", "account", "status", "token expires"):
        table.add_column(column, overflow="fold")
    errors: list[tuple[str, str]] = []
    for connection in connections:
        accounts = connection["accounts"]
        if not accounts:
            waiting = "no token stored" if connection["auth"] == "oauth2" else "-"
            table.add_row(connection["name"], connection["auth"], "-", waiting, "-")
            continue
        for account in accounts:
            status = account["status"]
            table.add_row(
                connection["name"],
                connection["auth"],
                account["account"] or "(default)",
                Text(status, "green" if status == "active" else "red"),
                _when(account["expires_at"]),
            )
            if account["last_error"]:
                errors.append((connection["name"], account["last_error"]))
    console.print(table)
    for name, error in errors:
        console.print(Text(f"{name}: {error}", "red"), overflow="fold")
