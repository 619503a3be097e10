"""The table of `interlink connections list` (80 columns).

One row per account (one for a connection without accounts): whether it is on, its token's
expiry, and the connection's newest run. What does not fit (why something is off, a
refused grant, the last failure) is printed below the table, one line each; `--json` has
everything. Names and messages go into `Text`, never into markup.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

__all__ = ["show_connections", "when"]

_AUTH = {"oauth2_client_credentials": "oauth2 cc"}
"""Auth types too wide for their column."""


def when(epoch: float | None) -> str:
    """A time as `2026-12-05 13:02` (local time), or `-`."""
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime("%Y-%m-%d %H:%M")


def _short(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return dt.datetime.fromtimestamp(epoch).strftime("%m-%d %H:%M")


def _last_run(connection: dict[str, Any]) -> Text:
    good, bad = connection.get("last_success"), connection.get("last_error")
    if good is None and bad is None:
        return Text("-")
    if bad is not None and (good is None or bad["run_id"] > good["run_id"]):
        return Text(f"err {_short(bad['finished_at'])}", "red")
    assert good is not None
    return Text(f"ok {_short(good['finished_at'])}", "green")


def _state(connection: dict[str, Any], account: dict[str, Any] | None) -> Text:
    if not connection["enabled"] or (account is not None and not account["enabled"]):
        return Text("off", "yellow")
    if account is None:
        waiting = connection["auth"] == "oauth2"
        return Text("no token", "red") if waiting else Text("on", "green")
    status = account["status"]
    if status == "active":
        return Text("on", "green")
    return Text("reauth" if status == "needs_reauth" else status.replace("_", " "), "red")


def _off_line(who: str, switched: dict[str, Any]) -> str:
    line = f"{who}: off since {when(switched['since'])}"
    if switched.get("by"):
        line += f" (by {switched['by']})"
    if switched.get("reason"):
        line += f": {switched['reason']}"
    return line


def _notes(connection: dict[str, Any]) -> list[tuple[str, str]]:
    """(line, style) for what the table has no room for."""
    name = connection["name"]
    notes: list[tuple[str, str]] = []
    if connection.get("disabled"):
        notes.append((_off_line(name, connection["disabled"]), "yellow"))
    for account in connection["accounts"]:
        who = f"{name}/{account['account'] or '(default)'}"
        if account.get("disabled") and account["account"]:
            notes.append((_off_line(who, account["disabled"]), "yellow"))
        if account.get("last_error"):
            notes.append((f"{who}: {account['status']}: {account['last_error']}", "red"))
    good, bad = connection.get("last_success"), connection.get("last_error")
    if bad is not None and (good is None or bad["run_id"] > good["run_id"]):
        line = (
            f"{name}: last run {when(bad['finished_at'])}, {bad['pipeline']} "
            f"(run {bad['run_id']}) {bad['status']}"
        )
        if bad.get("message"):
            line += f": {bad['message']}"
        notes.append((line, "red"))
    return notes


def show_connections(connections: list[dict[str, Any]], console: Console | None = None) -> None:
    console = console or Console(highlight=False)
    if not connections:
        console.print("No connections in interlink.yaml.")
        return
    table = Table(title="Connections", title_justify="left")
    for column in ("connection", "auth", "account", "state", "expires", "last run"):
        table.add_column(column, overflow="fold")
    notes: list[tuple[str, str]] = []
    for connection in connections:
        name = Text(connection["name"])
        auth = Text(_AUTH.get(connection["auth"], connection["auth"]))
        last = _last_run(connection)
        accounts = connection["accounts"]
        if not accounts:
            table.add_row(name, auth, "-", _state(connection, None), "-", last)
        for index, account in enumerate(accounts):
            first = index == 0
            table.add_row(
                name if first else "",
                auth if first else "",
                Text(account["account"] or "(default)"),
                _state(connection, account),
                _short(account["expires_at"]),
                last if first else "",
            )
        notes.extend(_notes(connection))
    console.print(table)
    for line, style in notes:
        console.print(Text(line, style), overflow="fold")
